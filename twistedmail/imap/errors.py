"""Exceptions handlers raise to end a command with NO or BAD."""

from __future__ import annotations


class CommandFailed(Exception):
    """End the command with ``status [code] text``."""

    status = "NO"

    def __init__(self, text: str, code: str | None = None, code_args: tuple[object, ...] = ()):
        super().__init__(text)
        self.text = text
        self.code = code
        self.code_args = code_args


class No(CommandFailed):
    """Tagged NO (RFC 3501 §7.1.2): the command was understood but failed."""

    status = "NO"


class Bad(CommandFailed):
    """Tagged BAD (RFC 3501 §7.1.3): the command is invalid in this state or form."""

    status = "BAD"


class Bye(Exception):
    """Close the connection after an untagged ``* BYE`` (RFC 3501 §7.1.5)."""

    def __init__(self, text: str, code: str | None = None):
        super().__init__(text)
        self.text = text
        self.code = code
