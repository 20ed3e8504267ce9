"""TLS modern defaults (twistedmail/tls.py): TLS >= 1.2, AEAD + forward-secret suites only,
and the reloadable context (issue 7 item 3)."""

from __future__ import annotations

import socket
import ssl
import warnings

import pytest
from OpenSSL import SSL

from tests.protocol.test_tls import insecure_context, listen
from twistedmail.config import NodeSettings
from twistedmail.tls import ReloadableContext, context_for, self_signed_pem

WEAK = ("RC4", "3DES", "DES-CBC", "NULL", "EXP", "MD5", "CBC", "SHA1", "aNULL")


def _old_client(version: ssl.TLSVersion) -> ssl.SSLContext | None:
    """A client context speaking only ``version``, if this OpenSSL lets us make one."""
    ctx = insecure_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            ctx.minimum_version = ctx.maximum_version = version
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        except (ValueError, ssl.SSLError):
            return None
    return ctx


def test_context_cipher_list_is_modern() -> None:
    """The server context offers no RC4/3DES/NULL/EXPORT/CBC/MD5 suite, only AEAD ones."""
    conn = SSL.Connection(context_for(NodeSettings()).getContext(), None)
    ciphers = conn.get_cipher_list()
    assert ciphers
    for name in ciphers:
        assert not any(weak in name for weak in WEAK), name
        assert "GCM" in name or "CHACHA20" in name, name


def test_context_refuses_old_protocol_versions() -> None:
    """The context's options forbid SSLv2/3, TLS 1.0 and TLS 1.1."""
    options = ReloadableContext(None, None).getContext().set_options(0)  # 0: read only
    for flag in (SSL.OP_NO_SSLv2, SSL.OP_NO_SSLv3, SSL.OP_NO_TLSv1, SSL.OP_NO_TLSv1_1):
        assert options & flag == flag


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_old_tls_client_refused(imap_server, version: str) -> None:
    """A client that can only speak TLS 1.0 / 1.1 fails the handshake; 1.2 succeeds."""
    port, stop = listen(imap_server)
    try:
        old = _old_client(getattr(ssl.TLSVersion, version))
        if old is not None:  # else the option test above already pins the refusal
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                    pytest.raises((ssl.SSLError, ConnectionResetError)):
                old.wrap_socket(raw, server_hostname="localhost")
        modern = _old_client(ssl.TLSVersion.TLSv1_2)
        assert modern is not None
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                modern.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.version() == "TLSv1.2"
            assert tls.recv(100).startswith(b"* OK")
    finally:
        stop()


def test_reload_swaps_certificate_and_keeps_old_on_error(tmp_path) -> None:
    """reload() reads the files again; an unreadable/bad file keeps the old certificate."""
    path = tmp_path / "c.pem"
    path.write_bytes(self_signed_pem("a.example.test"))
    ctx = ReloadableContext(str(path), str(path))
    old = ctx.options
    path.write_bytes(self_signed_pem("b.example.test"))
    answer = ctx.reload()
    assert answer["reloaded"] and answer["subject"] == "b.example.test"
    assert ctx.options is not old and ctx.generation == 2
    path.write_bytes(b"not a certificate")
    kept = ctx.options
    answer = ctx.reload()
    assert not answer["reloaded"] and answer["why"] and ctx.options is kept
    assert not ReloadableContext(None, None).reload()["reloaded"]
