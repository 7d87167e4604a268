"""PNG plots of a peer run (matplotlib, imported only when plotting).

* ``peers-throughput.png``: records/s of every produce and consume row, one
  panel per workload and durability class, log scale, one bar per message size;
* ``peers-latency.png``: p50 / p99 / p99.9 of every latency run, one panel per
  durability class, log scale.
"""

from __future__ import annotations

import os

from peers import core, report

COLOURS = ("#4c72b0", "#dd8452")
PANEL_TITLE = {core.RELAXED: "relaxed durability", core.FSYNC: "fsync durability"}


def _plain(value: float, _position: int) -> str:
    """Tick labels as plain numbers (10, 1,000, 0.1) instead of powers of ten."""
    return f"{value:,.0f}" if value >= 1 else f"{value:g}"


def _label(figure: dict) -> str:
    """A bar's name: the system and its call, without the parenthesised details."""
    call = figure["call"].split(" (")[0]
    backlog = f", backlog {figure['backlog']:,}" if figure.get("fixed_backlog") else ""
    return f"{figure['system']}: {call}{backlog}"


def _bar_panel(axis, figures: list[dict], sizes: list[int], title: str) -> None:
    rows = report.rows_by(figures, _label)  # label -> {size: figure}
    labels = list(rows)
    height = 0.8 / max(1, len(sizes))
    for index, size in enumerate(sizes):
        positions = [row + index * height for row in range(len(rows))]
        values = [by_size[size]["value"] if size in by_size else 0 for by_size in rows.values()]
        axis.barh(positions, values, height=height, color=COLOURS[index % len(COLOURS)],
                  label=report.size_text(size))
    axis.set_yticks([row + 0.4 - height / 2 for row in range(len(rows))], labels, fontsize=7)
    axis.invert_yaxis()
    axis.set_xscale("log")
    axis.xaxis.set_major_formatter(_plain)
    axis.set_xlabel("records/s (log scale)")
    axis.set_title(title, fontsize=9)
    axis.grid(axis="x", which="both", alpha=0.3)
    axis.legend(fontsize=7, loc="lower right")


def _throughput(plt, figures: list[dict], sizes: list[int], path: str) -> None:
    panels = [(w, c) for w in ("produce", "consume") for c in (core.RELAXED, core.FSYNC)]
    heights = [max(1, len({_label(f) for f in figures if f["workload"] == w
                           and f["sync_class"] == c})) for w, c in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2 + 0.33 * sum(heights)),
                             gridspec_kw={"height_ratios": heights})
    for axis, (workload, sync_class) in zip(axes, panels):
        chosen = [f for f in figures if f["workload"] == workload
                  and f["sync_class"] == sync_class]
        _bar_panel(axis, chosen, sizes, f"{workload}, {PANEL_TITLE[sync_class]}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _latency(plt, figures: list[dict], path: str) -> None:
    fig, axes = plt.subplots(2, 1, figsize=(10, 9))
    for axis, sync_class in zip(axes, (core.RELAXED, core.FSYNC)):
        runs: dict[str, dict[str, float]] = {}
        for figure in report.ordered(figures):
            if figure["workload"] == "latency" and figure["sync_class"] == sync_class:
                label = (f"{figure['system']}, {report.size_text(figure['value_bytes'])} "
                         f"at {figure['rate']:,}/s")
                runs.setdefault(label, {})[figure["metric"]] = figure["value"]
        labels = list(runs)
        for offset, (metric, colour) in enumerate(
                (("p50_ms", "#55a868"), ("p99_ms", "#4c72b0"), ("p999_ms", "#c44e52"))):
            axis.barh([row + offset * 0.27 for row in range(len(labels))],
                      [runs[label].get(metric, 0) for label in labels], height=0.27,
                      color=colour, label=metric.replace("_ms", "").replace("p999", "p99.9"))
        axis.set_yticks([row + 0.27 for row in range(len(labels))], labels, fontsize=7)
        axis.invert_yaxis()
        axis.set_xscale("log")
        axis.xaxis.set_major_formatter(_plain)
        axis.set_xlabel("latency, ms (log scale)")
        axis.set_title(f"end-to-end latency, separate processes, {PANEL_TITLE[sync_class]}",
                       fontsize=9)
        axis.grid(axis="x", which="both", alpha=0.3)
        axis.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw(figures: list[dict], directory: str) -> list[str]:
    """Write the plots into ``directory``; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(directory, exist_ok=True)
    sizes = sorted({f["value_bytes"] for f in figures})
    throughput_path = os.path.join(directory, "peers-throughput.png")
    latency_path = os.path.join(directory, "peers-latency.png")
    _throughput(plt, [f for f in figures if f["workload"] != "latency"], sizes, throughput_path)
    _latency(plt, figures, latency_path)
    return [throughput_path, latency_path]
