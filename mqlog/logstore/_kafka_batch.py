"""Kafka RecordBatch v2, stored as a client sent it.

A batch a Kafka client produces is kept byte for byte inside an mqlog batch
with attribute ``ATTR_KAFKA``: the 48-byte mqlog header (base offset, record
count, first and max timestamp, the xxh3 checksum over everything) and, as
its payload, the Kafka batch (its 61-byte header and its records, compressed
or not). Appending one costs a header parse, a CRC-32C check and rewriting the
two header fields the broker owns (``baseOffset``, ``partitionLeaderEpoch``,
both outside the CRC), never a pass over its records; a Kafka fetch returns
the stored bytes as they are. The other door pays instead: an embedded read
of such a batch converts it into a native batch (:func:`as_native`, cached),
and a Kafka fetch of a native batch encodes one (:func:`encode_records`).

Kafka's layout (big-endian; https://kafka.apache.org/documentation/#recordbatch)::

    0  i64 baseOffset   8 i32 batchLength (bytes after this field)
    12 i32 partitionLeaderEpoch   16 i8 magic (2)   17 u32 crc (CRC-32C of [21, end))
    21 i16 attributes (bits 0-2 compression, 3 timestamp type, 4 transactional,
                       5 control)
    23 i32 lastOffsetDelta   27 i64 baseTimestamp   35 i64 maxTimestamp
    43 i64 producerId   51 i16 producerEpoch   55 i32 baseSequence   59 i32 recordsCount
    61 records: length, attributes, timestampDelta, offsetDelta, key, value,
       headers -- lengths and deltas as zigzag varints, -1 for a null key or value

Invariants of a stored Kafka batch (checked by :func:`parse_produced` before
anything is written): magic 2, a CRC that matches, ``recordsCount >= 1`` and
``lastOffsetDelta == recordsCount - 1`` (its records take dense offsets, as
the mqlog header's ``record_count`` says), no transactional or control batch,
a known compression codec, and ``baseOffset`` equal to the mqlog header's
base offset once written.

Kafka headers are a list of (str, bytes or null) and may repeat a name;
mqlog's are a map of str to bytes. Converted for an embedded reader, a null
header value reads as ``b""`` and the last of repeated names wins.
"""

from __future__ import annotations

import struct
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import cramjam
import crc32c

from mqlog.errors import InvalidRecordBatchError, RecordTooLargeError
from mqlog.logstore import _batch
from mqlog.logstore import _format as fmt
from mqlog.logstore._producers import ProducerBatch
from mqlog.logstore._record import NO_HEADERS, Record

HEADER = struct.Struct(">qiibIhiqqqhii")
HEADER_SIZE = HEADER.size  # 61
assert HEADER_SIZE == 61
#: Bytes before ``batchLength`` counts: baseOffset and batchLength themselves.
LOG_OVERHEAD = 12
_CRC_START = 21
_OFFSET_AND_LENGTH = struct.Struct(">qi")
_EPOCH = struct.Struct(">i")

COMPRESSION_MASK = 0x07
TIMESTAMP_LOG_APPEND = 0x08
TRANSACTIONAL = 0x10
CONTROL = 0x20
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
#: The partition leader epoch this single-broker log writes into every batch.
LEADER_EPOCH = 0
_XERIAL_MAGIC = b"\x82SNAPPY\x00"


class ProducedBatch:
    """One Kafka batch to append; the interface ``Partition.append`` writes
    (``count``, ``length``, ``max_timestamp``, :meth:`frame`)."""

    __slots__ = ("data", "count", "attributes", "first_timestamp", "max_timestamp", "length",
                 "producer")

    def __init__(self, data: memoryview, count: int, first_timestamp: int, max_timestamp: int,
                 producer: ProducerBatch | None, continues: bool) -> None:
        self.data = data
        self.count = count
        self.attributes = fmt.ATTR_KAFKA | (fmt.ATTR_CONTINUES if continues else 0)
        self.first_timestamp = first_timestamp
        self.max_timestamp = max_timestamp
        self.length = fmt.BATCH_HEADER_SIZE + len(data)
        self.producer = producer

    def frame(self, base_offset: int) -> tuple[bytearray, bytes, memoryview]:
        """The mqlog header, the Kafka header's first 16 bytes with ``baseOffset``
        and ``partitionLeaderEpoch`` set, and the rest of the Kafka batch."""
        prefix = bytearray(self.data[:16])
        _OFFSET_AND_LENGTH.pack_into(prefix, 0, base_offset, len(self.data) - LOG_OVERHEAD)
        _EPOCH.pack_into(prefix, 12, LEADER_EPOCH)
        rest = self.data[16:]
        header = fmt.pack_header(self.length, self.attributes, base_offset, self.count,
                                 self.first_timestamp, self.max_timestamp)
        fmt.seal(header, (prefix, rest))
        return header, bytes(prefix), rest


def parse_produced(data: bytes | memoryview, max_batch_bytes: int,
                   now_ms: int) -> list[ProducedBatch]:
    """Validate the Kafka batches of one produce request for one partition.

    Raises InvalidRecordBatchError (``corrupt`` set when a CRC or a length is
    wrong) or RecordTooLargeError (a batch over ``max_batch_bytes``) before
    anything is written. A producer id makes the append idempotent; only a
    single batch may carry one. Batches without timestamps (-1) take ``now_ms``
    as their time in the mqlog header (their records keep Kafka's -1)."""
    view = memoryview(data).cast("B")
    batches: list[ProducedBatch] = []
    position = 0
    while position < len(view):
        if len(view) - position < HEADER_SIZE:
            raise InvalidRecordBatchError(
                f"{len(view) - position} bytes at position {position} are too short for a "
                f"record batch", corrupt=True)
        (_base, length, _epoch, magic, crc, attributes, last_delta, base_ts, max_ts,
         producer_id, producer_epoch, base_sequence, count) = HEADER.unpack_from(view, position)
        end = position + LOG_OVERHEAD + length
        if magic != 2:
            raise InvalidRecordBatchError(
                f"record batch magic {magic}: only magic 2 (Kafka 0.11 and later) is supported")
        if length < HEADER_SIZE - LOG_OVERHEAD or end > len(view):
            raise InvalidRecordBatchError(
                f"record batch length {length} does not fit the {len(view) - position} bytes "
                f"sent", corrupt=True)
        if crc32c.crc32c(view[position + _CRC_START:end]) != crc:
            raise InvalidRecordBatchError("record batch CRC mismatch", corrupt=True)
        if count < 1 or last_delta != count - 1:
            raise InvalidRecordBatchError(
                f"record batch of {count} records with last offset delta {last_delta}: "
                f"records must take consecutive offsets")
        if attributes & (TRANSACTIONAL | CONTROL):
            raise InvalidRecordBatchError("transactional and control batches are not supported")
        if attributes & COMPRESSION_MASK >= len(CODECS):
            raise InvalidRecordBatchError(
                f"unknown compression codec {attributes & COMPRESSION_MASK}")
        if end - position > max_batch_bytes:
            raise RecordTooLargeError(
                f"record batch of {end - position} bytes is over the topic's "
                f"max_record_bytes={max_batch_bytes}")
        producer = None
        if producer_id >= 0:
            if len(batches) or end < len(view):
                raise InvalidRecordBatchError(
                    "an idempotent produce carries one record batch per partition")
            try:
                producer = ProducerBatch(producer_id, producer_epoch, base_sequence)
            except ValueError as error:
                raise InvalidRecordBatchError(f"record batch producer fields: {error}") from None
        if base_ts < 0:
            base_ts = max_ts = now_ms
        batches.append(ProducedBatch(view[position:end], count, base_ts, max(base_ts, max_ts),
                                     producer, continues=True))
        position = end
    if not batches:
        raise InvalidRecordBatchError("no record batch in the produce request", corrupt=True)
    batches[-1].attributes &= ~fmt.ATTR_CONTINUES
    return batches


# -- reading: Kafka batch -> native records ------------------------------------------


def kafka_bytes(buffer: fmt.ReadBuffer, position: int, header: fmt.BatchHeader) -> memoryview:
    """The Kafka batch stored in the mqlog batch at ``position``."""
    return memoryview(buffer)[position + fmt.BATCH_HEADER_SIZE: position + header.batch_length]


_cache_lock = threading.Lock()
_cache: OrderedDict[tuple[int, int, int], tuple[bytes, fmt.BatchHeader]] = OrderedDict()
#: Converted batches kept, so that small reads along one big batch convert it once.
CACHE_ENTRIES = 16


def as_native(buffer: fmt.ReadBuffer, position: int,
              header: fmt.BatchHeader) -> tuple[fmt.ReadBuffer, int, fmt.BatchHeader]:
    """(buffer, position, header) of a native batch with the records of the
    verified batch at ``position``: the batch itself unless it is a Kafka
    batch, else its conversion (cached by checksum, base offset and length)."""
    if not header.attributes & fmt.ATTR_KAFKA:
        return buffer, position, header
    key = (header.checksum, header.base_offset, header.batch_length)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit[0], 0, hit[1]
    records = decode_records(kafka_bytes(buffer, position, header))
    encoded = _batch.encode(records, 0, 2**31 - 1)
    if len(encoded) != 1:
        raise fmt.BatchError("a Kafka batch converts to more than one native batch")
    native = b"".join(encoded[0].frame(header.base_offset))
    converted = fmt.decode_header(native, 0, len(native))
    with _cache_lock:
        _cache[key] = (native, converted)
        while len(_cache) > CACHE_ENTRIES:
            _cache.popitem(last=False)
    return native, 0, converted


def decode_records(stored: memoryview | bytes) -> list[Record]:
    """The records of a Kafka batch (decompressed), without offsets; raises
    BatchError if they do not parse as its header says."""
    (_base, _length, _epoch, _magic, _crc, attributes, _last, base_ts, _max, _pid, _pe, _seq,
     count) = HEADER.unpack_from(stored, 0)
    body = bytes(stored[HEADER_SIZE:])
    codec = attributes & COMPRESSION_MASK
    if codec:
        try:
            body = decompress(codec, body)
        except Exception as error:  # a codec library's own error types
            raise fmt.BatchError(f"Kafka batch does not decompress ({CODECS[codec]}): "
                                 f"{error}") from None
    try:
        records = _parse_records(body, count, base_ts)
    except (IndexError, ValueError, UnicodeDecodeError) as error:
        raise fmt.BatchError(f"Kafka batch records do not parse: {error}") from None
    return records


def decompress(codec: int, data: bytes) -> bytes:
    """The records of a compressed Kafka batch: gzip, snappy (raw, or in the
    xerial framing Kafka's Java and kafka-python producers write), lz4
    (frame format) or zstd."""
    if codec == 1:
        return bytes(cramjam.gzip.decompress(data))
    if codec == 2:
        if data.startswith(_XERIAL_MAGIC):
            return _unframe_xerial(data)
        return bytes(cramjam.snappy.decompress_raw(data))
    if codec == 3:
        return bytes(cramjam.lz4.decompress(data))
    if codec == 4:
        return bytes(cramjam.zstd.decompress(data))
    raise ValueError(f"unknown compression codec {codec}")


def _unframe_xerial(data: bytes) -> bytes:
    """Snappy blocks after xerial's 16-byte header, each prefixed by its size."""
    parts = []
    position = 16
    while position < len(data):
        (size,) = struct.unpack_from(">i", data, position)
        position += 4
        parts.append(bytes(cramjam.snappy.decompress_raw(data[position:position + size])))
        position += size
    return b"".join(parts)


def _varint(data: bytes, position: int) -> tuple[int, int]:
    """A zigzag varint at ``position``: (value, position after it)."""
    byte = data[position]
    if byte < 0x80:
        return (byte >> 1) ^ -(byte & 1), position + 1
    result = byte & 0x7F
    shift = 7
    while True:
        position += 1
        byte = data[position]
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (result >> 1) ^ -(result & 1), position + 1
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def _parse_records(body: bytes, count: int, base_ts: int) -> list[Record]:
    records = []
    position = 0
    for index in range(count):
        length, position = _varint(body, position)
        end = position + length
        position += 1  # record attributes: unused
        delta, position = _varint(body, position)
        offset_delta, position = _varint(body, position)
        if offset_delta != index:
            raise ValueError(f"record {index} has offset delta {offset_delta}")
        size, position = _varint(body, position)
        key = None
        if size >= 0:
            key = body[position:position + size]
            position += size
        size, position = _varint(body, position)
        value = b"" if size < 0 else body[position:position + size]
        position += max(size, 0)
        header_count, position = _varint(body, position)
        headers: Mapping[str, bytes] = NO_HEADERS
        if header_count:
            pairs = {}
            for _ in range(header_count):
                size, position = _varint(body, position)
                name = body[position:position + size].decode()
                position += size
                size, position = _varint(body, position)
                pairs[name] = b"" if size < 0 else body[position:position + size]
                position += max(size, 0)
            headers = pairs
        if position != end or end > len(body):
            raise ValueError(f"record {index} is {length} bytes, its fields say otherwise")
        records.append(Record(value, key, headers, base_ts + delta))
    if position != len(body):
        raise ValueError(f"{len(body) - position} bytes after the last record")
    return records


# -- writing: native records -> a Kafka batch ------------------------------------------


def _zigzag(value: int) -> bytes:
    value = (value << 1) ^ (value >> 63)
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL = [_zigzag(value) for value in range(-1, 16384)]


def _varint_bytes(value: int) -> bytes:
    return _SMALL[value + 1] if -1 <= value < 16383 else _zigzag(value)


def encode_records(records: Sequence[Record], base_offset: int) -> bytes:
    """A Kafka batch (uncompressed, no producer) of ``records``, which carry
    consecutive offsets from ``base_offset`` and timestamps."""
    timestamps = [record.timestamp or 0 for record in records]
    base_ts = timestamps[0]
    parts: list[bytes] = []
    for delta, (record, timestamp) in enumerate(zip(records, timestamps)):
        key = record.key
        value = record.value
        body: list[bytes] = [b"\0", _varint_bytes(timestamp - base_ts), _varint_bytes(delta)]
        if key is None:
            body.append(_SMALL[0])
        else:
            body += (_varint_bytes(len(key)), key)
        body += (_varint_bytes(len(value)), value)
        headers = record.headers or NO_HEADERS
        body.append(_varint_bytes(len(headers)))
        for name, header_value in headers.items():
            encoded = name.encode()
            body += (_varint_bytes(len(encoded)), encoded, _varint_bytes(len(header_value)),
                     header_value)
        joined = b"".join(body)
        parts += (_varint_bytes(len(joined)), joined)
    records_bytes = b"".join(parts)
    count = len(records)
    head = bytearray(HEADER_SIZE)
    HEADER.pack_into(head, 0, base_offset, HEADER_SIZE - LOG_OVERHEAD + len(records_bytes),
                     LEADER_EPOCH, 2, 0, 0, count - 1, base_ts, max(timestamps), -1, -1, -1,
                     count)
    crc = crc32c.crc32c(records_bytes, crc32c.crc32c(memoryview(head)[_CRC_START:]))
    struct.pack_into(">I", head, 17, crc)
    return bytes(head) + records_bytes
