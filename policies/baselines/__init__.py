"""Baselines: what peers and textbooks scale on, each on the :class:`policies.Controller`
interface so that they run in the same loop and are scored the same way as HeteroScale."""
