"""Draw a run as one SVG: ``python -m kafka_bench.plot RESULTS.jsonl [MORE.jsonl ...] OUT.svg``
(several runs: the median of each figure, see kafka_bench.results).

Panels (one bar per target, grouped by record size and partition count):
produce and consume records/s, the first record after ``subscribe()`` (s, log
scale: a timeout is drawn at the cap and labelled so), and end-to-end latency
p50 and p99 (ms, log scale). The SVG is written directly (no plotting
library), so the plot needs nothing beyond the standard library.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from xml.sax.saxutils import escape

from kafka_bench.results import combined

COLOURS = {"mqlog-none": "#4c72b0", "mqlog-always": "#8172b3", "tansu": "#dd8452",
           "embedded": "#55a868"}
OTHER_COLOUR = "#937860"
WIDTH = 900
LABEL_WIDTH = 130
VALUE_ROOM = 200
BAR_HEIGHT = 14
GROUP_GAP = 10
TITLE_HEIGHT = 44
PANEL_GAP = 18


@dataclass(frozen=True)
class Panel:
    """One chart: figures of ``measurement``, value ``key`` in ``unit``."""

    title: str
    measurement: str
    key: str
    unit: str
    log: bool


PANELS = (
    Panel("produce (confluent-kafka, linger.ms=5)", "produce", "msgs_per_s", "records/s",
          False),
    Panel("consume (assign from the beginning)", "consume", "msgs_per_s", "records/s", False),
    Panel("first record after subscribe() (log scale)", "first_record", "seconds", "s", True),
    Panel("end-to-end latency p50, producer process to consumer process (log scale)",
          "latency", "p50_ms", "ms", True),
    Panel("end-to-end latency p99 (log scale)", "latency", "p99_ms", "ms", True),
)


def _name(figure: dict) -> str:
    """The bar's series: the target, and the producer's linger for latency."""
    if figure["measurement"] == "latency":
        return f"{figure['target']}, linger.ms={figure['linger_ms']}"
    return figure["target"]


def _value(figure: dict, panel: Panel) -> tuple[float, str]:
    """The bar's length and its label (a timed-out first record: the cap)."""
    if figure.get("timed_out"):
        return float(figure["wait_s"]), f"timeout > {figure['wait_s']:g} s"
    value = float(figure[panel.key])
    text = f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
    return value, f"{text} {panel.unit}"


def _scale(values: list[float], log: bool, width: float):
    """A function from value to bar length in pixels."""
    top = max(values, default=1.0) or 1.0
    if not log:
        return lambda v: width * v / top
    low = min((v for v in values if v > 0), default=top)
    floor = 10 ** math.floor(math.log10(low)) / 10
    span = math.log10(top) - math.log10(floor) or 1.0
    return lambda v: width * (math.log10(max(v, floor)) - math.log10(floor)) / span


def _panel(figures: list[dict], panel: Panel, top: float, targets: list[str]
           ) -> tuple[list[str], float]:
    """The SVG elements of one panel starting at ``top``; returns them and the
    panel's height."""
    chosen = [f for f in figures if f["measurement"] == panel.measurement
              and (f.get("timed_out") or f.get(panel.key) is not None)]
    groups = sorted({(f["value_bytes"], f["partitions"]) for f in chosen})
    elements = [f'<text x="10" y="{top + 18}" font-size="13" font-weight="bold">'
                f"{escape(panel.title)}</text>"]
    if not chosen:
        elements.append(f'<text x="10" y="{top + 36}" font-size="11">no figures</text>')
        return elements, TITLE_HEIGHT
    bar_room = WIDTH - LABEL_WIDTH - VALUE_ROOM
    scale = _scale([_value(f, panel)[0] for f in chosen], panel.log, bar_room)
    y = top + TITLE_HEIGHT - 14
    for size, partitions in groups:
        rows = sorted((f for f in chosen
                       if (f["value_bytes"], f["partitions"]) == (size, partitions)),
                      key=lambda f: (targets.index(f["target"]), f.get("linger_ms", 0)))
        label = f"{size:,} B, {partitions} partition{'s' if partitions > 1 else ''}"
        middle = y + len(rows) * BAR_HEIGHT / 2 + 4
        elements.append(f'<text x="{LABEL_WIDTH - 8}" y="{middle}" font-size="11" '
                        f'text-anchor="end">{escape(label)}</text>')
        for figure in rows:
            value, text = _value(figure, panel)
            length = max(1.0, scale(value))
            colour = COLOURS.get(figure["target"], OTHER_COLOUR)
            opacity = 0.55 if figure.get("linger_ms") else 1.0  # the batching client: lighter
            elements.append(f'<rect x="{LABEL_WIDTH}" y="{y}" width="{length:.1f}" '
                            f'height="{BAR_HEIGHT - 2}" fill="{colour}" '
                            f'fill-opacity="{opacity}"/>')
            elements.append(f'<text x="{LABEL_WIDTH + length + 4:.1f}" y="{y + 10}" '
                            f'font-size="10">{escape(_name(figure))}: {escape(text)}</text>')
            y += BAR_HEIGHT
        y += GROUP_GAP
    return elements, y - top


def render(figures: list[dict]) -> str:
    """The whole SVG document for ``figures``."""
    targets = list(dict.fromkeys(f["target"] for f in figures))
    elements: list[str] = []
    top = 10.0
    for panel in PANELS:
        panel_elements, height = _panel(figures, panel, top, targets)
        elements += panel_elements
        top += height + PANEL_GAP
    machine = figures[0]["machine"] if figures else ""
    runs = max((f.get("runs", 1) for f in figures), default=1)
    if runs > 1:
        machine = f"median of {runs} runs; {machine}"
    elements.append(f'<text x="10" y="{top + 4}" font-size="10" fill="#555">'
                    f"{escape(machine)}</text>")
    height = top + 16
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0f}" '
            f'viewBox="0 0 {WIDTH} {height:.0f}" font-family="sans-serif">\n'
            f'<rect width="100%" height="100%" fill="white"/>\n'
            + "\n".join(elements) + "\n</svg>\n")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        print("usage: python -m kafka_bench.plot RESULTS.jsonl [MORE.jsonl ...] OUT.svg",
              file=sys.stderr)
        return 2
    *sources, target = args
    figures = [f for f in combined(sources) if "error" not in f]
    with open(target, "w") as handle:
        handle.write(render(figures))
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
