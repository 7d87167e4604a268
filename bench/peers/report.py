"""Ratios, markdown tables and the targets' verdicts of a peer run.

Ratios are mqlog/peer, computed pairwise within one run: each peer figure is
paired with the mqlog reference figure (``"reference": true``: durability
``interval`` with flush_ms=1000 for the relaxed class, ``always`` for the fsync
class) of the same workload, message size and durability class:

* produce, one record per call: mqlog ``Log.append`` of one record;
* produce, batch/pipeline/async: mqlog ``Log.append`` of 1,000 records;
* consume, stream or queue form: mqlog's group consumer, poll 1,000 + commit
  (the harness has no mqlog case with per-message acknowledgement);
* latency: mqlog at the same rate; the ratio of each percentile.

For throughput a ratio above 1 means mqlog is faster; for latency a ratio
below 1 means mqlog's latency is lower.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from peers import core

SYSTEM_ORDER = ("mqlog", "Redis Streams", "NATS JetStream", "persist-queue", "litequeue")
PAIR_FORM = {"single": "single", "batch": "batch", "stream": "stream", "queue": "queue"}
CLASS_TITLE = {core.RELAXED: "relaxed durability (page cache, flushed on a timer)",
               core.FSYNC: "fsync durability (flushed before the call returns)"}


def significant(value: float) -> float | int:
    """Four significant digits, as the other benchmark scripts print."""
    rounded = float(f"{value:.4g}")
    return int(rounded) if rounded.is_integer() and abs(rounded) >= 1000 else rounded


def _key(figure: dict, form: str | None) -> tuple | None:
    if figure["workload"] == "latency":
        return ("latency", figure["metric"], figure["value_bytes"], figure["sync_class"],
                figure["rate"])
    if form is None:
        return None
    return (figure["workload"], form, figure["value_bytes"], figure["sync_class"])


def add_ratios(figures: list[dict]) -> None:
    """Give every peer figure that has an mqlog counterpart ``mqlog_ratio``."""
    references = {_key(f, f["form"]): f for f in figures if f.get("reference")}
    for figure in figures:
        if figure["system"] == "mqlog":
            continue
        reference = references.get(_key(figure, PAIR_FORM.get(figure["form"])))
        if reference is None or figure["value"] <= 0:
            continue
        figure["mqlog_ratio"] = significant(reference["value"] / figure["value"])
        figure["mqlog_reference"] = f"{reference['call']} ({reference['durability']})"


# -- formatting -----------------------------------------------------------------------------


def number(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,}" if abs(value) >= 1000 else f"{value:g}"


def ratio_text(ratio: float | None) -> str:
    if ratio is None:
        return "—"
    if ratio >= 100:
        return f"{ratio:,.0f}x"
    return f"{ratio:.1f}x" if ratio >= 10 else f"{ratio:.2f}x"


def size_text(size: int) -> str:
    return f"{size // 1024} KiB" if size % 1024 == 0 else f"{size} B"


def ordered(figures: Iterable[dict]) -> list[dict]:
    order = {name: index for index, name in enumerate(SYSTEM_ORDER)}
    return sorted(figures, key=lambda f: order.get(f["system"], len(order)))


def rows_by(figures: list[dict], key: Callable[[dict], tuple]) -> dict[tuple, dict[int, dict]]:
    """Group figures by ``key`` (first-seen order), then by message size."""
    rows: dict[tuple, dict[int, dict]] = {}
    for figure in ordered(figures):
        rows.setdefault(key(figure), {})[figure["value_bytes"]] = figure
    return rows


def throughput_table(figures: list[dict], workload: str, sync_class: str,
                     sizes: list[int]) -> str:
    chosen = [f for f in figures if f["workload"] == workload and f["sync_class"] == sync_class]
    header = "| system | call | durability |" + ("" if workload == "produce" else " backlog |")
    rule = "|---|---|---|" + ("" if workload == "produce" else "---:|")
    for size in sizes:
        header += f" {size_text(size)}: records/s | mqlog/peer |"
        rule += "---:|---:|"
    lines = [header, rule]
    rows = rows_by(chosen, lambda f: (f["system"], f["call"], f["durability"], f.get("backlog")))
    for (system, call, durability, backlog), by_size in rows.items():
        line = f"| {system} | {call} | {durability} |"
        if workload != "produce":
            line += f" {number(backlog)} |"
        for size in sizes:
            figure = by_size.get(size)
            if figure is None:
                line += " — | — |"
                continue
            mark = " †" if figure.get("capped") else ""
            line += f" {number(figure['value'])}{mark} | {ratio_text(figure.get('mqlog_ratio'))} |"
        lines.append(line)
    return "\n".join(lines)


def latency_table(figures: list[dict]) -> str:
    chosen = [f for f in figures if f["workload"] == "latency"]
    lines = ["| system | calls | durability | size | rate/s | samples | p50 ms | p99 ms | "
             "p99.9 ms | mqlog/peer p99 | kept up |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    rows = rows_by(chosen, lambda f: (f["sync_class"], f["system"], f["durability"], f["rate"],
                                    f["value_bytes"], f["metric"]))
    grouped: dict[tuple, dict[str, dict]] = {}
    for (sync_class, system, durability, rate, size, metric), by_size in rows.items():
        grouped.setdefault((sync_class, system, durability, size, rate), {})[metric] = (
            by_size[size])
    for sync_class in (core.RELAXED, core.FSYNC):
        for (klass, system, durability, size, rate), metrics in grouped.items():
            if klass != sync_class:
                continue
            p50, p99, p999 = metrics["p50_ms"], metrics["p99_ms"], metrics["p999_ms"]
            lines.append(
                f"| {system} | {p50['call']} | {durability} | {size_text(size)} | {rate:,} | "
                f"{p50['records']:,} | {number(p50['value'])} | {number(p99['value'])} | "
                f"{number(p999['value'])} | {ratio_text(p99.get('mqlog_ratio'))} | "
                f"{'yes' if p50['kept_up'] else 'no'} |")
    return "\n".join(lines)


# -- targets ---------------------------------------------------------------------------------


def _find(figures: list[dict], **wanted: object) -> list[dict]:
    return [f for f in figures if all(f.get(k) == v for k, v in wanted.items())]


def _best_ratio(figures: list[dict], system: str, workload: str, sync_class: str,
                size: int) -> float | None:
    """mqlog's fastest reference form of ``workload`` over the peer's fastest form
    (consume: with the run's backlog, not the extra small-backlog rows)."""
    def best(found: list[dict]) -> float | None:
        values = [f["value"] for f in found if not f.get("fixed_backlog")]
        return max(values, default=None)

    shared = {"workload": workload, "sync_class": sync_class, "value_bytes": size}
    ours = best([f for f in _find(figures, system="mqlog", **shared) if f.get("reference")])
    theirs = best(_find(figures, system=system, **shared))
    return significant(ours / theirs) if ours and theirs else None


def targets(figures: list[dict], sizes: list[int]) -> list[tuple[str, dict[int, float | None],
                                                                 float, str]]:
    """(target, {size: ratio}, threshold, "min" or "max") for each target of the issue."""
    def ratio(size: int, **wanted: object) -> float | None:
        found = [f for f in _find(figures, value_bytes=size, **wanted) if "mqlog_ratio" in f]
        return found[0]["mqlog_ratio"] if found else None

    rows = []
    redis = {"system": "Redis Streams"}
    rows.append(("produce, relaxed: mqlog Log.append x 1,000 (interval 1 s) vs Redis XADD "
                 "pipelined (appendfsync everysec), >= 5x",
                 {s: ratio(s, **redis, workload="produce", form="batch",
                           sync_class=core.RELAXED) for s in sizes}, 5.0, "min"))
    rows.append(("consume, relaxed: mqlog poll + commit vs Redis XREADGROUP + XACK "
                 "(appendfsync everysec), >= 5x",
                 {s: ratio(s, **redis, workload="consume", form="stream",
                           sync_class=core.RELAXED) for s in sizes}, 5.0, "min"))
    for system in ("persist-queue", "litequeue"):
        for workload in ("produce", "consume"):
            rows.append((f"{workload}, relaxed: mqlog's fastest form vs {system}'s fastest, "
                         f">= 50x",
                         {s: _best_ratio(figures, system, workload, core.RELAXED, s)
                          for s in sizes}, 50.0, "min"))
    rows.append(("produce, fsync: mqlog Log.append x 1,000 (always) vs Redis XADD pipelined "
                 "(appendfsync always), >= 5x",
                 {s: ratio(s, **redis, workload="produce", form="batch", sync_class=core.FSYNC)
                  for s in sizes}, 5.0, "min"))
    rows.append(("consume, fsync: mqlog poll + commit vs Redis XREADGROUP + XACK "
                 "(appendfsync always), >= 5x",
                 {s: ratio(s, **redis, workload="consume", form="stream", sync_class=core.FSYNC)
                  for s in sizes}, 5.0, "min"))
    for figure in ordered(_find(figures, workload="latency", metric="p99_ms")):
        if figure["system"] == "mqlog" or "mqlog_ratio" not in figure:
            continue
        rows.append((f"cross-process p99 below {figure['system']} ({figure['durability']}), "
                     f"{size_text(figure['value_bytes'])} at {figure['rate']:,}/s",
                     {figure["value_bytes"]: figure["mqlog_ratio"]}, 1.0, "max"))
    return rows


def verdict(ratios: dict[int, float | None], threshold: float, sense: str) -> str:
    values = [r for r in ratios.values() if r is not None]
    if not values:
        return "not measured"
    if sense == "min":
        worst = min(values)
        return "met" if worst >= threshold else f"missed (worst {worst:.2f}x)"
    worst = max(values)
    return "met" if worst < threshold else f"missed (mqlog p99 {worst:.2f}x the peer's)"


def targets_table(figures: list[dict], sizes: list[int]) -> str:
    lines = ["| target | " + " | ".join(f"{size_text(s)}: mqlog/peer" for s in sizes)
             + " | verdict |", "|---|" + "---:|" * len(sizes) + "---|"]
    for text, ratios, threshold, sense in targets(figures, sizes):
        cells = " | ".join(ratio_text(ratios.get(s)) if s in ratios else "" for s in sizes)
        lines.append(f"| {text} | {cells} | {verdict(ratios, threshold, sense)} |")
    return "\n".join(lines)


def markdown(figures: list[dict], context: dict) -> str:
    """The whole report: context, one table per workload and class, the targets."""
    sizes = sorted({f["value_bytes"] for f in figures})
    load = ", ".join(f"{x:.2f}" for x in context["load_before"])
    load_after = ", ".join(f"{x:.2f}" for x in context["load_after"])
    parts = [
        "## Peer benchmark results",
        "",
        f"- Command: `{context['command']}` ({context['seconds']} s)",
        f"- Machine: {context['machine']}; Python {context['python']}",
        f"- Load average (1, 5, 15 min) before: {load}; after: {load_after}",
        f"- Records per produce/consume row: {context['records']:,}; each timed loop capped "
        f"at {context['max_seconds']} s († = stopped by the cap: the rate over what it did)",
    ]
    parts += [f"- {name}: {version}" for name, version in context["versions"].items()]
    parts += [f"- Skipped {name}: no {why}" for name, why in context["skipped"].items()]
    for workload in ("produce", "consume"):
        for sync_class in (core.RELAXED, core.FSYNC):
            parts += ["", f"### {workload.capitalize()}, {CLASS_TITLE[sync_class]}", "",
                      throughput_table(figures, workload, sync_class, sizes)]
    parts += ["", "### End-to-end latency, producer and consumer in separate processes", "",
              latency_table(figures), "", "### Targets", "", targets_table(figures, sizes), ""]
    return "\n".join(parts)
