"""Logins and TLS against real server processes: every client produces and
consumes over SASL_SSL and SASL_PLAINTEXT with PLAIN and SCRAM-SHA-256, and
over TLS without SASL (SSL); a wrong password is refused; a request before
login, or after a failed one, closes the connection. One server per
security setting, shared by the module."""

from __future__ import annotations

import itertools
import shutil
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kio.schema.errors import ErrorCode

import mqlog
from mqlog.server.auth import Credentials, set_user
from tests.server._auth_clients import CLIENTS, RECORDS, TIMEOUT_S, Login
from tests.server._pki import make_key_and_cert
from tests.server._serve import (
    RunningServer,
    closed_by_peer,
    connect,
    decode_response,
    encode_request,
    read_frame,
    serving_several,
)

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None,
                                reason="needs the openssl command")

USER, PASSWORD = "alice", "wonderland"
_topics = itertools.count()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RunningServer]]:
    """security.protocol -> a server that clients reach with it; the server's
    certificate is in ``cafile`` next to them."""
    directory = tmp_path_factory.mktemp("auth")
    cert, key = make_key_and_cert(directory, "localhost")
    users = directory / "users.json"
    set_user(users, USER, Credentials.from_password(PASSWORD))
    tls = ("--tls-cert", str(cert), "--tls-key", str(key))
    settings = {"SASL_SSL": ("--users", str(users), *tls),
                "SASL_PLAINTEXT": ("--users", str(users)), "SSL": tls}
    with serving_several([(directory / protocol.lower(), args)
                          for protocol, args in settings.items()]) as running:
        yield dict(zip(settings, running, strict=True))


@pytest.fixture(scope="module")
def cafile(servers: dict[str, RunningServer]) -> Path:
    return servers["SSL"].directory.parent / "localhost.pem"


def new_topic(server: RunningServer) -> str:
    """A fresh one-partition topic of ``server``'s log, made through the embedded door."""
    name = f"auth-{next(_topics)}"
    with mqlog.open(server.directory) as log:
        log.create_topic(name, partitions=1)
    return name


SETTINGS = [("SASL_SSL", "PLAIN"), ("SASL_SSL", "SCRAM-SHA-256"),
            ("SASL_PLAINTEXT", "PLAIN"), ("SASL_PLAINTEXT", "SCRAM-SHA-256"), ("SSL", None)]


@pytest.mark.parametrize(("protocol", "mechanism"), SETTINGS,
                         ids=[f"{p}-{m}" if m else p for p, m in SETTINGS])
@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_a_client_logs_in_produces_and_consumes(client: str, protocol: str,
                                                mechanism: str | None,
                                                servers: dict[str, RunningServer],
                                                cafile: Path) -> None:
    server = servers[protocol]
    login = Login(protocol, mechanism, USER, PASSWORD, cafile if "SSL" in protocol else None)
    topic = new_topic(server)
    assert CLIENTS[client](server.address, topic, login) == RECORDS
    with mqlog.open(server.directory) as log:  # the other door sees them
        stored = log.read(topic, 0, 0, max_records=100)
    assert [(r.key, r.value) for r in stored][-len(RECORDS):] == [
        (k.encode(), v.encode()) for k, v in RECORDS]


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_aiokafka_with_a_wrong_password_is_refused(mechanism: str,
                                                   servers: dict[str, RunningServer],
                                                   cafile: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """aiokafka gives up at once, and logs why."""
    from aiokafka.errors import KafkaConnectionError

    login = Login("SASL_SSL", mechanism, USER, "wrong", cafile)
    with pytest.raises(KafkaConnectionError):
        CLIENTS["aiokafka"](servers["SASL_SSL"].address, "never", login)
    assert "SaslAuthenticationFailed: Authentication failed: invalid user name or password " \
           f"(SASL mechanism {mechanism})" in caplog.text


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_confluent_with_a_wrong_password_reports_an_authentication_error(
        mechanism: str, servers: dict[str, RunningServer]) -> None:
    from confluent_kafka import KafkaError, Producer

    errors: list[KafkaError] = []
    login = Login("SASL_PLAINTEXT", mechanism, USER, "wrong", None)
    producer = Producer({"bootstrap.servers": servers["SASL_PLAINTEXT"].address,
                         **login.librdkafka(), "error_cb": errors.append})
    deadline = time.monotonic() + TIMEOUT_S
    while not errors and time.monotonic() < deadline:
        producer.poll(0.1)
    assert errors, "no error reported"
    assert errors[0].code() == KafkaError._AUTHENTICATION
    assert "Authentication failed" in errors[0].str()



def test_api_versions_before_login_lists_the_sasl_apis(
        servers: dict[str, RunningServer]) -> None:
    with connect(servers["SASL_PLAINTEXT"]) as sock:
        sock.sendall(encode_request(18, 2, 1))
        _, body = decode_response(18, 2, read_frame(sock))
    ranges = {entry.api_key: (entry.min_version, entry.max_version) for entry in body.api_keys}
    assert ranges[17] == (0, 1)
    assert ranges[36] == (0, 2)


def test_a_server_with_tls_only_does_not_advertise_sasl(
        servers: dict[str, RunningServer], cafile: Path) -> None:
    context = ssl.create_default_context(cafile=str(cafile))
    with context.wrap_socket(connect(servers["SSL"]), server_hostname="localhost") as sock:
        sock.sendall(encode_request(18, 2, 1))
        _, body = decode_response(18, 2, read_frame(sock))
    keys = {entry.api_key for entry in body.api_keys}
    assert 3 in keys
    assert not keys & {17, 36}


def test_a_request_before_login_closes_the_connection(
        servers: dict[str, RunningServer]) -> None:
    with connect(servers["SASL_PLAINTEXT"]) as sock:
        sock.sendall(encode_request(3, 4, 1, topics=None, allow_auto_topic_creation=False))
        assert closed_by_peer(sock)


def test_a_failed_login_is_answered_then_closed(servers: dict[str, RunningServer]) -> None:
    with connect(servers["SASL_PLAINTEXT"]) as sock:
        sock.sendall(encode_request(17, 1, 1, mechanism="PLAIN"))
        _, handshake = decode_response(17, 1, read_frame(sock))
        assert handshake.error_code == ErrorCode.none
        sock.sendall(encode_request(36, 2, 2, auth_bytes=b"\0alice\0wrong"))
        _, answer = decode_response(36, 2, read_frame(sock))
        assert answer.error_code == ErrorCode.sasl_authentication_failed
        assert closed_by_peer(sock)


def test_a_login_then_metadata(servers: dict[str, RunningServer]) -> None:
    """After a PLAIN login over a raw socket, any request is answered."""
    with connect(servers["SASL_PLAINTEXT"]) as sock:
        sock.sendall(encode_request(17, 1, 1, mechanism="PLAIN"))
        read_frame(sock)
        sock.sendall(encode_request(36, 2, 2, auth_bytes=f"\0{USER}\0{PASSWORD}".encode()))
        _, answer = decode_response(36, 2, read_frame(sock))
        assert answer.error_code == ErrorCode.none
        sock.sendall(encode_request(3, 4, 3, topics=None, allow_auto_topic_creation=False))
        correlation, metadata = decode_response(3, 4, read_frame(sock))
    assert correlation == 3
    assert [broker.port for broker in metadata.brokers] == [servers["SASL_PLAINTEXT"].port]
