"""The status page in headless Chromium from Debian, served by real ``twistd clustermail``
nodes over their ``[[node]] http`` endpoints (issue 6 item 5).

Three nodes in site1..site3 (the seed layout, tests/cluster/seed.py); n3 is killed; the test
waits (bounded) until n1's /status.json says n3 is down, then loads n1's /status in
``chromium --headless``: ``--dump-dom`` must draw all three nodes with n3 down, and
``--screenshot`` must write a PNG of the window's size showing the "down" colour.
Chromium is Debian's ``chromium`` package (.ci/run installs it); missing, the test fails
with the install command rather than skipping."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import time
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.seed import SEED_CONFIG
from twistedmail.testing.cluster import HOST, Cluster, reserve_port
from twistedmail.web.status_html import STATE_COLOURS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
WIDTH, HEIGHT = 1280, 900
CHROMIUM_TIMEOUT = 90.0
FAST = {"heartbeat": 0.2, "suspect_after": 0.8, "down_after": 1.6}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, dict[str, int]]]:
    """n1..n3 in site1..site3, each with an HTTP listener on a reserved port."""
    socks = [reserve_port() for _ in range(3)]
    ports = {f"n{i}": int(s.getsockname()[1]) for i, s in enumerate(socks, start=1)}
    options = {name: {"site": f"site{name[1]}", "http": [f"tcp:{port}:interface={HOST}"]}
               for name, port in ports.items()}
    c = Cluster(3, users={"alice": "secret"}, extra_config=SEED_CONFIG, node_options=options,
                cluster_options=FAST, workdir=tmp_path_factory.mktemp("status"))
    try:
        c.start()
        yield c, ports
    finally:
        c.stop()
        for s in socks:
            s.close()


def chromium() -> str:
    """Debian's chromium; a clear failure (not a skip) when it is missing."""
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium is not installed: `apt-get install chromium chromium-driver` "
                    "(.ci/run installs it in CI)", pytrace=False)
    return path


def browse(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium on ``url`` (own profile, bounded); fail with its output."""
    argv = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
            f"--window-size={WIDTH},{HEIGHT}", *args, url]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT,
                            stdin=subprocess.DEVNULL, errors="replace")
    if result.returncode != 0:
        pytest.fail(f"chromium exited {result.returncode}\n{result.stderr[-3000:]}",
                    pytrace=False)
    return result


def fetch_json(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{HOST}:{port}/status.json", timeout=10) as answer:
        assert answer.headers.get_content_type() == "application/json"
        data: dict[str, Any] = json.load(answer)
        return data


def wait_state(port: int, node: str, state: str, timeout: float = 30.0) -> dict[str, Any]:
    """Poll /status.json until it shows ``node`` in ``state`` (bounded)."""
    deadline = time.monotonic() + timeout
    data: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            data = fetch_json(port)
        except (OSError, ValueError):
            data = {}
        if {n["name"]: n["state"] for n in data.get("nodes", [])}.get(node) == state:
            return data
        time.sleep(0.2)
    raise AssertionError(f"{node} not {state} on /status.json within {timeout} s: {data}")


def png_pixels(path: Path) -> tuple[int, int, int, list[bytes]]:
    """(width, height, bytes per pixel, unfiltered rows) of an 8-bit non-interlaced RGB or
    RGBA PNG (what Chromium writes); filters per the PNG specification (RFC 2083 §6)."""
    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(raw):
        length, kind = struct.unpack(">I4s", raw[pos:pos + 8])
        chunk = raw[pos + 8:pos + 8 + length]
        header = chunk if kind == b"IHDR" else header
        idat += chunk if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, colour, _c, _f, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, "unexpected PNG format"
    bpp = 4 if colour == 6 else 3
    data, stride = zlib.decompress(idat), width * bpp
    rows, prev = [], bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        line = unfilter(data[start], bytearray(data[start + 1:start + 1 + stride]), prev, bpp)
        rows.append(line)
        prev = line
    return width, height, bpp, rows


def unfilter(kind: int, line: bytearray, prev: bytes, bpp: int) -> bytes:
    """Undo one row's filter: 0 none, 1 sub, 2 up, 3 average, 4 Paeth."""
    if kind == 2:
        return bytes((x + u) & 0xFF for x, u in zip(line, prev, strict=True))
    for i in range(len(line)) if kind else ():
        a = line[i - bpp] if i >= bpp else 0
        if kind == 1:
            line[i] = (line[i] + a) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + (a + prev[i]) // 2) & 0xFF
        else:
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
    return bytes(line)


def count_colour(rows: list[bytes], hex_colour: str, bpp: int) -> int:
    """Pixels of exactly ``hex_colour`` (#rrggbb)."""
    want = bytes.fromhex(hex_colour.lstrip("#"))
    return sum(1 for row in rows for i in range(0, len(row), bpp) if row[i:i + 3] == want)


def test_status_page_in_chromium_shows_the_killed_node_down(
        cluster: tuple[Cluster, dict[str, int]], tmp_path: Path) -> None:
    """After kill -9 of n3, n1's /status (real --http endpoint) drawn by headless Chromium
    names n1, n2, n3 in the SVG map with n3 down, and the screenshot is a WIDTHxHEIGHT PNG
    holding the "down" fill colour, with the three names readable by OCR."""
    c, ports = cluster
    before = wait_state(ports["n1"], "n3", "up")
    assert [n["name"] for n in before["nodes"]] == ["n1", "n2", "n3"]
    c.kill("n3")
    wait_state(ports["n1"], "n3", "down")
    url = f"http://{HOST}:{ports['n1']}/status?refresh=0"
    dom = browse(url, tmp_path / "profile-dom", "--dump-dom").stdout
    svg = re.search(r"<svg .*?</svg>", dom, re.S)
    assert svg, f"no SVG map in the page:\n{dom[:2000]}"
    shapes = dict(re.findall(r'data-node="(n\d)" data-state="(\w+)"', svg.group(0)))
    assert shapes == {"n1": "up", "n2": "up", "n3": "down"}
    assert all(f'<tr data-node="{n}">' in dom for n in ("n1", "n2", "n3"))
    shot = tmp_path / "status.png"
    browse(url, tmp_path / "profile-shot", f"--screenshot={shot}")
    width, height, bpp, rows = png_pixels(shot)
    assert (width, height) == (WIDTH, HEIGHT)
    down_fill = STATE_COLOURS["down"][0]
    assert count_colour(rows, down_fill, bpp) > 500, "no node drawn in the down colour"
    assert count_colour(rows, STATE_COLOURS["up"][0], bpp) > 1000, "no node drawn up"
    words = ocr(shot)  # the names are read off the pixels, not the DOM
    assert {"n1", "n2", "n3"} <= words, sorted(words)


def ocr(png: Path) -> set[str]:
    """The words Tesseract (Debian tesseract-ocr) reads in a screenshot."""
    tesseract = shutil.which("tesseract")
    if tesseract is None:
        pytest.fail("tesseract is not installed (Debian package tesseract-ocr; .ci/run "
                    "installs it)", pytrace=False)
    result = subprocess.run([tesseract, str(png), "stdout"], capture_output=True, text=True,
                            timeout=CHROMIUM_TIMEOUT, stdin=subprocess.DEVNULL, errors="replace")
    assert result.returncode == 0, result.stderr[-2000:]
    return set(re.findall(r"[\w.-]+", result.stdout))


def test_every_node_serves_its_own_view(cluster: tuple[Cluster, dict[str, int]]) -> None:
    """Each live node's /status.json names itself as "self" and carries its own root."""
    c, ports = cluster
    for name in c.live():
        data = fetch_json(ports[name])
        me = [n for n in data["nodes"] if n["self"]]
        assert data["node"] == name and [n["name"] for n in me] == [name]
        assert me[0]["root"] == c.roots[name]
