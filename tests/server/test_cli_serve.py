"""``mqlog serve`` as a command: the listening line, signals, bad addresses."""

from __future__ import annotations

import re
import signal
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mqlog.cli import app
from tests.server._serve import connect, start_server, stop_server


def test_port_0_prints_the_real_port_and_serves_it(tmp_path: Path) -> None:
    server = start_server(tmp_path / "log")
    try:
        assert server.port > 0
        with connect(server):
            pass
    finally:
        code, stderr = stop_server(server)
    assert code == 0, stderr
    assert (tmp_path / "log").is_dir()


def test_ctrl_c_shuts_down_with_exit_0(tmp_path: Path) -> None:
    server = start_server(tmp_path / "log")
    server.process.send_signal(signal.SIGINT)
    code, stderr = stop_server(server, signalled=True)
    assert code == 0, stderr
    assert "Traceback" not in stderr


def test_stdout_is_exactly_the_listening_line(tmp_path: Path) -> None:
    server = start_server(tmp_path / "log")
    server.process.send_signal(signal.SIGTERM)
    rest, _ = server.process.communicate(timeout=30)
    code, stderr = stop_server(server, signalled=True)
    assert code == 0, stderr
    assert rest == ""  # nothing after the line start_server read


@pytest.mark.parametrize(("address", "message"), [
    ("0.0.0.0:9092", "not a loopback address"),
    ("192.0.2.1:9092", "--insecure"),
    ("localhost", "not HOST:PORT"),
    ("127.0.0.1:70000", "not HOST:PORT"),
])
def test_bad_or_non_loopback_addresses_are_refused(tmp_path: Path, address: str,
                                                   message: str) -> None:
    result = CliRunner().invoke(app, ["--dir", str(tmp_path / "log"), "serve",
                                      "--kafka", address])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "log").exists()  # refused before anything was written


def test_an_address_in_use_is_an_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["--dir", str(tmp_path / "log"), "serve",
                                          "--kafka", f"127.0.0.1:{port}"])
    assert result.exit_code == 4
    assert re.search(r"mqlog: error: .*address already in use", result.output, re.I)


def test_advertised_address_is_what_metadata_reports(tmp_path: Path) -> None:
    from confluent_kafka.admin import AdminClient

    server = start_server(tmp_path / "log", "--advertised", "localhost:0")
    try:
        metadata = AdminClient({"bootstrap.servers": server.address}).list_topics(timeout=10)
        (broker,) = metadata.brokers.values()
        assert (broker.host, broker.port) == ("localhost", server.port)
    finally:
        code, stderr = stop_server(server)
    assert code == 0, stderr


def test_other_commands_do_not_import_the_protocol_codec() -> None:
    """Importing the CLI leaves the server (and kio, slow to import) out."""
    import subprocess
    import sys

    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, mqlog.cli; print('kio' in sys.modules, "
                               "'mqlog.server.kafka' in sys.modules)"],
        capture_output=True, text=True, check=True)
    assert loaded.stdout.split() == ["False", "False"]
