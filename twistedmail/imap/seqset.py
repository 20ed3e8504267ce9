"""Sequence-set rendering (RFC 3501 §9 ``sequence-set``)."""

from __future__ import annotations

from collections.abc import Iterable


def compress(numbers: Iterable[int]) -> str:
    """``[1, 2, 3, 7]`` → ``"1:3,7"``, keeping the given order of runs (RFC 4315 §3)."""
    out: list[str] = []
    run_start = prev = None
    for n in numbers:
        if prev is not None and n == prev + 1:
            prev = n
            continue
        if run_start is not None:
            out.append(_run(run_start, prev))
        run_start = prev = n
    if run_start is not None:
        out.append(_run(run_start, prev))
    return ",".join(out)


def _run(start: int, end: int | None) -> str:
    return str(start) if end is None or end == start else f"{start}:{end}"
