"""The batch byte layout: round trips, header fields, checksum coverage and golden bytes.

The golden files under ``tests/data`` pin the on-disk format: if the layout
changes, these tests fail and the files (and MAGIC / docs/format.md) must be
changed on purpose. Regenerate them with ``python tests/logstore/test_format.py``.
"""

from __future__ import annotations

import shutil
import struct
import sys
import tempfile
from pathlib import Path

import msgpack
import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

import mqlog
from mqlog import Record
from mqlog.logstore import _batch
from mqlog.logstore import _format as fmt

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
GOLDEN_BATCH = DATA_DIR / "golden_batch_v1.bin"
GOLDEN_LOG = DATA_DIR / "golden_log_v1"
GOLDEN_TOPIC = "golden"
GOLDEN_NOW_MS = 1_700_000_000_000
GOLDEN_BASE_OFFSET = 42

ROW = struct.Struct("<qiII")  # timestamp, key_length, headers_length, payload_end


# -- helpers ---------------------------------------------------------------------------


def golden_records() -> list[Record]:
    """The records of the golden batch: keys, no key, an empty key, headers, odd timestamps."""
    return [
        Record(b"hello", key=b"k1", headers={"trace": b"abc"}, timestamp=GOLDEN_NOW_MS),
        Record(b"", timestamp=GOLDEN_NOW_MS + 5),
        Record(b"world", key=b"", headers={"a": b"1", "b": b""}, timestamp=GOLDEN_NOW_MS - 1),
    ]


def frame_bytes(records: list, base_offset: int = 0, now_ms: int = GOLDEN_NOW_MS,
                max_record_bytes: int = 1 << 20) -> bytes:
    """Encode ``records`` into exactly one batch and return its framed bytes."""
    batches = _batch.encode(records, now_ms, max_record_bytes)
    assert len(batches) == 1
    return b"".join(bytes(part) for part in batches[0].frame(base_offset))


def build_golden_batch() -> bytes:
    """The bytes of the golden batch as the current code writes them."""
    return frame_bytes(golden_records(), base_offset=GOLDEN_BASE_OFFSET)


def golden_log_appends() -> list[list]:
    """What the golden log directory holds, one inner list per append call."""
    appends: list[list] = []
    for number in range(16):
        value = f"value-{number:03d}-".encode() * (30 + 10 * (number % 5))
        if number % 3 == 0:
            appends.append([value, value[:7]])
        elif number % 3 == 1:
            appends.append([Record(value, key=f"key-{number}".encode(),
                                   headers={"n": str(number).encode()},
                                   timestamp=GOLDEN_NOW_MS + 1000 * number)])
        else:
            appends.append([Record(value, timestamp=GOLDEN_NOW_MS - number)])
    return appends


def build_golden_log(path: Path) -> None:
    """Write the golden log directory (several segments, sparse index entries) at ``path``."""
    with mqlog.open(path, clock=lambda: GOLDEN_NOW_MS, durability="none") as log:
        log.create_topic(GOLDEN_TOPIC, segment_bytes=4096, index_interval_bytes=256)
        for records in golden_log_appends():
            log.append(GOLDEN_TOPIC, 0, records)


def segment_files(path: Path) -> dict[str, bytes]:
    """Contents of the segment and index files of the golden topic's partition 0."""
    partition = path / "topics" / GOLDEN_TOPIC / "0"
    return {
        item.name: item.read_bytes()
        for item in sorted(partition.iterdir())
        if item.suffix in (".log", ".index", ".timeindex")
    }


def expected_layout(records: list[Record], base_offset: int) -> bytes:
    """The batch as the module docstring of ``_format`` specifies it, built by hand."""
    rows = b""
    payload = b""
    for record in records:
        headers = msgpack.packb(dict(record.headers), use_bin_type=True) if record.headers else b""
        key = b"" if record.key is None else record.key
        payload += key + headers + record.value
        rows += ROW.pack(record.timestamp, -1 if record.key is None else len(key),
                         len(headers), len(payload))
    length = 48 + len(rows) + len(payload)
    attributes = (1 if any(r.key is not None for r in records) else 0) | (
        2 if any(r.headers for r in records) else 0
    )
    timestamps = [r.timestamp for r in records]
    body = struct.pack("<IBBHqIIqq", length, 1, attributes, 0, base_offset, len(records), 0,
                       timestamps[0], max(timestamps)) + rows + payload
    return struct.pack("<Q", xxhash.xxh3_64_intdigest(body)) + body


def decode_all(data: bytes) -> list[Record]:
    """Every record of every batch in ``data`` up to the zero header that ends it."""
    out: list[Record] = []
    position = 0
    while True:
        try:
            header = fmt.decode_header(data, position, len(data))
        except fmt.BatchError as error:
            assert str(error) == "end"
            return out
        fmt.verify_batch(data, position, header)
        records, _size = _batch.decode(data, position, header)
        out.extend(records)
        position += header.batch_length


def with_offsets(records: list[Record], base_offset: int) -> list[Record]:
    """``records`` as a read returns them from ``base_offset`` on (timestamps as given)."""
    return [Record(r.value, r.key, r.headers, r.timestamp, base_offset + i)
            for i, r in enumerate(records)]


# -- layout ----------------------------------------------------------------------------


def test_constants_match_the_documented_layout() -> None:
    assert fmt.MAGIC == 1
    assert fmt.BATCH_HEADER_SIZE == 48
    assert fmt.RECORD_DTYPE.itemsize == 20
    assert fmt.OFFSET_INDEX_DTYPE.itemsize == 8
    assert fmt.TIME_INDEX_DTYPE.itemsize == 16
    assert (fmt.ATTR_HAS_KEYS, fmt.ATTR_HAS_HEADERS) == (1, 2)
    assert fmt.BATCH_BYTES_MAX == 64 * 1024 * 1024


def test_encoded_batch_equals_the_layout_built_by_hand() -> None:
    assert build_golden_batch() == expected_layout(golden_records(), GOLDEN_BASE_OFFSET)


def test_golden_batch_bytes_are_unchanged() -> None:
    assert GOLDEN_BATCH.read_bytes() == build_golden_batch()


def test_golden_batch_decodes_to_its_records() -> None:
    data = GOLDEN_BATCH.read_bytes()
    assert decode_all(data) == with_offsets(golden_records(), GOLDEN_BASE_OFFSET)


def test_header_fields() -> None:
    data = build_golden_batch()
    header = fmt.decode_header(data, 0, len(data))
    payload = len(b"k1" + msgpack.packb({"trace": b"abc"}) + b"hello") + len(
        msgpack.packb({"a": b"1", "b": b""}) + b"world"
    )
    assert header == fmt.BatchHeader(
        checksum=xxhash.xxh3_64_intdigest(data[8:]),
        batch_length=48 + 3 * 20 + payload,
        magic=1,
        attributes=fmt.ATTR_HAS_KEYS | fmt.ATTR_HAS_HEADERS,
        base_offset=GOLDEN_BASE_OFFSET,
        record_count=3,
        first_timestamp=GOLDEN_NOW_MS,
        max_timestamp=GOLDEN_NOW_MS + 5,
    )
    assert header.batch_length == len(data)
    assert header.next_offset == GOLDEN_BASE_OFFSET + 3
    assert data[14:16] == b"\0\0" and data[28:32] == b"\0\0\0\0"


def test_record_table_rows() -> None:
    """Rows are (timestamp, key_length, headers_length, payload_end)."""
    data = build_golden_batch()
    table = fmt.record_table(data, 0, 3)
    headers_1 = len(msgpack.packb({"trace": b"abc"}))
    headers_3 = len(msgpack.packb({"a": b"1", "b": b""}))
    end_1 = 2 + headers_1 + 5
    assert table.tolist() == [
        (GOLDEN_NOW_MS, 2, headers_1, end_1),
        (GOLDEN_NOW_MS + 5, -1, 0, end_1),
        (GOLDEN_NOW_MS - 1, 0, headers_3, end_1 + headers_3 + 5),
    ]
    assert fmt.RECORD_DTYPE.names == ("timestamp", "key_length", "headers_length", "payload_end")


@pytest.mark.parametrize(
    ("records", "attributes"),
    [
        ([b"a", b"b"], 0),
        ([Record(b"a"), Record(b"b", timestamp=5)], 0),
        ([Record(b"a", key=b"k"), b"b"], fmt.ATTR_HAS_KEYS),
        ([Record(b"a", key=b"")], fmt.ATTR_HAS_KEYS),
        ([b"a", Record(b"b", headers={"h": b"v"})], fmt.ATTR_HAS_HEADERS),
        ([Record(b"a", headers={})], 0),
        ([Record(b"a", key=b"k", headers={"h": b""})], fmt.ATTR_HAS_KEYS | fmt.ATTR_HAS_HEADERS),
    ],
)
def test_attributes_bits(records: list, attributes: int) -> None:
    data = frame_bytes(records)
    assert data[13] == attributes
    assert fmt.decode_header(data, 0, len(data)).attributes == attributes


def test_plain_values_take_the_clock_time() -> None:
    data = frame_bytes([b"x", bytearray(b"yy"), memoryview(b"zzz")], base_offset=7, now_ms=123)
    assert decode_all(data) == [
        Record(b"x", None, None, 123, 7),
        Record(b"yy", None, None, 123, 8),
        Record(b"zzz", None, None, 123, 9),
    ]


def test_plain_records_have_no_key_and_read_only_empty_headers() -> None:
    (record,) = decode_all(frame_bytes([b"v"]))
    assert record.key is None
    assert dict(record.headers) == {}
    with pytest.raises(TypeError):
        record.headers["x"] = b"y"  # type: ignore[index]


def test_str_values_keys_and_headers_are_utf8_encoded() -> None:
    (record,) = decode_all(frame_bytes([Record("wert-é", key="schlüssel", headers={"h": "ü"})]))
    assert (record.value, record.key, dict(record.headers)) == (
        "wert-é".encode(), "schlüssel".encode(), {"h": "ü".encode()}
    )


def test_encode_of_nothing_is_no_batch() -> None:
    assert _batch.encode([], GOLDEN_NOW_MS, 100) == []


# -- round trips ---------------------------------------------------------------------------

timestamps = st.integers(min_value=-(2**63), max_value=2**63 - 1)
values = st.binary(max_size=64)
record_strategy = st.one_of(
    values,
    st.builds(
        Record,
        values,
        key=st.none() | st.binary(max_size=16),
        headers=st.none() | st.dictionaries(st.text(max_size=8), st.binary(max_size=8),
                                            max_size=3),
        timestamp=st.none() | timestamps,
    ),
)


def expected_record(item, offset: int, now_ms: int) -> Record:
    """What reading an appended ``item`` (bytes or Record) at ``offset`` returns."""
    if isinstance(item, Record):
        timestamp = now_ms if item.timestamp is None else item.timestamp
        return Record(item.value, item.key, item.headers, timestamp, offset)
    return Record(item, None, None, now_ms, offset)


@settings(max_examples=60, deadline=None)
@given(
    records=st.lists(record_strategy, min_size=1, max_size=12),
    base_offset=st.integers(min_value=0, max_value=2**62),
    now_ms=timestamps,
)
def test_round_trip(records: list, base_offset: int, now_ms: int) -> None:
    data = frame_bytes(records, base_offset=base_offset, now_ms=now_ms)
    header = fmt.decode_header(data, 0, len(data))
    fmt.verify_batch(data, 0, header)
    decoded, size = _batch.decode(data, 0, header)
    expected = [expected_record(item, base_offset + i, now_ms) for i, item in enumerate(records)]
    assert decoded == expected
    assert size == len(data) - 48 - 20 * len(records)
    assert header.first_timestamp == expected[0].timestamp
    assert header.max_timestamp == max(r.timestamp for r in expected)


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=20), min_size=1, max_size=10),
    data=st.data(),
)
def test_partial_decode(sizes: list[int], data: st.DataObject) -> None:
    """decode(first, stop, max_bytes) returns the matching slice, at least one record."""
    records = [Record(bytes([i]) * size, key=b"k" if i % 2 else None)
               for i, size in enumerate(sizes)]
    frame = frame_bytes(records, base_offset=100)
    header = fmt.decode_header(frame, 0, len(frame))
    first = data.draw(st.integers(0, len(records) - 1), label="first")
    stop = data.draw(st.integers(first + 1, len(records)), label="stop")
    max_bytes = data.draw(st.none() | st.integers(0, 80), label="max_bytes")
    at_least_one = data.draw(st.booleans(), label="at_least_one")
    decoded, used = _batch.decode(frame, 0, header, first, stop, max_bytes, at_least_one)
    expected = []
    total = 0
    for index in range(first, stop):
        size = len(records[index].value) + (1 if records[index].key else 0)
        if max_bytes is not None and total + size > max_bytes and (expected or not at_least_one):
            break
        expected.append(expected_record(records[index], 100 + index, GOLDEN_NOW_MS))
        total += size
    assert decoded == expected
    assert used == total


def test_split_above_batch_bytes_max(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inputs over BATCH_BYTES_MAX become several batches, each within it, in order."""
    monkeypatch.setattr(fmt, "BATCH_BYTES_MAX", 300)
    records = [bytes([65 + i]) * (10 + 7 * i) for i in range(12)]
    batches = _batch.encode(records, GOLDEN_NOW_MS, 1000)
    assert [batch.count for batch in batches] == [5, 3, 2, 2]  # 48 + 20 per record + value
    assert all(batch.length <= 300 for batch in batches)
    data = b""
    offset = 0
    for batch in batches:
        data += b"".join(bytes(part) for part in batch.frame(offset))
        offset += batch.count
    assert decode_all(data + bytes(48)) == [
        Record(value, None, None, GOLDEN_NOW_MS, i) for i, value in enumerate(records)
    ]


# -- checksum and framing checks -----------------------------------------------------------

REGIONS = {
    "checksum": (0, 8),
    "batch_length": (8, 12),
    "magic": (12, 13),
    "attributes": (13, 14),
    "reserved_1": (14, 16),
    "base_offset": (16, 24),
    "record_count": (24, 28),
    "reserved_2": (28, 32),
    "first_timestamp": (32, 40),
    "max_timestamp": (40, 48),
    "record_table": (48, 48 + 3 * 20),
    "payload": (48 + 3 * 20, None),
}


@pytest.mark.parametrize("region", sorted(REGIONS))
def test_checksum_covers_every_byte_of_region(region: str) -> None:
    """Flipping any byte is caught by verify_batch even against the undamaged header."""
    data = build_golden_batch()
    header = fmt.decode_header(data, 0, len(data))
    start, stop = REGIONS[region]
    for position in range(start, len(data) if stop is None else stop):
        damaged = bytearray(data)
        damaged[position] ^= 0x5A
        if region != "checksum":  # the stored checksum itself is not hashed
            with pytest.raises(fmt.BatchError, match="^checksum mismatch$"):
                fmt.verify_batch(damaged, 0, header)
        with pytest.raises(fmt.BatchError):
            fresh = fmt.decode_header(damaged, 0, len(damaged))
            fmt.verify_batch(damaged, 0, fresh)


def resealed(data: bytearray) -> bytearray:
    """``data`` with a checksum that matches its (damaged) contents."""
    data[0:8] = struct.pack("<Q", xxhash.xxh3_64_intdigest(bytes(data[8:])))
    return data


def test_record_table_must_add_up_to_the_batch_length() -> None:
    data = bytearray(build_golden_batch())
    last_end = 48 + 2 * 20 + 16
    struct.pack_into("<I", data, last_end, struct.unpack_from("<I", data, last_end)[0] - 1)
    header = fmt.decode_header(resealed(data), 0, len(data))
    with pytest.raises(fmt.BatchError) as error:
        fmt.verify_batch(data, 0, header)
    assert str(error.value) == (
        f"record table sums to {len(data) - 1} bytes, header says {len(data)}"
    )


@pytest.mark.parametrize(("row", "payload_end"), [(0, 1), (1, 0)])
def test_record_table_rows_must_hold_their_key_and_headers(row: int, payload_end: int) -> None:
    """A payload_end that leaves a record shorter than its key + headers, or goes
    backwards, is rejected even with a matching checksum."""
    data = bytearray(build_golden_batch())
    struct.pack_into("<I", data, 48 + row * 20 + 16, payload_end)
    header = fmt.decode_header(resealed(data), 0, len(data))
    with pytest.raises(fmt.BatchError, match="^record table: a record is shorter than its key "
                                             "and headers$"):
        fmt.verify_batch(data, 0, header)


def test_zero_header_marks_the_end() -> None:
    data = build_golden_batch()
    tail = data + bytes(4096)
    header = fmt.decode_header(tail, 0, len(tail))
    with pytest.raises(fmt.BatchError, match="^end$"):
        fmt.decode_header(tail, header.batch_length, len(tail))
    with pytest.raises(fmt.BatchError, match="^end$"):
        fmt.decode_header(bytes(48), 0, 48)
    assert decode_all(tail) == with_offsets(golden_records(), GOLDEN_BASE_OFFSET)


@pytest.mark.parametrize(
    ("damage", "limit", "message"),
    [
        (None, 0, "end"),
        (None, 47, "truncated header"),
        (None, -1, "truncated batch"),
        ((12, "<B", 2), None, "bad magic 2"),
        ((24, "<I", 0), None, "bad length {length} for 0 records"),
        ((8, "<I", 48 + 3 * 20 - 1), None, "bad length 107 for 3 records"),
    ],
)
def test_decode_header_rejects(damage, limit, message: str) -> None:
    data = bytearray(build_golden_batch())
    length = len(data)
    if damage is not None:
        struct.pack_into(damage[1], data, damage[0], damage[2])
    if limit is None:
        limit = len(data)
    elif limit < 0:
        limit += len(data)
    with pytest.raises(fmt.BatchError) as error:
        fmt.decode_header(data, 0, limit)
    assert str(error.value) == message.format(length=length)


def test_decode_header_at_a_position_inside_a_buffer() -> None:
    data = build_golden_batch()
    buffer = bytes(100) + data + bytes(10)
    header = fmt.decode_header(buffer, 100, len(buffer))
    fmt.verify_batch(buffer, 100, header)
    assert _batch.decode(buffer, 100, header)[0] == with_offsets(golden_records(),
                                                                  GOLDEN_BASE_OFFSET)


# -- golden log directory --------------------------------------------------------------------


def expected_golden_log_records() -> list[Record]:
    """Every record of the golden log, as reads return them."""
    records = []
    for items in golden_log_appends():
        for item in items:
            records.append(expected_record(item, len(records), GOLDEN_NOW_MS))
    return records


def test_golden_log_files_are_unchanged(tmp_path: Path) -> None:
    build_golden_log(tmp_path / "log")
    built = segment_files(tmp_path / "log")
    golden = segment_files(GOLDEN_LOG)
    assert sorted(built) == sorted(golden)
    assert len([name for name in golden if name.endswith(".log")]) >= 3
    assert any(len(golden[name]) for name in golden if name.endswith(".index"))
    for name in golden:
        assert built[name] == golden[name], name


def test_golden_log_opens_and_reads(tmp_path: Path) -> None:
    """A copy of the golden directory (no state file: recovered from the segments) reads back."""
    shutil.copytree(GOLDEN_LOG, tmp_path / "log")
    expected = expected_golden_log_records()
    with mqlog.open(tmp_path / "log", clock=lambda: GOLDEN_NOW_MS) as log:
        assert log.topics() == [GOLDEN_TOPIC]
        assert log.start_offset(GOLDEN_TOPIC, 0) == 0
        assert log.end_offset(GOLDEN_TOPIC, 0) == len(expected)
        assert list(log.iter(GOLDEN_TOPIC, 0)) == expected
        for record in expected:
            assert log.read(GOLDEN_TOPIC, 0, record.offset, max_records=1) == [record]
        for target in range(GOLDEN_NOW_MS - 20, GOLDEN_NOW_MS + 16_000, 500):
            first = next((r.offset for r in expected if r.timestamp >= target), len(expected))
            assert log.offset_for_time(GOLDEN_TOPIC, 0, target) == first
        description = log.describe_topic(GOLDEN_TOPIC).partitions[0]
        log_files = [name for name in segment_files(GOLDEN_LOG) if name.endswith(".log")]
        assert description.segment_count == len(log_files)
        assert description.size_bytes == sum(
            len(data) for name, data in segment_files(GOLDEN_LOG).items() if name.endswith(".log")
        )


def regenerate() -> None:
    """Rewrite the golden files from the current code (only when the format changes)."""
    DATA_DIR.mkdir(exist_ok=True)
    GOLDEN_BATCH.write_bytes(build_golden_batch())
    shutil.rmtree(GOLDEN_LOG, ignore_errors=True)
    with tempfile.TemporaryDirectory() as scratch:
        built = Path(scratch) / "log"
        build_golden_log(built)
        partition = GOLDEN_LOG / "topics" / GOLDEN_TOPIC / "0"
        partition.mkdir(parents=True)
        shutil.copy(built / "mqlog.json", GOLDEN_LOG / "mqlog.json")
        shutil.copy(built / "topics" / GOLDEN_TOPIC / "topic.json", partition.parent)
        for name, data in segment_files(built).items():  # no state: recovered on open
            (partition / name).write_bytes(data)


if __name__ == "__main__":
    regenerate()
    sys.stdout.write(f"wrote {GOLDEN_BATCH} and {GOLDEN_LOG}\n")
