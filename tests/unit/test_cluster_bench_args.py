"""bench/cluster_bench.py's --clients option: a clear argparse error for bad input."""

from __future__ import annotations

import argparse

import pytest

from bench.cluster_bench import client_counts


def test_client_counts_parse_a_comma_separated_list() -> None:
    """'8,32,48' gives the three counts in order."""
    assert client_counts("8,32,48") == [8, 32, 48]


@pytest.mark.parametrize("text", ["0", "8,60", "x", "", "8,,32", "-1"])
def test_client_counts_refuse_bad_input_with_a_message(text: str) -> None:
    """Zero, over the per-user limit or not numbers: an argparse error naming the input."""
    with pytest.raises(argparse.ArgumentTypeError, match=repr(text).replace("[", r"\[")):
        client_counts(text)
