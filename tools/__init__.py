"""Maintenance scripts that are not part of the package (docs generation)."""
