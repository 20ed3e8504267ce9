"""State kept per node object (limits, metrics, pre-deflating), made on first use and
dropped with the node: one in-process test run may hold many nodes."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class PerNode(Generic[T]):
    """``of(node)`` makes the state with ``make(node)`` on first use; ``get`` never does."""

    def __init__(self, make: Callable[[Any], T]) -> None:
        self._make = make
        self._by_node: weakref.WeakKeyDictionary[Any, T] = weakref.WeakKeyDictionary()

    def of(self, node: Any) -> T:
        state = self._by_node.get(node)
        if state is None:
            state = self._by_node[node] = self._make(node)
        return state

    def get(self, node: Any) -> T | None:
        return self._by_node.get(node)
