"""TLS server contexts: a configured certificate, or a self-signed one for development.

Both STARTTLS (RFC 3501 §6.2.1) and implicit-TLS listeners (RFC 8314 §3.3, port
993) use the node's certificate: ``[tls] cert``/``key`` when configured, else a
self-signed one for ``localhost`` made in memory on first use.  An ``ssl:``
endpoint that names its own ``privateKey=`` keeps Twisted's meaning instead.

Invariants:
  * Modern defaults (Mozilla "intermediate"): TLS 1.2 at least, and for TLS 1.2 only
    ECDHE/DHE key exchange with AES-GCM or ChaCha20-Poly1305 (so no RC4, 3DES, NULL,
    EXPORT, CBC or MD5/SHA-1 MACs); TLS 1.3 suites are OpenSSL's (all AEAD).
  * The certificate can be reloaded without a restart (``reload_certificates``: the
    ``clustermail tls reload`` admin command and SIGHUP): new handshakes get the new
    certificate, established connections keep the one they negotiated.  A reload that
    cannot read or parse the files keeps the old certificate and says why.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from twisted.application import service
from twisted.logger import Logger

log = Logger()
MINIMUM_TLS = "TLSv1_2"
# RFC 9325 §4.2 recommendations (AEAD + forward secrecy), Mozilla "intermediate" list.
CIPHERS = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
           "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
           "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
           "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305")

_CACHE: dict[tuple[str | None, str | None], ReloadableContext] = {}


class ReloadableContext:
    """An old-style context factory (``getContext``) whose certificate can be swapped.

    TLSMemoryBIOFactory and ``startTLS`` call ``getContext`` for every new connection,
    so a swap reaches new handshakes only (see Invariants)."""

    def __init__(self, cert_path: str | None, key_path: str | None) -> None:
        self.cert_path, self.key_path = cert_path, key_path
        self.options = _build(cert_path, key_path)
        self.generation = 1

    def getContext(self) -> Any:  # noqa: N802 - Twisted's IOpenSSLContextFactory
        return self.options.getContext()

    def reload(self) -> dict[str, Any]:
        """Read the certificate files again; the old certificate stays on failure."""
        if self.cert_path is None:
            return {"reloaded": False, "why": "no [tls] cert configured (self-signed)"}
        try:
            options = _build(self.cert_path, self.key_path)
            options.getContext()  # fails now, not at the next handshake
        except Exception as err:  # unreadable file, bad PEM, key not matching
            why = str(err).splitlines()[0] if str(err) else type(err).__name__
            log.error("tls: reload of {cert} failed, old certificate kept: {why}",
                      cert=self.cert_path, why=why)
            return {"reloaded": False, "why": why, "cert": self.cert_path}
        self.options, self.generation = options, self.generation + 1
        log.info("tls: certificate {cert} reloaded (generation {n})", cert=self.cert_path,
                 n=self.generation)
        return {"reloaded": True, "cert": self.cert_path, "generation": self.generation,
                "subject": _subject(options)}


def context_for(settings: Any) -> Any:
    """The ReloadableContext for ``settings`` (cert/key paths), built once and cached.

    Without a configured certificate a self-signed one for ``localhost`` is
    generated in memory on first use (development and tests)."""
    cert_path = getattr(settings, "tls_cert", None)
    key_path = getattr(settings, "tls_key", None) or cert_path
    key = (cert_path, key_path)
    if key not in _CACHE:
        _CACHE[key] = ReloadableContext(cert_path, key_path)
    return _CACHE[key]


def reload_certificates(settings: Any) -> dict[str, Any]:
    """Reload the node's certificate (``clustermail tls reload``, SIGHUP)."""
    return context_for(settings).reload()


def _subject(options: Any) -> str:
    cert = options.certificate
    return str(cert.get_subject().CN) if cert is not None else ""


def _build(cert_path: str | None, key_path: str | None) -> Any:
    from twisted.internet import ssl

    if cert_path:
        with open(cert_path, "rb") as f:
            pem = f.read()
        if key_path and key_path != cert_path:
            with open(key_path, "rb") as f:
                pem += b"\n" + f.read()
    else:
        pem = self_signed_pem()
    return server_options(ssl.PrivateCertificate.loadPEM(pem))


def server_options(cert: Any) -> Any:
    """CertificateOptions for ``cert`` with the modern defaults (see Invariants)."""
    from twisted.internet import ssl

    return ssl.CertificateOptions(
        privateKey=cert.privateKey.original, certificate=cert.original,
        raiseMinimumTo=getattr(ssl.TLSVersion, MINIMUM_TLS),
        acceptableCiphers=ssl.AcceptableCiphers.fromOpenSSLCipherString(CIPHERS))


def client_options() -> Any:
    """CertificateOptions for a cluster link's dialling side, same floor and ciphers
    (peers authenticate by the cluster secret, cluster/link.py)."""
    from twisted.internet import ssl

    return ssl.CertificateOptions(
        raiseMinimumTo=getattr(ssl.TLSVersion, MINIMUM_TLS),
        acceptableCiphers=ssl.AcceptableCiphers.fromOpenSSLCipherString(CIPHERS))


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


class CertificateReloader(service.Service):
    """A twistd service: SIGHUP reloads the node's certificate (in the reactor thread).

    Installed only from the main thread (in-process test nodes run elsewhere); the
    previous SIGHUP handler is put back when the service stops."""

    name = "tls-reload"

    def __init__(self, settings: Any, reactor: Any) -> None:
        self.settings, self.reactor = settings, reactor
        self._previous: Any = None
        self._installed = False

    def startService(self) -> None:
        super().startService()
        if threading.current_thread() is not threading.main_thread():
            return
        self._previous = signal.signal(signal.SIGHUP, self._on_hup)
        self._installed = True

    def _on_hup(self, signum: int, frame: Any) -> None:
        self.reactor.callFromThread(self._reload)

    def _reload(self) -> None:
        log.info("tls: SIGHUP: reloading the certificate")
        reload_certificates(self.settings)

    def stopService(self) -> None:
        super().stopService()
        if self._installed:
            signal.signal(signal.SIGHUP, self._previous or signal.SIG_DFL)
            self._installed = False
