"""Metrics of synthetic rows: fidelity to the real rows (``tabular``)."""
