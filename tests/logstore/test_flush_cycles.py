"""``flush_cycles``: an event loop's requests waiting for durability share one
flush cycle at a time over every partition waited on."""

from __future__ import annotations

import asyncio
import threading

import pytest

from mqlog import StorageFailedError, UnknownTopicError
from mqlog.logstore import Engine, flush_cycles


@pytest.fixture
def engine(tmp_path):
    with Engine(str(tmp_path / "log")) as opened:
        opened.create_topic("t", partitions=4, durability="always")
        yield opened


class _CountingCycles:
    """Counts ``make_durable_together`` calls; ``gate`` holds each until set."""

    def __init__(self, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[list[tuple[str, int, int]]] = []
        self.gate = threading.Event()
        self.gate.set()
        real = engine.make_durable_together

        def counting(wanted):
            self.calls.append(list(wanted))
            self.gate.wait(10)
            return real(wanted)

        monkeypatch.setattr(engine, "make_durable_together", counting)


def test_requests_on_several_partitions_share_one_cycle(engine, monkeypatch):
    counting = _CountingCycles(engine, monkeypatch)

    async def main() -> None:
        cycles = flush_cycles(engine)
        assert flush_cycles(engine) is cycles  # one per loop
        waits = []
        for number in range(4):
            end = engine.append("t", number, [b"x"], flush=False) + 1
            waits.append(cycles.durable("t", number, end))
        await asyncio.gather(*waits)

    asyncio.run(main())
    assert len(counting.calls) == 1
    assert sorted(counting.calls[0]) == [("t", number, 1) for number in range(4)]
    for number in range(4):
        assert engine.partition("t", number).group_commit.durable_offset >= 1


def test_a_request_arriving_during_a_cycle_waits_for_the_next(engine, monkeypatch):
    counting = _CountingCycles(engine, monkeypatch)
    counting.gate.clear()

    async def main() -> None:
        cycles = flush_cycles(engine)
        first = cycles.durable("t", 0, engine.append("t", 0, [b"a"], flush=False) + 1)
        await asyncio.sleep(0.05)  # the first cycle is running, held at the gate
        second = cycles.durable("t", 1, engine.append("t", 1, [b"b"], flush=False) + 1)
        third = cycles.durable("t", 0, engine.append("t", 0, [b"c"], flush=False) + 1)
        assert not first.done() and len(counting.calls) == 1
        counting.gate.set()
        await asyncio.gather(first, second, third)

    asyncio.run(main())
    assert [sorted(call) for call in counting.calls] == [[("t", 0, 1)],
                                                         [("t", 0, 2), ("t", 1, 1)]]


def test_a_failed_partition_fails_only_its_waiters(engine, monkeypatch):
    def failing(wanted):
        return {("t", 2): StorageFailedError("injected", original=OSError(5, "EIO"))}

    monkeypatch.setattr(engine, "make_durable_together", failing)

    async def main() -> None:
        cycles = flush_cycles(engine)
        ok = cycles.durable("t", 1, 1)
        bad = cycles.durable("t", 2, 1)
        gone = cycles.durable("t", 3, 1)
        gone.cancel()  # its request went away: skipped
        await ok
        with pytest.raises(StorageFailedError, match="injected"):
            await bad

    asyncio.run(main())


def test_a_deleted_topic_answers_its_waiters_and_a_new_one_starts_afresh(engine):
    async def main() -> None:
        cycles = flush_cycles(engine)
        await cycles.durable("t", 0, engine.append("t", 0, [b"a", b"b"], flush=False) + 2)
        engine.delete_topic("t")
        with pytest.raises(UnknownTopicError):
            await cycles.durable("t", 0, 2)
        engine.create_topic("t", partitions=1, durability="always")
        end = engine.append("t", 0, [b"again"], flush=False) + 1
        await cycles.durable("t", 0, end)
        assert engine.partition("t", 0).group_commit.durable_offset >= end

    asyncio.run(main())
