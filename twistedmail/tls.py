"""TLS server contexts: a configured certificate, or a self-signed one for development.

Both STARTTLS (RFC 3501 §6.2.1) and implicit-TLS listeners (RFC 8314 §3.3, port
993) use the node's certificate: ``[tls] cert``/``key`` when configured, else a
self-signed one for ``localhost`` made in memory on first use.  An ``ssl:``
endpoint that names its own ``privateKey=`` keeps Twisted's meaning instead.
"""

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
    return ssl.PrivateCertificate.loadPEM(self_signed_pem()).options()


def self_signed_pem(hostname: str = "localhost") -> bytes:
    """A fresh self-signed certificate and its key, PEM-encoded (development only)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM) + key_pem


def uses_node_certificate(description: str) -> bool:
    """True for an ``ssl:`` endpoint without ``privateKey=``/``certKey=``: it is
    served with the node's certificate (``ssl:993:interface=0.0.0.0``)."""
    kind, _, rest = description.partition(":")
    own = ("privateKey=", "certKey=")
    return kind == "ssl" and not any(arg.startswith(own) for arg in rest.split(":"))


def plain_description(description: str) -> str:
    """The TCP endpoint under such an ``ssl:`` endpoint (``ssl:993`` → ``tcp:993``)."""
    return "tcp:" + description.partition(":")[2] if uses_node_certificate(description) \
        else description


def server_endpoint(reactor: Any, description: str, settings: Any,
                    factory: Any) -> tuple[Any, Any]:
    """(endpoint, factory) to listen with; implicit TLS with the node's certificate
    wraps ``factory`` in a TLSMemoryBIOFactory over a TCP endpoint."""
    from twisted.internet import endpoints

    if not uses_node_certificate(description):
        return endpoints.serverFromString(reactor, description), factory
    from twisted.protocols.tls import TLSMemoryBIOFactory

    tcp = endpoints.serverFromString(reactor, plain_description(description))
    return tcp, TLSMemoryBIOFactory(context_for(settings), False, factory)
