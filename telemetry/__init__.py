"""The base of heteroscale: the canonical telemetry model and the DuckDB store.

Every other package speaks this schema; this package imports none of them.
"""
