"""Simulated IMAP clients for the cluster simulation (``simcluster.py``): what they do, what
they see.

``Workload.next_op(store, user)`` builds one seeded store op the way the IMAP layer builds them
(APPEND, STORE +/-/replace FLAGS, EXPUNGE of \\Deleted or UID EXPUNGE, COPY, MOVE, CREATE, RENAME,
DELETE, and now and then ``convert -e`` = Regenerate), on a random folder of the user, together
with the instance ids the op removes (the simulation excuses those from "every acknowledged
message survives").

``Observations`` records, from a store listener on every node, each (node, user, folder,
UIDVALIDITY, UID) -> instance a client could be shown and each folder's UIDVALIDITY, across kills
(keys use the node name, not the incarnation), and collects violations as text: a store listener
must not raise (the store would swallow it), so the simulation polls ``violations``.

Invariants:
- Deterministic: every choice comes from the ``random.Random`` given; mailbox ids and rename seeds
  too (never ``uuid4``), so a seed replays exactly.
- Ops are built against the store's current state and may still be refused by it (a name taken
  meanwhile); the caller counts refusals.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from twistedmail.store import (
    Append,
    Change,
    Copy,
    CreateMailbox,
    DeleteMailbox,
    Expunge,
    Mailbox,
    MailboxCreated,
    MailboxRegenerated,
    MailboxRenamed,
    MailStore,
    MessagesAdded,
    Op,
    Regenerate,
    RenameMailbox,
    StoreFlags,
)
from twistedmail.store.uidvalidity import split

NAMES = ("A", "B", "A/x", "B/y", "Work", "Work/2024", "Lists")
FLAGS = ("\\Seen", "\\Flagged", "\\Deleted", "\\Answered", "$Label1", "$Junk")
# op kind -> weight
WEIGHTS = {"append": 30, "flags": 20, "expunge": 8, "copy": 7, "move": 7, "create": 8,
           "rename": 5, "delete": 5, "regenerate": 1}
Instance = tuple[str, int]
Built = tuple[Op, list[Instance]] | None


class Workload:
    """Seeded client ops; ``bodies`` keeps every message text made (some are reused)."""

    def __init__(self, rng: random.Random, seed: int) -> None:
        self.rng = rng
        self.seed = seed
        self.bodies: list[bytes] = []

    def next_op(self, store: MailStore, user: str) -> tuple[str, Built]:
        """(kind, (op, instances it removes) or None when nothing fits right now)."""
        kind = self.rng.choices(list(WEIGHTS), list(WEIGHTS.values()))[0]
        boxes = store.mailboxes(user)
        return kind, getattr(self, "_" + kind)(store, user, boxes)

    # --- helpers ------------------------------------------------------------------------

    def _uids(self, box: Mailbox, most: int = 3) -> list[int]:
        uids = box.uids()
        return self.rng.sample(uids, min(len(uids), self.rng.randint(1, most))) if uids else []

    def _name(self) -> str:
        name = self.rng.choice(NAMES)
        return name if self.rng.random() < 0.7 else f"{name}{self.rng.randint(1, 3)}"

    def _hex(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    @staticmethod
    def _instances(box: Mailbox, uids: Sequence[int]) -> list[Instance]:
        return [r.instance_id for u in uids if (r := box.get(u)) is not None]

    # --- one builder per op kind ------------------------------------------------------------

    def _append(self, store: MailStore, user: str, boxes: list[Mailbox]) -> Built:
        box = self.rng.choice(boxes)
        if self.bodies and self.rng.random() < 0.1:
            data = self.rng.choice(self.bodies)  # same body, new instance: a shared blob
        else:
            k = len(self.bodies)
            data = (f"From: sim@example.org\r\nSubject: m{k}\r\nMessage-ID: <{self.seed}.{k}@sim>"
                    f"\r\n\r\nbody {k}\r\n").encode()
            self.bodies.append(data)
        flags = [f for f in FLAGS if f != "\\Deleted" and self.rng.random() < 0.2]
        return Append.new(store, user, box.name, data, flags), []

    def _flags(self, store: MailStore, user: str, boxes: list[Mailbox]) -> Built:
        box = self.rng.choice(boxes)
        uids = self._uids(box)
        if not uids:
            return None
        flags = frozenset(self.rng.sample(FLAGS, self.rng.randint(1, 2)))
        mode = self.rng.choice(("add", "add", "remove", "replace"))
        return StoreFlags(user, box.name, tuple(uids), mode, flags), []

    def _expunge(self, store: MailStore, user: str, boxes: list[Mailbox]) -> Built:
        box = self.rng.choice(boxes)
        if self.rng.random() < 0.5:  # EXPUNGE: every \Deleted message (RFC 3501 §6.4.3)
            uids = [r.uid for r in box.records() if "\\Deleted" in r.flags]
        else:  # UID EXPUNGE of a few (RFC 4315 §2.1)
            uids = self._uids(box, 2)
        if not uids:
            return None
        return Expunge(user, box.name, tuple(uids)), self._instances(box, uids)

    def _copy(self, store: MailStore, user: str, boxes: list[Mailbox], move: bool = False) -> Built:
        src, dst = self.rng.choice(boxes), self.rng.choice(boxes)
        uids = self._uids(src)
        if not uids or src is dst:
            return None
        doomed = self._instances(src, uids) if move else []
        return Copy(user, src.name, tuple(uids), dst.name, move=move), doomed

    def _move(self, store: MailStore, user: str, boxes: list[Mailbox]) -> Built:
        return self._copy(store, user, boxes, move=True)  # RFC 6851

    def _create(self, store: MailStore, user: str, boxes: list[Mailbox]) -> Built:
        return CreateMailbox(user, self._name(), self._hex()), []

    def _rename(self, store: MailStore, user: str, boxes: list[Mailbox]) -> Built:
        box = self.rng.choice(boxes)  # RENAME INBOX moves its messages (new instances)
        doomed = self._instances(box, box.uids()) if box.name == "INBOX" else []
        return RenameMailbox(user, box.name, self._name(), self._hex()), doomed

    def _delete(self, store: MailStore, user: str, boxes: list[Mailbox]) -> Built:
        box = self.rng.choice(boxes)
        return DeleteMailbox(user, box.name), self._instances(box, box.uids())

    def _regenerate(self, store: MailStore, user: str, boxes: list[Mailbox]) -> Built:
        return Regenerate(user, self.rng.choice(boxes).name), []  # convert -e under load


class Observations:
    """Every UID map and UIDVALIDITY the nodes ever presented, and what broke the rules."""

    def __init__(self) -> None:
        self.uidmap: dict[tuple[str, str, str, int, int], Instance] = {}
        self.uvs: dict[tuple[str, str, str], int] = {}
        self.violations: list[str] = []

    def listener(self, node: str, root: int,
                 store: MailStore) -> Callable[[Op, list[Change]], None]:
        """A store listener for node ``node`` (root ``root``) recording what it shows."""

        def observe(op: Op, changes: list[Change]) -> None:
            for ch in changes:
                if isinstance(ch, MessagesAdded):
                    box = store.mailbox_by_id(ch.mailbox_id)
                    for uid in ch.uids if box is not None else ():
                        rec = box.get(uid)  # type: ignore[union-attr]
                        if rec is not None:
                            self.see(node, box, uid, rec.instance_id)  # type: ignore[arg-type]
                elif isinstance(ch, MailboxCreated | MailboxRenamed | MailboxRegenerated):
                    box = store.mailbox_by_id(ch.mailbox_id)
                    if box is not None:
                        self.see_box(node, root, box)

        return observe

    def see(self, node: str, box: Mailbox, uid: int, instance: Instance) -> None:
        """RFC 3501 §2.3.1.1: one (folder, UIDVALIDITY, UID) never names two messages."""
        key = (node, box.user, box.name, box.uidvalidity, uid)
        seen = self.uidmap.setdefault(key, instance)
        if seen != instance:
            self.violations.append(f"{key} mapped to {seen} and to {instance}")

    def see_box(self, node: str, root: int, box: Mailbox) -> None:
        """DESIGN.md §3: the node's own root; per node and name the value never goes down."""
        if split(box.uidvalidity)[0] != root:
            self.violations.append(f"{node} showed {box.name!r} with another root")
        key = (node, box.user, box.name)
        last = self.uvs.get(key, 0)
        if box.uidvalidity < last:
            self.violations.append(f"{key} UIDVALIDITY went down: {last} -> {box.uidvalidity}")
        self.uvs[key] = max(last, box.uidvalidity)
        for rec in box.records():
            self.see(node, box, rec.uid, rec.instance_id)


def instance_counts(store: MailStore) -> Counter[Instance]:
    """How many times each message instance is in the store (rule 1: never more than once)."""
    count: Counter[Instance] = Counter()
    for user in store.users():
        for box in store.mailboxes(user):
            count.update(rec.instance_id for rec in box.records())
    return count


def first_difference(a: Any, b: Any, path: str = "") -> str:
    """Where two ``Replica.summary()`` values first differ, as a short readable string."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=repr):
            if a.get(key) != b.get(key):
                return first_difference(a.get(key), b.get(key), f"{path}/{key}")
    return f"{path or '/'}: {a!r:.300} != {b!r:.300}"
