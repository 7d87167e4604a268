"""Real Kafka clients (confluent-kafka, kafka-python, aiokafka, kcat) log in
through SaslSession and the TLS context: a small
loopback broker made here answers ApiVersions, the two SASL APIs and
Metadata (enough for a client to connect and list topics), closes a
connection that sends anything else before logging in, and records each
connection's outcome. It stands in for the server's runtime, which wires the
same pieces."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import shutil
import ssl
import struct
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from mqlog.server.auth import Credentials, UserStore, server_ssl_context, set_user
from mqlog.server.kafka._codec import (
    UnsupportedVersionError,
    build,
    decode_request,
    encode_response,
    part,
    peek_prefix,
    response_type,
)
from mqlog.server.kafka._context import ServerState
from mqlog.server.kafka._sasl import (
    API_VERSIONS,
    SaslSession,
    allowed_before_auth,
    handle_sasl_authenticate,
    handle_sasl_handshake,
)

#: Versions the small broker answers besides the SASL APIs: ApiVersions, Metadata.
VERSIONS = {**API_VERSIONS, 18: (0, 3), 3: (0, 12)}
#: Bound on a client's attempt, so a broken exchange fails instead of hanging.
CLIENT_TIMEOUT_S = 20


class SmallBroker:
    """An asyncio Kafka listener on a free loopback port, in a thread."""

    def __init__(self, users: UserStore, context: ssl.SSLContext | None) -> None:
        self.users, self.context = users, context
        self.logins: list[tuple[str | None, str | None]] = []  # (mechanism, principal)
        self.failures: list[str | None] = []  # mechanism of each failed session
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SmallBroker:
        self._thread.start()
        assert self._ready.wait(CLIENT_TIMEOUT_S), "the broker did not start"
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(CLIENT_TIMEOUT_S)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(
            self._serve, "127.0.0.1", 0, ssl=self.context))
        self.port = server.sockets[0].getsockname()[1]
        self.state = ServerState(engine=None, host="127.0.0.1",  # type: ignore[arg-type]
                                 port=self.port, cluster_id="sasl-test")
        self._ready.set()
        self.loop.run_forever()
        server.close()
        connections = asyncio.all_tasks(self.loop)
        for task in connections:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*connections, return_exceptions=True))
        self.loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = SaslSession(self.users)
        try:
            while True:
                size, = struct.unpack(">i", await reader.readexactly(4))
                frame = await reader.readexactly(size)
                api_key, api_version, correlation_id = peek_prefix(frame)
                if not session.authenticated and not allowed_before_auth(api_key):
                    return  # as a Kafka broker: close, unanswered
                if api_key == 3:  # the body (which topics) does not matter here
                    writer.write(encode_response(3, api_version, correlation_id,
                                                 self._metadata(api_version)))
                    continue
                try:
                    request = decode_request(frame)
                except UnsupportedVersionError as error:  # KIP-511: answer ApiVersions v0
                    writer.write(encode_response(18, 0, error.correlation_id, self._api_versions(
                        0, ErrorCode.unsupported_version)))
                    continue
                body = await self._answer(request, session)
                writer.write(encode_response(api_key, api_version, correlation_id, body))
                await writer.drain()
                if session.failed:
                    self.failures.append(session.mechanism)
                    return
                if session.authenticated and request.api_key == 36:
                    self.logins.append((session.mechanism, session.principal))
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            return
        finally:
            writer.close()

    async def _answer(self, request: Any, session: SaslSession) -> Any:
        if request.api_key == 17:
            return await handle_sasl_handshake(self.state, request, session)
        if request.api_key == 36:
            return await handle_sasl_authenticate(self.state, request, session)
        assert request.api_key == 18, request
        return self._api_versions(request.api_version, ErrorCode.none)

    def _metadata(self, version: int) -> Any:
        cls = response_type(3, version)
        broker = part(cls, "MetadataResponseBroker")(node_id=0, host="127.0.0.1",
                                                    port=self.port)
        return build(cls, throttle_time=datetime.timedelta(0), brokers=(broker,),
                     cluster_id="sasl-test", controller_id=0, topics=())

    @staticmethod
    def _api_versions(version: int, error: ErrorCode) -> Any:
        cls = response_type(18, version)
        entry = part(cls, "ApiVersion")
        keys = tuple(entry(api_key=key, min_version=low, max_version=high)
                     for key, (low, high) in sorted(VERSIONS.items()))
        return build(cls, error_code=error, api_keys=keys, throttle_time=datetime.timedelta(0))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("pki")
    key, cert = directory / "server.key", directory / "server.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


@pytest.fixture(scope="module")
def users(tmp_path_factory: pytest.TempPathFactory) -> UserStore:
    path = tmp_path_factory.mktemp("users") / "users.json"
    set_user(path, "alice", Credentials.from_password("wonderland"))
    return UserStore(path)


@contextlib.contextmanager
def broker(users: UserStore, pki: tuple[Path, Path], tls: bool) -> Iterator[SmallBroker]:
    with SmallBroker(users, server_ssl_context(*pki) if tls else None) as running:
        yield running


def confluent_list_topics(port: int, mechanism: str, password: str, cafile: Path | None
                          ) -> None:
    from confluent_kafka.admin import AdminClient

    config = {"bootstrap.servers": f"127.0.0.1:{port}",
              "security.protocol": "SASL_SSL" if cafile else "SASL_PLAINTEXT",
              "sasl.mechanism": mechanism, "sasl.username": "alice",
              "sasl.password": password}
    if cafile is not None:
        config["ssl.ca.location"] = str(cafile)
    AdminClient(config).list_topics(timeout=CLIENT_TIMEOUT_S)


def kafka_python_list_topics(port: int, mechanism: str, password: str, cafile: Path | None
                             ) -> None:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        bootstrap_servers=f"127.0.0.1:{port}",
        security_protocol="SASL_SSL" if cafile else "SASL_PLAINTEXT",
        sasl_mechanism=mechanism, sasl_plain_username="alice", sasl_plain_password=password,
        ssl_cafile=str(cafile) if cafile else None,
        request_timeout_ms=CLIENT_TIMEOUT_S * 1000)
    try:
        consumer.topics()
    finally:
        consumer.close()


def aiokafka_list_topics(port: int, mechanism: str, password: str, cafile: Path | None
                         ) -> None:
    from aiokafka import AIOKafkaClient
    from aiokafka.helpers import create_ssl_context

    async def run() -> None:
        client = AIOKafkaClient(
            bootstrap_servers=f"127.0.0.1:{port}",
            security_protocol="SASL_SSL" if cafile else "SASL_PLAINTEXT",
            sasl_mechanism=mechanism, sasl_plain_username="alice",
            sasl_plain_password=password,
            ssl_context=create_ssl_context(cafile=str(cafile)) if cafile else None,
            api_version="2.0.0", request_timeout_ms=CLIENT_TIMEOUT_S * 1000)
        try:
            await client.bootstrap()
        finally:
            await client.close()

    asyncio.run(run())


def kcat_list_topics(port: int, mechanism: str, password: str, cafile: Path | None) -> None:
    """kcat -L: Debian's kcat links an older librdkafka (2.0.2) than confluent-kafka's."""
    if shutil.which("kcat") is None:
        pytest.skip("needs kcat")
    options = {"security.protocol": "SASL_SSL" if cafile else "SASL_PLAINTEXT",
               "sasl.mechanism": mechanism, "sasl.username": "alice", "sasl.password": password}
    if cafile is not None:
        options["ssl.ca.location"] = str(cafile)
    arguments = [item for key, value in options.items() for item in ("-X", f"{key}={value}")]
    subprocess.run(["kcat", "-b", f"127.0.0.1:{port}", *arguments, "-L", "-m",
                    str(CLIENT_TIMEOUT_S)], check=True, capture_output=True,
                   timeout=CLIENT_TIMEOUT_S * 2)


CLIENTS = {"confluent-kafka": confluent_list_topics, "kafka-python": kafka_python_list_topics,
           "aiokafka": aiokafka_list_topics, "kcat": kcat_list_topics}


@pytest.mark.parametrize("tls", [True, False], ids=["SASL_SSL", "SASL_PLAINTEXT"])
@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_a_client_logs_in(client: str, mechanism: str, tls: bool, users: UserStore,
                          pki: tuple[Path, Path]) -> None:
    with broker(users, pki, tls) as running:
        CLIENTS[client](running.port, mechanism, "wonderland", pki[0] if tls else None)
    assert (mechanism, "alice") in running.logins
    assert running.failures == []


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_a_wrong_password_is_refused(mechanism: str, users: UserStore,
                                     pki: tuple[Path, Path]) -> None:
    """aiokafka gives up at once (librdkafka and kafka-python retry until their
    timeout; their side of a refusal is in test_sasl.py)."""
    from aiokafka.errors import KafkaConnectionError

    with broker(users, pki, True) as running, pytest.raises(KafkaConnectionError):
        aiokafka_list_topics(running.port, mechanism, "wrong", pki[0])
    assert running.logins == []
    assert running.failures == [mechanism]


def test_requests_before_login_close_the_connection(users: UserStore,
                                                    pki: tuple[Path, Path]) -> None:
    """A client that does not log in gets no answer to Metadata."""
    from aiokafka import AIOKafkaClient
    from aiokafka.errors import KafkaConnectionError

    async def run(port: int) -> None:
        client = AIOKafkaClient(bootstrap_servers=f"127.0.0.1:{port}",
                                api_version="2.0.0", request_timeout_ms=CLIENT_TIMEOUT_S * 1000)
        try:
            await client.bootstrap()
        finally:
            await client.close()

    with broker(users, pki, False) as running, pytest.raises(KafkaConnectionError):
        asyncio.run(run(running.port))
    assert running.logins == [] and running.failures == []
