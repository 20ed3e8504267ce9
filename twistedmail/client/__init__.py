"""twistedmail.client: a referral-following, failover-aware IMAP client (issue 5 item 6).

See :mod:`twistedmail.client.client` for the rules it keeps.
"""

from twistedmail.client.client import (
    Client,
    ClientError,
    CommandFailed,
    Event,
    LoginFailed,
    NoServerReachable,
    OutcomeUnknown,
    ReferralError,
    Selected,
    Server,
    UidValidityChanged,
    quote_mailbox,
    referral_urls,
)

__all__ = [
    "Client",
    "ClientError",
    "CommandFailed",
    "Event",
    "LoginFailed",
    "NoServerReachable",
    "OutcomeUnknown",
    "ReferralError",
    "Selected",
    "Server",
    "UidValidityChanged",
    "quote_mailbox",
    "referral_urls",
]
