"""Certificates for TLS tests, made with the ``openssl`` command: self-signed,
or signed by a CA made the same way. Each names ``localhost`` and 127.0.0.1
(subjectAltName), which clients check."""

from __future__ import annotations

import subprocess
from pathlib import Path


def openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def make_key_and_cert(directory: Path, name: str, ca: tuple[Path, Path] | None = None
                      ) -> tuple[Path, Path]:
    """(cert, key) for CN ``name``: self-signed, or signed by ``ca`` (cert, key)."""
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    san = "subjectAltName=DNS:localhost,IP:127.0.0.1"
    if ca is None:
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                "-days", "2", "-subj", f"/CN={name}", "-addext", san)
        return cert, key
    request = directory / f"{name}.csr"
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", request,
            "-subj", f"/CN={name}")
    openssl("x509", "-req", "-in", request, "-CA", ca[0], "-CAkey", ca[1],
            "-CAcreateserial", "-out", cert, "-days", "2")
    return cert, key
