"""ApiVersions over a raw socket: the advertised table, and the KIP-511 fallback."""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from tests.server._serve import (
    RunningServer,
    closed_by_peer,
    connect,
    decode_response,
    encode_request,
    read_frame,
    request_frame,
)


def _ranges(body) -> dict[int, tuple[int, int]]:
    return {entry.api_key: (entry.min_version, entry.max_version) for entry in body.api_keys}


def test_api_versions_v3_lists_the_registered_apis(kafka_server: RunningServer) -> None:
    with connect(kafka_server) as sock:
        sock.sendall(encode_request(18, 3, 7, client_software_name="mqlog-test",
                                    client_software_version="1.0"))
        correlation, body = decode_response(18, 3, read_frame(sock))
    assert correlation == 7
    assert body.error_code == ErrorCode.none
    ranges = _ranges(body)
    assert ranges[18] == (0, 4)
    assert ranges[3] == (0, 12)
    assert 71 not in ranges  # GetTelemetrySubscriptions is never advertised
    assert 17 not in ranges and 36 not in ranges  # no SASL on a server without --users


def test_every_api_versions_version_is_answered(kafka_server: RunningServer) -> None:
    with connect(kafka_server) as sock:
        for version in range(5):
            fields = {} if version < 3 else {"client_software_name": "t",
                                             "client_software_version": "1"}
            sock.sendall(encode_request(18, version, 100 + version, **fields))
        for version in range(5):
            correlation, body = decode_response(18, version, read_frame(sock))
            assert correlation == 100 + version
            assert body.error_code == ErrorCode.none


def test_a_newer_api_versions_is_answered_in_v0_with_the_ranges(
        kafka_server: RunningServer) -> None:
    """KIP-511: a version the server does not know gets a v0 answer with
    UNSUPPORTED_VERSION and the supported ranges; the connection stays open."""
    with connect(kafka_server) as sock:
        sock.sendall(request_frame(18, 99, 42, b"\x01\x01\x00", flexible=True))
        correlation, body = decode_response(18, 0, read_frame(sock))
        assert correlation == 42
        assert body.error_code == ErrorCode.unsupported_version
        assert _ranges(body)[18] == (0, 4)
        sock.sendall(encode_request(18, 0, 43))
        correlation, body = decode_response(18, 0, read_frame(sock))
    assert (correlation, body.error_code) == (43, ErrorCode.none)


def test_an_unknown_api_key_closes_the_connection(kafka_server: RunningServer) -> None:
    with connect(kafka_server) as sock:
        sock.sendall(request_frame(71, 0, 1, b""))  # registered nowhere
        assert closed_by_peer(sock)
    with connect(kafka_server) as sock:  # the server is unaffected
        sock.sendall(encode_request(18, 0, 2))
        assert decode_response(18, 0, read_frame(sock))[0] == 2
