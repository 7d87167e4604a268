"""The SCRAM-SHA-256 server exchange against kafka-python's SCRAM client and
hand-made messages: Kafka's nonce leniency, escaping, and what it refuses."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from kafka.net.sasl.scram import ScramClient

from mqlog.server.auth import Credentials, ScramError, ScramExchange

ALICE = Credentials.from_password("wonderland")


def exchange_for(credentials: Credentials = ALICE) -> ScramExchange:
    return ScramExchange(lambda _name: credentials)


def test_kafka_python_client_round_trip() -> None:
    client = ScramClient("alice", "wonderland", "SCRAM-SHA-256")
    exchange = exchange_for()
    client.process_server_first_message(exchange.first(client.first_message()))
    client.process_server_final_message(exchange.final(client.final_message()))
    assert exchange.user == "alice"


def test_wrong_password_fails_at_the_proof() -> None:
    client = ScramClient("alice", "looking-glass", "SCRAM-SHA-256")
    exchange = exchange_for()
    client.process_server_first_message(exchange.first(client.first_message()))
    with pytest.raises(ScramError, match="invalid user name or password"):
        exchange.final(client.final_message())


def proof_for(password: str, credentials: Credentials, auth_message: bytes) -> bytes:
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), credentials.salt,
                                 credentials.iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    signature = hmac.digest(hashlib.sha256(client_key).digest(), auth_message, "sha256")
    return bytes(a ^ b for a, b in zip(client_key, signature))


def old_librdkafka_final(first_bare: bytes, server_first: bytes, client_nonce: bytes,
                         password: str = "wonderland") -> bytes:
    """The client-final of librdkafka before its fix (2.0.2, as Debian's kcat
    links): the client nonce once more in front of the server's nonce."""
    server_nonce = server_first.split(b",")[0][2:]
    without_proof = b"c=biws,r=" + client_nonce + server_nonce
    proof = proof_for(password, ALICE, b",".join((first_bare, server_first, without_proof)))
    return without_proof + b",p=" + base64.b64encode(proof)


def test_kafka_s_nonce_leniency_lets_old_librdkafka_in() -> None:
    exchange = exchange_for()
    server_first = exchange.first(b"n,,n=alice,r=abc")
    final = old_librdkafka_final(b"n=alice,r=abc", server_first, b"abc")
    assert exchange.final(final).startswith(b"v=")


def test_the_nonce_must_still_end_with_the_server_s() -> None:
    exchange = exchange_for()
    server_first = exchange.first(b"n,,n=alice,r=abc")
    nonce = server_first.split(b",")[0][2:]
    other = nonce[:-1] + (b"X" if not nonce.endswith(b"X") else b"Y")
    final = old_librdkafka_final(b"n=alice,r=abc", server_first.replace(nonce, other), b"abc")
    with pytest.raises(ScramError, match="nonce"):
        exchange.final(final)


def test_escaped_user_names_are_unescaped() -> None:
    seen = []

    def lookup(name: str) -> Credentials:
        seen.append(name)
        return ALICE

    ScramExchange(lookup).first(b"n,,n=a=2Cb=3Dc,r=abc")
    assert seen == ["a,b=c"]


def test_authzid_equal_to_the_user_and_gs2_flag_y() -> None:
    exchange = exchange_for()
    exchange.first(b"y,a=alice,n=alice,r=abc")
    with pytest.raises(ScramError, match="channel binding does not match"):
        exchange.final(b"c=biws,r=abc,p=AAAA")  # biws is "n,,", not "y,a=alice,"


@pytest.mark.parametrize(("message", "complaint"), [
    (b"n=alice,r=abc", "gs2 header"),
    (b"p=tls-unique,,n=alice,r=abc", "channel binding is not supported"),
    (b"n,,r=abc,n=alice", "must carry n="),
    (b"n,,m=ext,n=alice,r=abc", "must carry n="),
    (b"n,,n=alice", "must carry n="),
    (b"n,,n=alice,r=", "printable ASCII"),
    (b"n,,n=alice,r=a b", "printable ASCII"),
    (b"n,,n=al=ice,r=abc", "bare '='"),
    (b"n,,n=,r=abc", "empty"),
    (b"n,a=bob,n=alice,r=abc", "authorization id"),
    (b"n,,n=\xff,r=abc", "not UTF-8"),
])
def test_malformed_client_first(message: bytes, complaint: str) -> None:
    with pytest.raises(ScramError, match=complaint):
        exchange_for().first(message)


@pytest.mark.parametrize(("final", "complaint"), [
    (b"c=biws,r=NONCE", "c=..., r=..., p=..."),
    (b"r=NONCE,c=biws,p=AAAA", "c=..., r=..., p=..."),
    (b"c=eSws,r=NONCE,p=AAAA", "channel binding does not match"),
    (b"c=biws,r=NONCE,p=!!", "not base64"),
    (b"c=biws,r=NONCE,p=AAAA", "invalid user name or password"),
])
def test_malformed_client_final(final: bytes, complaint: str) -> None:
    exchange = exchange_for()
    nonce = exchange.first(b"n,,n=alice,r=abc").split(b",")[0][2:]
    with pytest.raises(ScramError, match=complaint):
        exchange.final(final.replace(b"NONCE", nonce))


def test_steps_run_once_and_in_order() -> None:
    exchange = exchange_for()
    with pytest.raises(ScramError, match="out of order"):
        exchange.final(b"c=biws,r=abc,p=AAAA")
    exchange.first(b"n,,n=alice,r=abc")
    with pytest.raises(ScramError, match="second client-first"):
        exchange.first(b"n,,n=alice,r=abc")
    with pytest.raises(ScramError):
        exchange.final(b"c=biws,r=abc,p=AAAA")
    with pytest.raises(ScramError, match="out of order"):
        exchange.final(b"c=biws,r=abc,p=AAAA")
