"""TLS server contexts: a configured certificate, or a self-signed one for development."""

from __future__ import annotations

from typing import Any

_CACHE: dict[tuple[str | None, str | None], Any] = {}


def context_for(settings: Any) -> Any:
    """CertificateOptions for ``settings`` (cert/key paths), built once and cached.

    Without a configured certificate a self-signed one for ``localhost`` is
    generated in memory on first use (development and tests).  Returns None
    when pyOpenSSL is unavailable."""
    cert_path = getattr(settings, "tls_cert", None)
    key_path = getattr(settings, "tls_key", None) or cert_path
    key = (cert_path, key_path)
    if key not in _CACHE:
        _CACHE[key] = _build(cert_path, key_path)
    return _CACHE[key]


def _build(cert_path: str | None, key_path: str | None) -> Any:
    try:
        from twisted.internet import ssl
    except ImportError:  # pragma: no cover - pyOpenSSL is a dependency
        return None
    if cert_path:
        with open(cert_path, "rb") as f:
            pem = f.read()
        if key_path and key_path != cert_path:
            with open(key_path, "rb") as f:
                pem += b"\n" + f.read()
        return ssl.PrivateCertificate.loadPEM(pem).options()
    keypair = ssl.KeyPair.generate(size=2048)
    return keypair.selfSignedCert(1, CN="localhost").options()
