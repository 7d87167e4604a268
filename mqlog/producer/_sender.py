"""The sender thread of a Producer: it appends whole batches and completes
their deliveries.

Owns: the thread, the batches it is appending right now (``_appending``:
``flush`` waits for them too) and the producer's idempotence identity: its
``producer_id``, ``epoch`` and the sequence number of the next record per
partition. These change only in the sender thread (after ``_start_sender``).

:class:`Sender` is the base class of :class:`~mqlog.producer.Producer`, which
owns the batches being filled (``_open``, ``_in_flight``), the bytes queued and
the lock guarding them; the sender takes batches under that lock, marks them
``taken`` and appends them outside it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from mqlog.logstore import EPOCH_MAX, SEQUENCE_MAX, Engine, Partition, ProducerBatch
from mqlog.producer._batches import Batch
from mqlog.producer._config import ProducerConfig

log = logging.getLogger("mqlog.producer")


class Sender:
    """Appends a Producer's batches in its own thread (see the module docstring)."""

    # Set by Producer.__init__ before _start_sender: the state shared with send.
    _log: Engine
    config: ProducerConfig
    _lock: threading.Lock
    _room: threading.Condition
    _open: dict[tuple[str, int], Batch]
    _in_flight: list[Batch]
    _queued_bytes: int
    _wake: threading.Event
    _closed: bool

    #: Called on the sender thread with every batch once it is done (outcome
    #: filled in, ``done`` set, its callbacks called), before the next one is
    #: appended: how ``mqlog.aio`` settles its sends once per batch rather than
    #: once per record. None: nobody listens. It must not raise or block.
    batch_listener: Callable[[Batch], None] | None = None

    def _start_sender(self) -> None:
        """Take an idempotence identity and start the thread (last of __init__)."""
        #: Batches the sender is appending right now (flush waits for them too).
        self._appending: list[Batch] = []
        #: Idempotence: this producer's id and epoch, and the sequence number of
        #: the next record per partition.
        self.producer_id = random.getrandbits(63) if self.config.idempotent else None
        self.epoch = 0
        self._sequences: dict[tuple[str, int], int] = {}
        self._sender = threading.Thread(target=self._run, name="mqlog-producer", daemon=True)
        self._sender.start()

    def _take_ready(self, final: bool) -> list[Batch]:
        """Batches to append now (lock held): full ones, old-enough ones, or all."""
        ready, self._in_flight = self._in_flight, []
        for batch in ready:
            batch.taken = True
        linger_s = self.config.linger_ms / 1000
        now = time.monotonic()
        for key, batch in list(self._open.items()):
            if final or not linger_s or batch.size >= self.config.batch_bytes or (
                now - batch.created >= linger_s
            ):
                batch.taken = True
                ready.append(self._open.pop(key))
        return ready

    def _run(self) -> None:
        while True:
            self._wake.wait(self._next_wait())
            self._wake.clear()
            with self._lock:
                closing = self._closed
                ready = self._appending = self._take_ready(final=closing)
            for batch in ready:
                self._append(batch)
            if ready:
                with self._lock:
                    self._queued_bytes -= sum(batch.size for batch in ready)
                    self._room.notify_all()
            if closing:
                with self._lock:
                    if not self._open and not self._in_flight:
                        return

    def _next_wait(self) -> float | None:
        if not self.config.linger_ms:
            return None
        with self._lock:
            if not self._open:
                return None
            oldest = min(batch.created for batch in self._open.values())
        return max(oldest + self.config.linger_ms / 1000 - time.monotonic(), 0.0)

    def _append(self, batch: Batch) -> None:
        log_ = self._log
        if not batch.items:  # a sticky batch that received nothing
            batch.done.set()
            return
        try:
            batch.append_ms = log_.now_ms()
            target = log_.partition(batch.topic, batch.partition)
            batch.base_offset = self._append_to(target, batch)
        except BaseException as error:  # delivered to whoever waits on the batch
            batch.error = error
        batch.done.set()
        for index, callback in batch.callbacks:
            try:
                if batch.error is None:
                    callback(batch.metadata(index), None)
                else:
                    callback(None, batch.error)
            except Exception:
                log.exception("on_delivery callback failed")
        listener = self.batch_listener
        if listener is not None:
            try:
                listener(batch)
            except Exception:
                log.exception("batch listener failed")

    def _append_to(self, target: Partition, batch: Batch) -> int:
        """Append a batch; an idempotent producer retries an OSError with the same
        sequence numbers, so a first try that was written is not written again."""
        if self.producer_id is None:
            return self._log.append_to(target, batch.items, now_ms=batch.append_ms)
        key = (batch.topic, batch.partition)
        sequence = self._sequences.get(key, 0)
        producer = ProducerBatch(self.producer_id, self.epoch, sequence)
        for attempt in range(self.config.retries + 1):
            try:
                first = self._log.append_to(target, batch.items, now_ms=batch.append_ms,
                                            producer=producer)
            except OSError:
                if attempt == self.config.retries:
                    # Whether the batch was written is unknown: continue in a new
                    # epoch, so no later batch can be taken for a retry of this one.
                    self._next_epoch()
                    raise
                time.sleep(min(0.01 * 2 ** attempt, 1.0))
                continue
            self._sequences[key] = (sequence + len(batch.items)) % (SEQUENCE_MAX + 1)
            return first
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _next_epoch(self) -> None:
        """Start the next epoch (a new producer id after the last one): sequences
        start again at 0 in every partition."""
        if self.epoch == EPOCH_MAX:
            self.producer_id, self.epoch = random.getrandbits(63), 0
        else:
            self.epoch += 1
        self._sequences.clear()
