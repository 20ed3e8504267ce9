"""NOTIFY (RFC 5465): one session watches, another changes things; pushes arrive unasked."""

from __future__ import annotations

import pytest

from tests.protocol.conftest import SIMPLE, append

HEADERS = "BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT)]"


def pushed(c, n: int = 1, timeout: float = 3.0) -> list[bytes]:
    """The next ``n`` lines the server sends without being asked."""
    return [c.read_line(timeout) for _ in range(n)]


def quiet(c) -> list[bytes]:
    """What a NOOP brings: empty when nothing was held back."""
    return c.ok("NOOP").untagged


@pytest.fixture
def watcher(imap_script):
    """alice with Lists/Lemonade and misc, INBOX selected, a second session ``other``."""
    c = imap_script(login=True)
    c.ok("CREATE Lists/Lemonade")
    c.ok("CREATE misc")
    c.ok("SELECT INBOX")
    other = imap_script(login=True)
    return c, other


def test_capability_advertises_notify(imap_script):
    """NOTIFY is in CAPABILITY."""
    c = imap_script(login=True)
    assert b" NOTIFY" in c.ok("CAPABILITY").untagged[0]


def test_rfc_example_new_message_in_selected_and_subtree(watcher):
    """RFC 5465 §3.1 example: EXISTS + FETCH for the selected mailbox, STATUS for Lists/*."""
    c, other = watcher
    c.ok(f"NOTIFY SET (selected (MessageNew (uid {HEADERS}) MessageExpunge)) "
         "(subtree Lists (MessageNew MessageExpunge))")
    append(other, SIMPLE)
    lines = pushed(c, 3)
    assert lines[:2] == [b"* 1 EXISTS", b"* 1 RECENT"]
    assert lines[2].startswith(b"* 1 FETCH (UID 1 BODY[HEADER.FIELDS (FROM TO SUBJECT)] {")
    assert b"Subject: Hello kumquat" in lines[2]
    append(other, SIMPLE, "Lists/Lemonade")
    assert pushed(c) == [b'* STATUS "Lists/Lemonade" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY '
                         + _uidvalidity(c, "Lists/Lemonade") + b" UNSEEN 1)"]
    append(other, SIMPLE, "misc")  # not watched
    assert quiet(c) == []


def _uidvalidity(c, name: str) -> bytes:
    line = c.ok(f"STATUS {name} (UIDVALIDITY)").untagged[0]
    return line.rsplit(b" ", 1)[1].rstrip(b")")


def test_set_status_sends_status_before_ok(watcher):
    """NOTIFY SET STATUS: one STATUS per watched non-selected mailbox before the tagged OK."""
    c, other = watcher
    r = c.ok("NOTIFY SET STATUS (selected (MessageNew MessageExpunge)) "
             "(personal (MessageNew MessageExpunge))")
    names = [line.split(b" ")[2] for line in r.untagged]
    assert {b'"Lists"', b'"Lists/Lemonade"', b'"misc"'} <= set(names)
    assert b'"INBOX"' not in names  # the selected mailbox gets no STATUS
    assert all(b" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY " in line for line in r.untagged)
    r = c.ok("NOTIFY SET STATUS (mailboxes misc (MessageNew MessageExpunge))")
    assert [line.split(b" ")[2] for line in r.untagged] == [b'"misc"']


def test_flag_change_in_selected_pushed_with_uid(watcher):
    """FlagChange: another session's STORE arrives at once as FETCH (UID FLAGS)."""
    c, other = watcher
    append(other, SIMPLE)
    c.ok("NOOP")
    c.ok("NOTIFY SET (selected (MessageNew MessageExpunge FlagChange))")
    other.ok("SELECT INBOX")
    other.ok("STORE 1 +FLAGS.SILENT ($Junk)")
    assert pushed(c) == [b"* 1 FETCH (UID 1 FLAGS ($Junk \\Recent))"]


def test_flag_change_not_requested_is_not_announced(watcher):
    """Without FlagChange another session's flag changes are never announced."""
    c, other = watcher
    append(other, SIMPLE)
    c.ok("NOOP")
    c.ok("NOTIFY SET (selected (MessageNew MessageExpunge))")
    other.ok("SELECT INBOX")
    other.ok("STORE 1 +FLAGS.SILENT ($Junk)")
    assert quiet(c) == []
    r = c.ok("FETCH 1 FLAGS")  # the client can still ask
    assert r.untagged == [b"* 1 FETCH (FLAGS ($Junk \\Recent))"]


def test_selected_expunge_pushed_immediately(watcher):
    """SELECTED: another session's EXPUNGE arrives without a command."""
    c, other = watcher
    append(other, SIMPLE)
    append(other, SIMPLE)
    c.ok("NOOP")
    c.ok("NOTIFY SET (selected (MessageNew MessageExpunge))")
    other.ok("SELECT INBOX")
    other.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    other.ok("EXPUNGE")
    assert pushed(c) == [b"* 1 EXPUNGE"]
    assert c.ok("FETCH 1 UID").untagged == [b"* 1 FETCH (UID 2)"]


def test_selected_delayed_holds_expunge_until_noop(watcher):
    """SELECTED-DELAYED: EXISTS is pushed, EXPUNGE waits for a command that allows it."""
    c, other = watcher
    append(other, SIMPLE)
    c.ok("NOOP")
    c.ok("NOTIFY SET (selected-delayed (MessageNew MessageExpunge))")
    other.ok("SELECT INBOX")
    other.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    other.ok("EXPUNGE")
    append(other, SIMPLE)
    assert pushed(c, 2) == [b"* 2 EXISTS", b"* 1 RECENT"]  # other claimed \\Recent of 2
    r = c.no("FETCH 1:* UID")  # uses sequence numbers: no EXPUNGE yet (RFC 2180 §4.1.2)
    assert r.untagged == [b"* 2 FETCH (UID 2)"] and b"[EXPUNGEISSUED]" in r.tagged
    assert quiet(c) == [b"* 1 EXPUNGE"]


def test_mailbox_name_events(watcher):
    """MailboxName: LIST for CREATE, LIST (\\NonExistent) for DELETE, OLDNAME for RENAME."""
    c, other = watcher
    c.ok("NOTIFY SET (personal (MailboxName))")
    other.ok("CREATE Notes")
    assert pushed(c) == [b'* LIST (\\HasNoChildren) "/" "Notes"']
    other.ok("RENAME Notes Old")
    assert pushed(c) == [b'* LIST (\\HasNoChildren) "/" "Old" ("OLDNAME" ("Notes"))']
    other.ok("DELETE Old")
    assert pushed(c) == [b'* LIST (\\NonExistent) "/" "Old"']


def test_subscription_change_events(watcher):
    """SubscriptionChange: LIST with \\Subscribed after SUBSCRIBE, without after UNSUBSCRIBE."""
    c, other = watcher
    c.ok("NOTIFY SET (personal (SubscriptionChange))")
    other.ok("SUBSCRIBE misc")
    assert pushed(c) == [b'* LIST (\\HasNoChildren \\Subscribed) "/" "misc"']
    other.ok("UNSUBSCRIBE misc")
    assert pushed(c) == [b'* LIST (\\HasNoChildren) "/" "misc"']


def test_own_changes_are_not_notified(watcher):
    """RFC 5465 §5: the session's own CREATE / APPEND elsewhere are not echoed back."""
    c, _ = watcher
    c.ok("NOTIFY SET (personal (MessageNew MessageExpunge MailboxName))")
    r = c.ok("CREATE Mine")
    assert r.untagged == []
    append(c, SIMPLE, "misc")
    assert quiet(c) == []


def test_notify_during_idle(watcher):
    """RFC 5465 §4: IDLE delivers exactly the NOTIFY events, other mailboxes included."""
    c, other = watcher
    c.ok("NOTIFY SET (selected (MessageNew MessageExpunge)) (mailboxes misc (MessageNew "
         "MessageExpunge))")
    c.send("i IDLE")
    assert c.read_line().startswith(b"+ ")
    append(other, SIMPLE, "misc")
    line = pushed(c)[0]
    assert line.startswith(b'* STATUS "misc" (MESSAGES 1 UIDNEXT 2 ')
    append(other, SIMPLE)
    assert pushed(c, 2) == [b"* 1 EXISTS", b"* 1 RECENT"]
    c.send("DONE")
    assert c.read_line().startswith(b"i OK")


def test_inboxes_and_subscribed_specifiers(watcher):
    """INBOXES is INBOX only; SUBSCRIBED follows the subscription list as it changes."""
    c, other = watcher
    c.ok("UNSELECT")
    c.ok("NOTIFY SET (inboxes (MessageNew MessageExpunge)) (subscribed (MessageNew "
         "MessageExpunge))")
    append(other, SIMPLE)
    assert pushed(c)[0].startswith(b'* STATUS "INBOX" (MESSAGES 1 ')
    append(other, SIMPLE, "misc")
    assert quiet(c) == []
    other.ok("SUBSCRIBE misc")
    append(other, SIMPLE, "misc")
    assert pushed(c)[0].startswith(b'* STATUS "misc" (MESSAGES 2 ')


def test_notify_none_silences_selected_mailbox(watcher):
    """NOTIFY NONE: no events at all, not even EXISTS on NOOP (a snapshot)."""
    c, other = watcher
    c.ok("NOTIFY NONE")
    append(other, SIMPLE)
    assert quiet(c) == []
    assert c.ok("UID FETCH 1:* UID").untagged == []


def test_no_selected_group_means_selected_none(watcher):
    """Leaving out SELECTED is SELECTED NONE (§3.1): other mailboxes still notify."""
    c, other = watcher
    c.ok("NOTIFY SET (personal (MessageNew MessageExpunge))")
    append(other, SIMPLE)
    append(other, SIMPLE, "misc")
    assert pushed(c)[0].startswith(b'* STATUS "misc" ')
    assert quiet(c) == []


def test_own_commands_still_answer_in_selected(watcher):
    """The session's own APPEND / EXPUNGE replies are not filtered by NOTIFY."""
    c, _ = watcher
    c.ok("NOTIFY NONE")
    r = c.ok(f"APPEND INBOX {{{len(SIMPLE)}}}", SIMPLE)
    assert r.untagged == [b"* 1 EXISTS", b"* 1 RECENT"]
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert c.ok("EXPUNGE").untagged == [b"* 1 EXPUNGE"]


def test_notify_set_is_an_implicit_noop(watcher):
    """§3.1: a successful NOTIFY SET returns the changes accumulated so far."""
    c, other = watcher
    append(other, SIMPLE)
    r = c.ok("NOTIFY SET (selected (MessageNew MessageExpunge))")
    assert r.untagged == [b"* 1 EXISTS", b"* 1 RECENT"]


def test_condstore_adds_highestmodseq(watcher):
    """§5.2: with CONDSTORE enabled the STATUS carries HIGHESTMODSEQ."""
    c, other = watcher
    c.ok("ENABLE CONDSTORE")
    c.ok("NOTIFY SET (mailboxes misc (MessageNew MessageExpunge))")
    append(other, SIMPLE, "misc")
    assert b" HIGHESTMODSEQ " in pushed(c)[0]


@pytest.mark.parametrize("events", [
    "(selected (MessageNew))",  # §5: MessageNew needs MessageExpunge
    "(selected (MessageExpunge))",
    "(personal (FlagChange))",  # §5: FlagChange needs both
    "(selected (MessageNew MessageExpunge)) (selected-delayed (MessageNew MessageExpunge))",
    "(selected (MailboxName))",  # §6.1: only message events with SELECTED
])
def test_forbidden_combinations_are_bad(watcher, events):
    """RFC 5465 §5 / §6.1 composition rules: tagged BAD."""
    c, _ = watcher
    c.bad(f"NOTIFY SET {events}")


@pytest.mark.parametrize("event", [
    "AnnotationChange", "MailboxMetadataChange", "ServerMetadataChange", "XFoo",
])
def test_unsupported_events_are_no_badevent(watcher, event):
    """§3.1: an unsupported event is NO [BADEVENT (supported events...)], not BAD."""
    c, _ = watcher
    extra = " MessageNew MessageExpunge" if event == "AnnotationChange" else ""
    r = c.no(f"NOTIFY SET (personal ({event}{extra}))")
    assert r.tagged.split(b" ", 1)[1].startswith(
        b"NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)]")


@pytest.mark.parametrize("line", [
    "NOTIFY", "NOTIFY FOO", "NOTIFY SET", "NOTIFY SET personal (MessageNew)",
    "NOTIFY SET (nowhere (MessageNew MessageExpunge))", "NOTIFY SET (subtree (MessageNew))",
    "NOTIFY SET (personal (MessageNew MessageExpunge)",
    "NOTIFY SET (selected (MessageNew (NOSUCHATT) MessageExpunge))", "NOTIFY NONE extra",
])
def test_malformed_notify_is_bad(watcher, line):
    """Syntax errors in NOTIFY get BAD and the session stays usable."""
    c, _ = watcher
    c.bad(line)
    c.ok("NOOP")


def test_notify_needs_authentication(imap_script):
    """NOTIFY is only valid in the authenticated and selected states."""
    c = imap_script()
    c.bad("NOTIFY NONE")


def test_replacing_settings_stops_old_events(watcher):
    """A second NOTIFY SET replaces the first: the old mailbox is no longer watched."""
    c, other = watcher
    c.ok("NOTIFY SET (mailboxes misc (MessageNew MessageExpunge))")
    c.ok("NOTIFY SET (mailboxes Lists (MessageNew MessageExpunge))")
    append(other, SIMPLE, "misc")
    append(other, SIMPLE, "Lists")
    assert pushed(c)[0].startswith(b'* STATUS "Lists" ')
    assert quiet(c) == []


def test_no_messagenew_fetch_for_own_append(watcher):
    """§5.2: the session's own APPEND to the selected mailbox gets EXISTS, no FETCH."""
    c, other = watcher
    c.ok("NOTIFY SET (selected (MessageNew (UID FLAGS) MessageExpunge))")
    r = c.ok(f"APPEND INBOX {{{len(SIMPLE)}}}", SIMPLE)
    assert r.untagged == [b"* 1 EXISTS", b"* 1 RECENT"]
    append(other, SIMPLE)
    assert pushed(c, 3) == [b"* 2 EXISTS", b"* 2 RECENT", b"* 2 FETCH (UID 2 FLAGS (\\Recent))"]
