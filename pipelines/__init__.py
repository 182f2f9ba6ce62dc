"""Dagster wiring, and only wiring: assets, checks, jobs, schedules, sensors and resources over
plain packages.

This is the one package that imports dagster. Each asset calls a plain function of telemetry/,
simulator/, signals/, policies/, scheduler/ or dashboards/ and persists what it returns through
the store resource; assets hand data to each other through the DuckDB store, never in memory.
"""
