"""Metrics and structured log events (issue 6 parts 4 and 6)."""
