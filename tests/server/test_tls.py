"""The server's TLS context: certificates made here with the openssl command,
a loopback echo server through asyncio with the context, and clear errors
for bad files."""

from __future__ import annotations

import asyncio
import shutil
import ssl
from pathlib import Path

import pytest

from mqlog.errors import ConfigError
from mqlog.server.auth import Credentials, ServerSecurity, server_ssl_context, set_user
from tests.server._pki import make_key_and_cert, openssl

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None,
                                reason="needs the openssl command")

#: Bound on each loopback exchange, so a broken handshake fails instead of hanging.
EXCHANGE_TIMEOUT_S = 30


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    directory = tmp_path_factory.mktemp("pki")
    server = make_key_and_cert(directory, "localhost")
    ca = make_key_and_cert(directory, "client-ca")
    client = make_key_and_cert(directory, "client", ca=ca)
    stranger = make_key_and_cert(directory, "stranger")
    return {"server": server, "ca": ca, "client": client, "stranger": stranger}


async def echo_once(server_context: ssl.SSLContext, client_context: ssl.SSLContext) -> bytes:
    """Start a TLS echo server on a free loopback port, send one line, return the echo."""
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(await reader.readline())
            await writer.drain()
        except (ssl.SSLError, ConnectionError):
            pass  # the client refused or was refused: its side reports it
        finally:
            writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            "127.0.0.1", port, ssl=client_context, server_hostname="localhost"),
            EXCHANGE_TIMEOUT_S)
        writer.write(b"hello over tls\n")
        line = await asyncio.wait_for(reader.readline(), EXCHANGE_TIMEOUT_S)
        writer.close()
        return line
    finally:
        server.close()
        await server.wait_closed()


def client_context(pki: dict[str, tuple[Path, Path]], identity: str | None = None
                   ) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki["server"][0]))
    if identity is not None:
        context.load_cert_chain(*pki[identity])
    return context


def test_a_client_that_trusts_the_certificate_talks_through_it(pki: dict) -> None:
    context = server_ssl_context(*pki["server"])
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert asyncio.run(echo_once(context, client_context(pki))) == b"hello over tls\n"


def test_mutual_tls_wants_a_client_certificate_from_the_ca(pki: dict) -> None:
    context = server_ssl_context(*pki["server"], client_ca=pki["ca"][0])
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert asyncio.run(echo_once(context, client_context(pki, "client"))) == \
        b"hello over tls\n"
    for refused in (client_context(pki), client_context(pki, "stranger")):
        # TLS 1.3: the server refuses the certificate after the client's handshake
        # returned, so the failure shows on the first read.
        with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
            line = asyncio.run(echo_once(context, refused))
            if not line:
                raise ConnectionError("closed without an echo")


def test_missing_and_bad_files_are_config_errors(pki: dict, tmp_path: Path) -> None:
    cert, key = pki["server"]
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    encrypted = tmp_path / "encrypted.key"
    openssl("pkey", "-in", key, "-aes256", "-passout", "pass:secret", "-out", encrypted)
    cases = [
        ((tmp_path / "missing.pem", key), "--tls-cert .*missing.pem: no such file"),
        ((cert, tmp_path / "missing.key"), "--tls-key .*missing.key: no such file"),
        ((tmp_path, key), "--tls-cert .*: not a file"),
        ((junk, key), "--tls-cert .*junk.pem: no PEM certificate"),
        ((cert, junk), "--tls-key .*junk.pem: not a PEM private key that matches"),
        ((cert, pki["stranger"][1]), "--tls-key .*stranger.key: not a PEM private key"),
        ((cert, encrypted), "--tls-key .*encrypted.key: the key is encrypted"),
    ]
    for (cert_path, key_path), complaint in cases:
        with pytest.raises(ConfigError, match=complaint):
            server_ssl_context(cert_path, key_path)
    with pytest.raises(ConfigError, match="--tls-client-ca .*junk.pem: no PEM certificate"):
        server_ssl_context(cert, key, client_ca=junk)


def test_server_security_from_options(pki: dict, tmp_path: Path) -> None:
    cert, key = pki["server"]
    users = tmp_path / "users.json"
    set_user(users, "alice", Credentials.from_password("wonderland"))
    plain = ServerSecurity.from_options()
    assert (plain.users, plain.ssl_context, plain.authenticates,
            plain.kafka_security_protocol) == (None, None, False, "PLAINTEXT")
    tls = ServerSecurity.from_options(tls_cert=cert, tls_key=key)
    assert tls.ssl_context is not None and not tls.authenticates
    assert tls.kafka_security_protocol == "SSL"
    sasl = ServerSecurity.from_options(users=users)
    assert sasl.authenticates and sasl.kafka_security_protocol == "SASL_PLAINTEXT"
    assert sasl.users is not None and sasl.users.names() == ["alice"]
    both = ServerSecurity.from_options(users, cert, key)
    assert both.kafka_security_protocol == "SASL_SSL"
    mutual = ServerSecurity.from_options(tls_cert=cert, tls_key=key,
                                         tls_client_ca=pki["ca"][0])
    assert mutual.authenticates and mutual.kafka_security_protocol == "SSL"


@pytest.mark.parametrize(("options", "complaint"), [
    ({"tls_cert": "c.pem"}, "--tls-cert and --tls-key go together"),
    ({"tls_key": "k.pem"}, "--tls-cert and --tls-key go together"),
    ({"tls_client_ca": "ca.pem"}, "--tls-client-ca needs --tls-cert"),
    ({"users": "/nonexistent/users.json"}, "users file /nonexistent/users.json does not"),
])
def test_server_security_refuses_incomplete_options(options: dict, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        ServerSecurity.from_options(**options)
