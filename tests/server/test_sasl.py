"""SASL sessions of the Kafka server, driven by real client-side code: kafka-python's
protocol classes encode the requests and decode the responses, kafka-python's
PLAIN and SCRAM mechanisms produce the auth bytes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from kafka.net.sasl.plain import SaslMechanismPlain
from kafka.net.sasl.scram import SaslMechanismScram, ScramClient
from kafka.protocol.sasl import (
    SaslAuthenticateRequest,
    SaslAuthenticateResponse,
    SaslHandshakeRequest,
    SaslHandshakeResponse,
)
from kio.schema.errors import ErrorCode

from mqlog.server.auth import Credentials, UserStore, set_user
from mqlog.server.kafka._codec import decode_request, encode_response
from mqlog.server.kafka._context import ServerState
from mqlog.server.kafka._sasl import (
    API_VERSIONS,
    SaslSession,
    allowed_before_auth,
    handle_sasl_authenticate,
    handle_sasl_handshake,
)

SERVER = ServerState(engine=None, host="127.0.0.1", port=9092,  # type: ignore[arg-type]
                     cluster_id="test")
FAILED = ErrorCode.sasl_authentication_failed.value


@pytest.fixture(scope="module")
def users(tmp_path_factory: pytest.TempPathFactory) -> UserStore:
    path = tmp_path_factory.mktemp("users") / "users.json"
    set_user(path, "alice", Credentials.from_password("wonderland"))
    set_user(path, "bob", Credentials.from_password("builder", iterations=8192))
    return UserStore(path)


def exchange(session: SaslSession, request: Any, version: int) -> Any:
    """Send a kafka-python request through the server's codec and handler and
    decode the response frame with kafka-python."""
    request.API_VERSION = version
    request.with_header(correlation_id=42, client_id="test-client")
    decoded = decode_request(request.encode(header=True))
    handler = (handle_sasl_handshake if decoded.api_key == 17 else handle_sasl_authenticate)
    body = asyncio.run(handler(SERVER, decoded, session))
    frame = encode_response(decoded.api_key, decoded.api_version, 42, body)
    response_class = (SaslHandshakeResponse if decoded.api_key == 17
                      else SaslAuthenticateResponse)
    response = response_class.decode(frame[4:], version=version, header=True)
    assert response._header.correlation_id == 42
    return response


def login(session: SaslSession, mechanism: Any, name: str, version: int) -> Any:
    """Run a kafka-python mechanism to its end; the last response."""
    handshake = exchange(session, SaslHandshakeRequest(mechanism=name), 1)
    assert handshake.error_code == 0
    assert handshake.mechanisms == ["PLAIN", "SCRAM-SHA-256"]
    while True:
        response = exchange(session, SaslAuthenticateRequest(
            auth_bytes=mechanism.auth_bytes()), version)
        if response.error_code:
            return response
        mechanism.receive(response.auth_bytes)
        if mechanism.is_done():
            return response


def kafka_python_mechanism(name: str, user: str, password: str) -> Any:
    config = {"sasl_plain_username": user, "sasl_plain_password": password,
              "sasl_mechanism": name, "security_protocol": "SASL_SSL"}
    return (SaslMechanismPlain if name == "PLAIN" else SaslMechanismScram)(**config)


@pytest.mark.parametrize("version", [0, 1, 2])
@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
@pytest.mark.parametrize(("user", "password"), [("alice", "wonderland"), ("bob", "builder")])
def test_kafka_python_logs_in(users: UserStore, version: int, mechanism: str, user: str,
                              password: str) -> None:
    session = SaslSession(users)
    assert not session.authenticated
    client = kafka_python_mechanism(mechanism, user, password)
    response = login(session, client, mechanism, version)
    assert response.error_code == 0
    assert response.error_message is None
    assert client.is_authenticated()  # SCRAM: the client checked the server's signature
    if version >= 1:
        assert response.session_lifetime_ms == 0
    assert session.authenticated and not session.failed
    assert session.principal == user and session.mechanism == mechanism


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_wrong_password_and_unknown_user_fail_alike(users: UserStore, mechanism: str) -> None:
    answers = []
    for user, password in (("alice", "wrong"), ("mallory", "wonderland")):
        session = SaslSession(users)
        response = login(session, kafka_python_mechanism(mechanism, user, password),
                         mechanism, 2)
        assert response.error_code == FAILED
        assert session.failed and not session.authenticated and session.principal is None
        answers.append((response.error_code, response.error_message, response.auth_bytes))
    assert answers[0] == answers[1]
    assert "mallory" not in answers[1][1] and "alice" not in answers[0][1]


def test_scram_of_an_unknown_user_fails_only_at_the_proof(users: UserStore) -> None:
    """The server-first message looks the same for any name (a salt, 4096
    iterations): nothing tells the client whether the user exists."""
    session = SaslSession(users)
    assert session.handshake("SCRAM-SHA-256") == (ErrorCode.none, ["PLAIN", "SCRAM-SHA-256"])
    client = ScramClient("mallory", "x", "SCRAM-SHA-256")
    code, message, server_first, done = session.authenticate(client.first_message())
    assert (code, message, done) == (ErrorCode.none, None, False)
    client.process_server_first_message(server_first)
    assert server_first.endswith(b",i=4096")
    code, message, _bytes, done = session.authenticate(client.final_message())
    assert code == ErrorCode.sasl_authentication_failed and done


def test_scram_server_signature_proves_the_server(users: UserStore) -> None:
    session = SaslSession(users)
    session.handshake("SCRAM-SHA-256")
    client = ScramClient("bob", "builder", "SCRAM-SHA-256")
    _code, _message, server_first, _done = session.authenticate(client.first_message())
    client.process_server_first_message(server_first)
    code, message, server_final, done = session.authenticate(client.final_message())
    assert (code, message, done) == (ErrorCode.none, None, True)
    client.process_server_final_message(server_final)  # raises on a bad server signature
    assert session.principal == "bob"


def test_an_unknown_mechanism_gets_the_enabled_list(users: UserStore) -> None:
    session = SaslSession(users)
    response = exchange(session, SaslHandshakeRequest(mechanism="GSSAPI"), 1)
    assert response.error_code == ErrorCode.unsupported_sasl_mechanism.value
    assert response.mechanisms == ["PLAIN", "SCRAM-SHA-256"]
    assert session.failed


def test_only_the_enabled_mechanisms_are_offered(users: UserStore) -> None:
    session = SaslSession(users, mechanisms=("SCRAM-SHA-256",))
    assert session.handshake("PLAIN") == (ErrorCode.unsupported_sasl_mechanism,
                                          ["SCRAM-SHA-256"])


def test_handshake_v0_is_refused(users: UserStore) -> None:
    session = SaslSession(users)
    response = exchange(session, SaslHandshakeRequest(mechanism="PLAIN"), 0)
    assert response.error_code == ErrorCode.unsupported_version.value
    assert session.failed
    assert API_VERSIONS[17] == (0, 1)  # advertised for librdkafka's feature check


def test_steps_out_of_order_are_illegal(users: UserStore) -> None:
    session = SaslSession(users)
    response = exchange(session, SaslAuthenticateRequest(auth_bytes=b"\0alice\0wonderland"), 2)
    assert response.error_code == ErrorCode.illegal_sasl_state.value
    assert session.failed
    session = SaslSession(users)
    session.handshake("PLAIN")
    assert session.authenticate(b"\0alice\0wonderland")[0] == ErrorCode.none
    assert session.handshake("PLAIN")[0] == ErrorCode.illegal_sasl_state
    assert session.failed


@pytest.mark.parametrize(("auth_bytes", "complaint"), [
    (b"alice\0wonderland", "authzid NUL user NUL password"),
    (b"\0alice\0wonderland\0", "authzid NUL user NUL password"),
    (b"\0\xff\0wonderland", "not UTF-8"),
    (b"\0\0wonderland", "empty user name"),
    (b"bob\0alice\0wonderland", "authorization id"),
    (b"\0alice\0" + b"x" * 20000, "over"),
])
def test_malformed_plain_messages(users: UserStore, auth_bytes: bytes, complaint: str) -> None:
    session = SaslSession(users)
    session.handshake("PLAIN")
    code, message, server_bytes, done = session.authenticate(auth_bytes)
    assert code == ErrorCode.sasl_authentication_failed and done and server_bytes == b""
    assert message is not None and complaint in message
    assert session.failed


def test_plain_with_authzid_equal_to_the_user(users: UserStore) -> None:
    session = SaslSession(users)
    session.handshake("PLAIN")
    assert session.authenticate(b"alice\0alice\0wonderland")[0] == ErrorCode.none


@pytest.mark.parametrize("first", [b"garbage", b"n,,n=alice", b"\xff\xfe", b"n,,m=x,n=a,r=b"])
def test_malformed_scram_first_messages(users: UserStore, first: bytes) -> None:
    session = SaslSession(users)
    session.handshake("SCRAM-SHA-256")
    code, message, _bytes, done = session.authenticate(first)
    assert code == ErrorCode.sasl_authentication_failed and done
    assert session.failed


def test_a_tampered_scram_final_fails(users: UserStore) -> None:
    session = SaslSession(users)
    session.handshake("SCRAM-SHA-256")
    client = ScramClient("alice", "wonderland", "SCRAM-SHA-256")
    _code, _message, server_first, _done = session.authenticate(client.first_message())
    client.process_server_first_message(server_first)
    tampered = client.final_message().replace(b",r=", b",r=x", 1)
    code, message, _bytes, _done = session.authenticate(tampered)
    assert code == ErrorCode.sasl_authentication_failed
    assert message is not None and "invalid user name or password" in message


def test_a_user_added_later_can_log_in(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    set_user(path, "alice", Credentials.from_password("wonderland"))
    store = UserStore(path)
    set_user(path, "carol", Credentials.from_password("sea"))
    session = SaslSession(store)
    response = login(session, kafka_python_mechanism("SCRAM-SHA-256", "carol", "sea"),
                     "SCRAM-SHA-256", 2)
    assert response.error_code == 0 and session.principal == "carol"


def test_allowed_before_auth() -> None:
    assert [key for key in range(100) if allowed_before_auth(key)] == [17, 18, 36]
