"""``kafka://`` URLs: brokers and librdkafka options, security settings passed
through (against ``mqlog serve --users --tls-cert``), and the missing client."""

from __future__ import annotations

import shutil
import sys
import urllib.parse
from collections.abc import Iterator

import pytest

import mqlog
from mqlog.cluster._url import parse_url
from mqlog.server.auth import Credentials, set_user
from tests.server._pki import make_key_and_cert
from tests.server._serve import RunningServer, serving

from .conftest import unique

USER, PASSWORD = "alice", "wonderland"


def test_brokers_and_options() -> None:
    address = parse_url("kafka://a:9092,b:9093?security.protocol=SASL_SSL"
                        "&sasl.mechanism=PLAIN&producer.linger.ms=5&consumer.fetch.min.bytes=1")
    assert address.brokers == ("a:9092", "b:9093")
    common = {"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN"}
    assert {k: v for k, v in address.config().items() if k != "logger"} == {
        "bootstrap.servers": "a:9092,b:9093", **common}
    assert address.config("producer")["linger.ms"] == "5"
    assert "linger.ms" not in address.config("consumer")
    assert address.config("consumer")["fetch.min.bytes"] == "1"


@pytest.mark.parametrize("url, message", [
    ("kafka://", "HOST:PORT"),
    ("kafka://host", "HOST:PORT"),
    ("kafka://host:0", "HOST:PORT"),
    ("kafka://host:99999", "HOST:PORT"),
    ("kafka://host:9092/topics", "path"),
    ("kafka://host:9092?bootstrap.servers=x:1", "set by mqlog"),
    ("kafka://host:9092?consumer.group.id=g", "set by mqlog"),
    ("kafka://host:9092?a=1&a=2", "twice"),
    ("kafka://host:9092?no-value", "bad options"),
])
def test_bad_urls_raise_config_error(url: str, message: str) -> None:
    with pytest.raises(mqlog.ConfigError, match=message):
        mqlog.open(url)


def test_an_unknown_librdkafka_option_is_a_config_error() -> None:
    with pytest.raises(mqlog.ConfigError, match="no.such.setting"):
        mqlog.open("kafka://127.0.0.1:9?no.such.setting=1")


def test_without_confluent_kafka_the_error_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "confluent_kafka", None)
    with pytest.raises(mqlog.ConfigError, match=r"pip install 'mqlog\[kafka\]'"):
        mqlog.open("kafka://127.0.0.1:9092")


@pytest.fixture(scope="module")
def secure_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    directory = tmp_path_factory.mktemp("secure")
    cert, key = make_key_and_cert(directory, "localhost")
    users = directory / "users.json"
    set_user(users, USER, Credentials.from_password(PASSWORD))
    with serving(directory / "log", "--users", str(users), "--tls-cert", str(cert),
                 "--tls-key", str(key)) as server:
        yield server


def test_security_options_pass_through(secure_server: RunningServer) -> None:
    """SASL over TLS, as the URL's options say; the password may stay out of the URL.
    (Tansu is started without authentication: this runs against mqlog serve.)"""
    ca = secure_server.directory.parent / "localhost.pem"
    query = urllib.parse.urlencode({
        "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": USER, "ssl.ca.location": str(ca),
        "ssl.endpoint.identification.algorithm": "none"})
    url = f"kafka://localhost:{secure_server.port}?{query}"
    name = unique("secure")
    with mqlog.open(url, kafka_config={"sasl.password": PASSWORD}) as log:
        log.create_topic(name, 1)
        with log.producer() as producer:
            assert producer.send(name, b"secret").result(30).offset == 0
        assert [r.value for r in log.read(name, 0, 0)] == [b"secret"]
    with mqlog.open(url, kafka_config={"sasl.password": "wrong"}) as log, pytest.raises(
            mqlog.MqlogError):
        log.topics()


@pytest.mark.parametrize("options, expected", [
    ("", 10), ("?consumer.fetch.queue.backoff.ms=500", "500")])
def test_consumers_fetch_again_10_ms_after_their_queue_filled_unless_told(
        monkeypatch: pytest.MonkeyPatch, options: str, expected: object) -> None:
    """librdkafka's 1 s pause after its local queue filled idled a consumer catching
    up on a backlog for most of each second (docs/cluster.md): every consumer the
    log makes, the reader behind ``read`` and ``iter`` included, asks for 10 ms,
    unless the URL sets it."""
    import confluent_kafka

    made: list[dict[str, object]] = []
    real = confluent_kafka.Consumer

    def recording(settings: dict[str, object]) -> object:
        made.append(dict(settings))
        return real(settings)

    monkeypatch.setattr(confluent_kafka, "Consumer", recording)
    with mqlog.open(f"kafka://127.0.0.1:9{options}") as log, \
            log.consumer("some-group", ()), log.consumer(None, ()):
        pass
    assert len(made) >= 3  # the reader and the two consumers
    assert [settings["fetch.queue.backoff.ms"] for settings in made] == [expected] * len(made)
