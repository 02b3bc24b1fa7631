"""Data in and out: sources, schema inference, shards."""
