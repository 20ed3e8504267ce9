"""twistd plugin dropin: ``twistd clustermail`` (installed as twisted/plugins/clustermail.py)."""

from twisted.application.service import ServiceMaker

clustermail = ServiceMaker(
    "clustermail",
    "twistedmail.service",
    "In-memory IMAP4 server node (twistedmail); see `twistd clustermail --help`.",
    "clustermail",
)
