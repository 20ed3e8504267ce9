"""The seed's public-folder scenario (Exchange 2007 referrals, MISSION.md): three sites in
a line, site1–site2 cost 10 and site2–site3 cost 10 (so site1–site3 is 20), and the public
folder News held by n2 and n3 only.  Extra config for ``Cluster(extra_config=...)``; the
tests put n1, n2, n3 in site1, site2, site3 with ``Cluster(node_options=...)``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from twistedmail.testing.cluster import HOST, Cluster, reserve_port

SEED_CONFIG = """
[public]
folders = ["News"]

[public.replicas]
News = ["n2", "n3"]

[sites]
links = [["site1", "site2", 10], ["site2", "site3", 10]]
"""


@contextmanager
def seed_cluster(workdir: Path, users: Mapping[str, str], extra: str = SEED_CONFIG,
                 node_extra: Mapping[str, Any] | None = None,
                 per_node: Mapping[str, Mapping[str, Any]] | None = None,
                 **cluster_args: Any) -> Iterator[Cluster]:
    """The seed layout, running: n1..n3 in site1..site3 with IMAP on reserved fixed ports
    (so each node knows where the others listen and referral URLs name real listeners).
    ``node_extra`` is merged into every [[node]] table, ``per_node[name]`` into one;
    the cluster stops on exit."""
    socks = [reserve_port() for _ in range(3)]
    ports = [int(s.getsockname()[1]) for s in socks]
    options = {f"n{i}": {"site": f"site{i}", "imap": [f"tcp:{p}:interface={HOST}"],
                         **(node_extra or {}), **(per_node or {}).get(f"n{i}", {})}
               for i, p in enumerate(ports, start=1)}
    c = Cluster(3, users=dict(users), extra_config=extra, node_options=options,
                workdir=workdir, **cluster_args)
    for i, port in enumerate(ports, start=1):
        c.nodes[f"n{i}"].port = port  # the harness passes --imap=tcp:PORT: as configured
    try:
        c.start()
        yield c
    finally:
        c.stop()
        for s in socks:
            s.close()
