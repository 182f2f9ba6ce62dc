"""Benchmarks that print measured figures; run each as a module, e.g. ``python -m bench.simulator``
(a script named like the package it measures would shadow that package)."""
