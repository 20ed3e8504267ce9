"""Fixtures for tests/clients: ``real_node`` (a node with the fixtures.ACCOUNT loaded)."""

from __future__ import annotations

from .fixtures import real_node

__all__ = ["real_node"]
