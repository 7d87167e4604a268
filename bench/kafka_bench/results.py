"""Reading runs back: the JSON lines files of kafka_serve.py, and the median of
several runs of the same command.

The median is taken per measurement, target, record size, partition count and
producer linger, over the runs in which that measurement succeeded (an error
line is kept only when it failed in every run), and per figure separately. A
first record that timed out counts as slower than any that came, so the median
is a timeout only when at least half the runs timed out. One run disturbed by
other work on the machine therefore does not set a figure.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence


def load_all(path: str) -> list[dict]:
    """Every line of a run's JSON lines file, error lines included."""
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _identity(figure: dict) -> tuple:
    return (figure["measurement"], figure["target"], figure["value_bytes"],
            figure["partitions"], figure.get("linger_ms"))


def _median(values: list) -> object:
    if all(isinstance(v, dict) for v in values):
        return {key: _median([v[key] for v in values]) for key in values[0]}
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return statistics.median_low(values)  # sizes, counts: one of the runs' own
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return statistics.median(values)
    return values[0]


def median_figures(runs: list[list[dict]]) -> list[dict]:
    """One figure per measurement, target, size, partitions and linger: the
    median over ``runs`` of those that succeeded (an error line only when none
    did), in the order of first appearance."""
    groups: dict[tuple, list[dict]] = {}
    for figures in runs:
        for figure in figures:
            groups.setdefault(_identity(figure), []).append(figure)
    medians = []
    for group in groups.values():
        good = [f for f in group if "error" not in f]
        if not good:
            medians.append(group[0])
            continue
        figure = {key: _median([f[key] for f in good]) for key in good[0]
                  if all(key in f for f in good)}
        if figure["measurement"] == "first_record":
            waits = sorted(math.inf if f["timed_out"] else f["seconds"] for f in good)
            middle = statistics.median_high(waits)
            figure.update(seconds=None if middle == math.inf else middle,
                          timed_out=middle == math.inf)
        figure["runs"] = len(good)
        medians.append(figure)
    return medians


def combined(paths: Sequence[str]) -> list[dict]:
    """The figures of one run, or the medians of several."""
    runs = [load_all(path) for path in paths]
    return runs[0] if len(runs) == 1 else median_figures(runs)
