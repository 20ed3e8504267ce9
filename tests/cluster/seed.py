"""The seed's public-folder scenario (Exchange 2007 referrals, MISSION.md): three sites in
a line, site1–site2 cost 10 and site2–site3 cost 10 (so site1–site3 is 20), and the public
folder News held by n2 and n3 only.  Extra config for ``Cluster(extra_config=...)``; the
tests put n1, n2, n3 in site1, site2, site3 with ``Cluster(node_options=...)``."""

SEED_CONFIG = """
[public]
folders = ["News"]

[public.replicas]
News = ["n2", "n3"]

[sites]
links = [["site1", "site2", 10], ["site2", "site3", 10]]
"""
