"""Observability: Prometheus metrics (metrics.py) and structured log events (events.py)."""
