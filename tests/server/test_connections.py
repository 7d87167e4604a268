"""Bad requests close only their own connection; responses keep request order;
SIGTERM answers what is in flight and exits 0."""

from __future__ import annotations

import datetime
import logging
import os
import resource
import signal
import socket
import struct
import time
from pathlib import Path

import pytest
from kio.index import load_request_schema
from kio.schema.errors import ErrorCode

from mqlog.server._run import FILES_BESIDE_CONNECTIONS, allow_open_files
from mqlog.server.kafka._codec import part
from tests.server._serve import (
    RunningServer,
    closed_by_peer,
    connect,
    decode_response,
    encode_request,
    read_frame,
    request_frame,
    start_server,
    stop_server,
)


def _api_versions(sock: socket.socket, correlation_id: int) -> None:
    """One ApiVersions round trip on ``sock``."""
    sock.sendall(encode_request(18, 0, correlation_id))
    assert decode_response(18, 0, read_frame(sock))[0] == correlation_id


@pytest.mark.parametrize("bad", [
    # Metadata v12 whose header claims 7 tagged fields it does not have
    struct.pack(">i", 11) + b"\x00\x03\x00\x0c\x00\x00\x00\x01\xff\xff\x07",
    struct.pack(">i", 3) + b"\x00\x12\x00",  # shorter than a header
    struct.pack(">i", 200 * 1024 * 1024),  # over max_request_bytes
    struct.pack(">i", -5),
    # Metadata v12 whose topics array claims 4,294,967,279 elements (a 5-byte
    # varint): kio's native reader would reserve room for them and abort
    struct.pack(">i", 16) + b"\x00\x03\x00\x0c\x00\x00\x00\x01\x00\x00\x00"
    + b"\xf0\xff\xff\xff\x0f",
], ids=["malformed", "short", "oversized", "negative", "absurd-array"])
def test_a_bad_frame_closes_only_its_connection(kafka_server: RunningServer,
                                                bad: bytes) -> None:
    with connect(kafka_server) as other, connect(kafka_server) as sock:
        _api_versions(other, 1)
        sock.sendall(bad)
        assert closed_by_peer(sock)
        _api_versions(other, 2)  # the other connection goes on
    with connect(kafka_server) as fresh:  # and the server accepts new ones
        _api_versions(fresh, 3)


def test_a_truncated_request_closes_its_connection(kafka_server: RunningServer) -> None:
    with connect(kafka_server) as other, connect(kafka_server) as sock:
        frame = encode_request(18, 0, 1)
        sock.sendall(frame[:-2])
        sock.shutdown(socket.SHUT_WR)  # the rest never comes
        assert closed_by_peer(sock)
        _api_versions(other, 2)


def test_the_reasons_are_logged_naming_the_peer(tmp_path: Path) -> None:
    server = start_server(tmp_path / "log")
    try:
        with connect(server) as sock:
            host, port = sock.getsockname()[:2]
            peer = f"{host}:{port}"
            sock.sendall(struct.pack(">i", 200 * 1024 * 1024))
            assert closed_by_peer(sock)
        with connect(server) as sock:
            sock.sendall(request_frame(71, 0, 1, b""))
            assert closed_by_peer(sock)
    finally:
        code, stderr = stop_server(server)
    assert code == 0
    lines = stderr.splitlines()
    assert any(peer in line and "max_request_bytes" in line for line in lines), stderr
    assert any("unknown API key 71" in line for line in lines), stderr
    assert "Traceback" not in stderr


def test_pipelined_requests_are_answered_in_order(kafka_server: RunningServer) -> None:
    metadata = load_request_schema(3, 12)
    topic = part(metadata, "MetadataRequestTopic")
    frames = []
    for correlation in range(20):
        if correlation % 2:
            frames.append(encode_request(18, 3, correlation, client_software_name="t",
                                         client_software_version="1"))
        else:
            frames.append(encode_request(
                3, 12, correlation, topics=(topic(name=f"t{correlation}", topic_id=None),),
                allow_auto_topic_creation=True, include_topic_authorized_operations=False))
    with connect(kafka_server) as sock:
        sock.sendall(b"".join(frames))  # all before reading any answer
        for correlation in range(20):
            key, version = (18, 3) if correlation % 2 else (3, 12)
            answered, body = decode_response(key, version, read_frame(sock))
            assert answered == correlation
            assert body.error_code == ErrorCode.none if key == 18 else \
                body.topics[0].error_code == ErrorCode.none


def test_sigterm_answers_the_request_in_flight(tmp_path: Path) -> None:
    """A CreateTopics of many partitions is running when SIGTERM comes: the
    client still gets its answer, the topic is whole, and the exit code is 0."""
    server = start_server(tmp_path / "log")
    schema = load_request_schema(19, 4)
    creatable = part(schema, "CreatableTopic")
    topics_dir = server.directory / "topics"
    signalled = False
    try:
        with connect(server) as sock:
            _api_versions(sock, 1)
            sock.sendall(encode_request(19, 4, 2, topics=(creatable(
                name="wide", num_partitions=400, replication_factor=1, assignments=(),
                configs=()),), timeout=datetime.timedelta(seconds=60), validate_only=False))
            deadline = time.monotonic() + 30
            while not any(name.startswith("~") for name in os.listdir(topics_dir)):
                assert time.monotonic() < deadline, "the creation never started"
                time.sleep(0.005)
            server.process.send_signal(signal.SIGTERM)
            signalled = True
            correlation, body = decode_response(19, 4, read_frame(sock))
            assert correlation == 2
            assert body.topics[0].error_code == ErrorCode.none
            assert closed_by_peer(sock)
    finally:
        code, stderr = stop_server(server, signalled)
    assert code == 0, stderr
    assert len(os.listdir(topics_dir / "wide")) >= 400


def _soft_and_hard_open_files() -> tuple[int, int]:
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def test_allow_open_files_raises_the_soft_limit_never_lowers_it_nor_passes_the_hard(
        caplog: pytest.LogCaptureFixture) -> None:
    soft, hard = _soft_and_hard_open_files()
    if hard != resource.RLIM_INFINITY and hard < 600:
        pytest.skip(f"a hard limit of {hard} open files leaves no room to test in")
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(256, len(os.listdir("/proc/self/fd")) + 64),
                                                    hard))
        low = _soft_and_hard_open_files()[0]
        assert allow_open_files(low + 200) == low + 200 == _soft_and_hard_open_files()[0]
        assert allow_open_files(low) == low + 200  # never lowered
        assert "open files are limited" not in caplog.text
        if hard != resource.RLIM_INFINITY:
            with caplog.at_level(logging.WARNING, logger="mqlog.server"):
                assert allow_open_files(hard + 1) == hard == _soft_and_hard_open_files()[0]
            assert f"open files are limited to {hard}" in caplog.text
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_server_started_with_a_low_open_files_limit_holds_1100_connections(
        tmp_path: Path) -> None:
    """1,000 idle connections and 100 busy ones (the benchmark's figure) are past
    the soft limit many systems start a process with (1,024); the server raises
    its own, so it neither refuses them (max_connections) nor fails to accept
    them (EMFILE)."""
    wanted = 1_100
    soft, hard = _soft_and_hard_open_files()
    needed = wanted + FILES_BESIDE_CONNECTIONS + 100
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"a hard limit of {hard} open files is below the {needed} this needs")
    server = start_server(tmp_path / "log", open_files=256)
    sockets: list[socket.socket] = []
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), hard))  # this side's
        for n in range(wanted):
            sockets.append(connect(server))
            _api_versions(sockets[-1], n)
        _api_versions(sockets[0], wanted)  # the first is still served
        limits = Path(f"/proc/{server.process.pid}/limits").read_text()
        (line,) = [line for line in limits.splitlines() if line.startswith("Max open files")]
        assert int(line.split()[3]) >= 10_000 + FILES_BESIDE_CONNECTIONS or (
            hard != resource.RLIM_INFINITY and int(line.split()[3]) == hard)
    finally:
        for sock in sockets:
            sock.close()
        code, stderr = stop_server(server)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert code == 0
    assert "refusing connection" not in stderr and "Too many open files" not in stderr
