"""The TLS context of a server: ``--tls-cert`` / ``--tls-key`` (and optionally
``--tls-client-ca``) to an :class:`ssl.SSLContext`.

Invariants: the context accepts TLS 1.2 and newer only, with the ``ssl``
module's default (secure) cipher choice; every problem with the files (missing,
unreadable, not PEM, a key that does not match the certificate, a key that is
encrypted) is a :class:`~mqlog.errors.ConfigError` naming the file, raised
before the server listens. The key must be unencrypted: a server cannot stop
to ask for a passphrase.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from mqlog.errors import ConfigError


class _EncryptedKeyError(Exception):
    """Raised from the passphrase callback: the key wants a passphrase."""


def _no_passphrase() -> str:
    raise _EncryptedKeyError


def server_ssl_context(cert: str | os.PathLike[str], key: str | os.PathLike[str],
                       client_ca: str | os.PathLike[str] | None = None) -> ssl.SSLContext:
    """A server-side TLS context from a PEM certificate chain and its PEM key.

    ``cert`` holds the server's certificate, followed by any intermediate
    certificates; ``key`` its private key (it may be the same file). With
    ``client_ca`` (PEM, one or more CA certificates), every client must present
    a certificate signed by one of them (mutual TLS); without it no client
    certificate is asked for.
    """
    cert_path, key_path = Path(cert), Path(key)
    for flag, path in (("--tls-cert", cert_path), ("--tls-key", key_path),
                       ("--tls-client-ca", Path(client_ca) if client_ca else None)):
        if path is not None:
            _check_readable(flag, path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_path, key_path, password=_no_passphrase)
    except _EncryptedKeyError:
        raise ConfigError(f"--tls-key {key_path}: the key is encrypted; give an "
                          f"unencrypted key (openssl pkey -in KEY -out PLAIN)") from None
    except ssl.SSLError:
        if not _holds_certificates(cert_path):
            raise ConfigError(f"--tls-cert {cert_path}: no PEM certificate in it") from None
        raise ConfigError(f"--tls-key {key_path}: not a PEM private key that matches "
                          f"--tls-cert {cert_path}") from None
    if client_ca is not None:
        try:
            context.load_verify_locations(cafile=os.fspath(client_ca))
        except ssl.SSLError:
            raise ConfigError(f"--tls-client-ca {client_ca}: no PEM certificate in it"
                              ) from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _holds_certificates(path: Path) -> bool:
    """True when ``path`` parses as PEM certificates (OpenSSL's "PEM lib" error
    from load_cert_chain does not say which of the two files is at fault)."""
    try:
        ssl.create_default_context(cafile=os.fspath(path))
    except ssl.SSLError:
        return False
    return True


def _check_readable(flag: str, path: Path) -> None:
    if not path.exists():
        raise ConfigError(f"{flag} {path}: no such file")
    if not path.is_file():
        raise ConfigError(f"{flag} {path}: not a file")
    try:
        with open(path, "rb"):
            pass
    except OSError as error:
        raise ConfigError(f"{flag} {path}: cannot be read ({error.strerror})") from None
