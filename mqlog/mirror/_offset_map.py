"""OffsetMap: where each mirrored record of one partition went, as runs.

A run ``(source_start, destination_start, length)`` says that the source
records at offsets ``source_start .. source_start + length - 1`` are, in that
order, the destination records at ``destination_start ..``: both sides dense.
A source whose offsets have gaps (compaction, retention before the mirror
started) or a destination where another producer's records fall between the
mirror's starts a new run; a dense source copied alone is one run however
long. The runs are sorted and disjoint on both sides (a mirror appends in
source order), which :meth:`OffsetMap.add_run` asserts.

``source_next`` is the source offset the copy goes on from (every source
record below it is mirrored, or was gone before it could be);
``destination_next`` the destination offset after the last mirrored record.
"""

from __future__ import annotations

import bisect


class OffsetMap:
    """The source -> destination offsets of one mirrored partition (see the module)."""

    def __init__(self, source_next: int, destination_next: int) -> None:
        #: The source offset the mirror of this partition started from.
        self.source_origin = source_next
        self.source_next = source_next
        self.destination_next = destination_next
        self._source_starts: list[int] = []
        self._destination_starts: list[int] = []
        self._lengths: list[int] = []
        self._mirrored = 0

    @property
    def runs(self) -> list[tuple[int, int, int]]:
        """Every run as ``(source_start, destination_start, length)``, in order."""
        return list(zip(self._source_starts, self._destination_starts, self._lengths))

    @property
    def mirrored(self) -> int:
        """Records mirrored so far."""
        return self._mirrored

    def add(self, source_offset: int, destination_offset: int) -> None:
        """One more record mirrored: ``source_offset`` is now ``destination_offset``."""
        self.add_run(source_offset, destination_offset, 1)

    def add_all(self, pairs: list[tuple[int, int]]) -> None:
        """More records mirrored, in order: ``(source_offset, destination_offset)``
        each; one :meth:`add_run` per stretch dense on both sides."""
        if not pairs:
            return
        source_start, destination_start = pairs[0]
        length = 1
        for source_offset, destination_offset in pairs[1:]:
            if (source_offset == source_start + length
                    and destination_offset == destination_start + length):
                length += 1
                continue
            self.add_run(source_start, destination_start, length)
            source_start, destination_start, length = source_offset, destination_offset, 1
        self.add_run(source_start, destination_start, length)

    def add_run(self, source_start: int, destination_start: int, length: int) -> None:
        """``length`` more records mirrored, dense on both sides; extends the last run
        when it continues it on both sides."""
        assert length > 0, length
        assert source_start >= self.source_next or not self._lengths, (
            f"source offset {source_start} mirrored after {self.source_next}")
        self._mirrored += length
        if self._lengths:
            last = len(self._lengths) - 1
            assert destination_start >= self._destination_starts[last] + self._lengths[last]
            if (self._source_starts[last] + self._lengths[last] == source_start
                    and self._destination_starts[last] + self._lengths[last]
                    == destination_start):
                self._lengths[last] += length
                self._advance(source_start + length, destination_start + length)
                return
        self._source_starts.append(source_start)
        self._destination_starts.append(destination_start)
        self._lengths.append(length)
        self._advance(source_start + length, destination_start + length)

    def runs_after(self, mirrored_before: int) -> list[tuple[int, int, int]]:
        """The runs of the records mirrored after the first ``mirrored_before`` (what a
        checkpoint written after one covering ``mirrored_before`` records adds)."""
        out: list[tuple[int, int, int]] = []
        remaining = self.mirrored - mirrored_before
        index = len(self._lengths) - 1
        while remaining > 0:
            length = self._lengths[index]
            taken = min(length, remaining)
            skipped = length - taken
            out.append((self._source_starts[index] + skipped,
                        self._destination_starts[index] + skipped, taken))
            remaining -= taken
            index -= 1
        out.reverse()
        return out

    def skip_to(self, source_offset: int) -> None:
        """The source records below ``source_offset`` are gone (retention) before the
        mirror copied them: go on from there."""
        self.source_next = max(self.source_next, source_offset)

    def _advance(self, source_next: int, destination_next: int) -> None:
        self.source_next = max(self.source_next, source_next)
        self.destination_next = max(self.destination_next, destination_next)

    def translate(self, source_offset: int) -> int | None:
        """The destination offset of the first mirrored record whose source offset is
        ``>= source_offset`` (``destination_next`` when none is mirrored yet); None
        when the source records before ``source_offset`` are not all mirrored yet,
        so that no translation can be exact."""
        if source_offset > self.source_next:
            return None
        index = bisect.bisect_right(self._source_starts, source_offset) - 1
        if index >= 0:
            start, length = self._source_starts[index], self._lengths[index]
            if source_offset < start + length:
                return self._destination_starts[index] + source_offset - start
        following = index + 1
        if following < len(self._source_starts):
            return self._destination_starts[following]
        return self.destination_next
