"""The node state file: UIDVALIDITY counters reserved before use."""

from __future__ import annotations

import json

import pytest

from twistedmail.config import NodeSettings
from twistedmail.node import Node
from twistedmail.statefile import BLOCK, StateFile, StateFileError


def test_fresh_file_reserves_a_block(tmp_path):
    """A missing file starts at 0; issuing a counter records counter + BLOCK."""
    state = StateFile(str(tmp_path / "s"))
    assert state.boot_floor == 1
    state.reserve(5)
    assert json.loads((tmp_path / "s").read_text()) == {"uidvalidity_reserved": 5 + BLOCK}
    state.reserve(6)  # covered: no rewrite needed
    assert state.reserved == 5 + BLOCK


def test_restart_floor_is_above_everything_issued(tmp_path):
    """Every counter a node issued is below the next boot's floor, however fast it restarts."""
    path = str(tmp_path / "s")
    issued = []
    for _ in range(3):
        node = Node(NodeSettings(users={"alice": "x"}, state_file=path))
        issued.append(node.store.mailbox("alice", "INBOX").uidvalidity)
    assert issued[0] < issued[1] < issued[2]


def test_corrupt_file_is_an_error(tmp_path):
    """A state file that is not ours is refused with a message naming the key."""
    path = tmp_path / "s"
    path.write_text("[1, 2]")
    with pytest.raises(StateFileError, match="state_file"):
        StateFile(str(path))
