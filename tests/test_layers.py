"""The layering of the package (docs/architecture.md), checked on the source.

Every import of every module counts -- at the top, inside functions, and under
``TYPE_CHECKING`` -- so that no layer can lean on one above it, even lazily:

    base      mqlog.errors, mqlog.headers, mqlog.names
    storage   mqlog.logstore.*                          imports base
    clients   mqlog.consumer.*, mqlog.producer.*, ...    imports storage, base
    session   mqlog (package), mqlog.log                imports clients, storage, base
    metrics   mqlog.metrics.*                           imports session and below
    servers   mqlog.server.*                            imports anything but the cli
    cli       mqlog.cli.*                               imports anything (``mqlog serve``)

And no module outside the storage, a clients, the metrics or the servers package imports a
``_``-prefixed module or name of it: each package's public names are its API.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mqlog"

#: Layer of a module, by the longest matching name prefix.
LAYERS = {
    "mqlog.errors": "base",
    "mqlog.headers": "base",
    "mqlog.names": "base",
    "mqlog.logstore": "storage",
    "mqlog.consumer": "clients",
    "mqlog.producer": "clients",
    "mqlog.request": "clients",
    "mqlog.lanes": "clients",
    "mqlog.monitor": "clients",
    "mqlog": "session",
    "mqlog.log": "session",
    "mqlog.metrics": "metrics",
    "mqlog.cli": "cli",
    "mqlog.server": "servers",
}
#: What each layer may import.
ALLOWED = {
    "base": {"base"},
    "storage": {"base", "storage"},
    "clients": {"base", "storage", "clients"},
    "session": {"base", "storage", "clients", "session"},
    "metrics": {"base", "storage", "clients", "session", "metrics"},
    "cli": {"base", "storage", "clients", "session", "metrics", "servers", "cli"},
    "servers": {"base", "storage", "clients", "session", "metrics", "servers"},
}
#: Packages whose ``_`` names are private to them.
SEALED = ("mqlog.logstore", "mqlog.consumer", "mqlog.producer", "mqlog.metrics",
          "mqlog.server")


def layer_of(module: str) -> str:
    best = max((prefix for prefix in LAYERS
                if module == prefix or module.startswith(prefix + ".")), key=len)
    return LAYERS[best]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(this: str, source: str, is_package: bool) -> list[tuple[int, str, str | None]]:
    """(line, module imported, name imported from it or None) for every mqlog import
    of module ``this`` (whose text is ``source``)."""
    package = this if is_package else this.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                found.append((node.lineno, base, alias.name))
    return [entry for entry in found if entry[1] == "mqlog" or entry[1].startswith("mqlog.")]


def sources() -> list[tuple[str, str, bool]]:
    """(module name, source, is a package) of every module of mqlog."""
    return [(module_name(path), path.read_text(), path.name == "__init__.py")
            for path in sorted(PACKAGE.rglob("*.py"))]


MODULE_NAMES = {name for name, _source, _package in sources()}


def violations(modules: list[tuple[str, str, bool]]) -> list[str]:
    problems = []
    for this, source, is_package in modules:
        mine = layer_of(this)
        for line, target, name in imports_of(this, source, is_package):
            full = f"{target}.{name}" if name else target
            # "from mqlog.consumer import admin" imports a module: judge it as one.
            wanted = layer_of(full if name and full in MODULE_NAMES else target)
            where = f"{this}:{line}"
            if wanted not in ALLOWED[mine]:
                problems.append(f"{where}: {this} ({mine}) imports {full} ({wanted})")
            for sealed in SEALED:
                inside = this == sealed or this.startswith(sealed + ".")
                if inside or not (target == sealed or target.startswith(sealed + ".")):
                    continue
                private = [part for part in full[len(sealed) + 1:].split(".")
                           if part.startswith("_")]
                if private:
                    problems.append(f"{where}: {this} uses {full}, private to {sealed}")
    return problems


def test_every_import_runs_down_the_layers() -> None:
    assert violations(sources()) == []


def test_every_module_has_a_layer() -> None:
    assert {layer_of(name) for name in MODULE_NAMES} <= set(ALLOWED)


@pytest.mark.parametrize(("source", "complaint"), [
    ("from mqlog.log import Log\n", "imports mqlog.log.Log (session)"),
    ("from mqlog.cli import app\n", "(cli)"),
    ("def later():\n    from mqlog.consumer import Consumer\n", "(clients)"),
    ("from ..consumer import _queue\n", "(clients)"),
])
def test_an_import_up_the_layers_is_caught(source: str, complaint: str) -> None:
    """The check itself can fail: a storage module importing upwards is reported."""
    problems = violations([("mqlog.logstore._rogue", source, False)])
    assert problems and complaint in problems[0]


def test_a_private_import_from_outside_is_caught() -> None:
    rogue = ("mqlog.cli._rogue", "from mqlog.logstore._partition import Partition\n"
             "from mqlog.consumer import _queue\n", False)
    assert violations([rogue]) == [
        "mqlog.cli._rogue:1: mqlog.cli._rogue uses mqlog.logstore._partition.Partition, "
        "private to mqlog.logstore",
        "mqlog.cli._rogue:2: mqlog.cli._rogue uses mqlog.consumer._queue, "
        "private to mqlog.consumer",
    ]


def test_a_private_producer_import_from_outside_is_caught() -> None:
    rogue = ("mqlog.log", "from mqlog.producer._producer import Producer\n", False)
    assert violations([rogue]) == [
        "mqlog.log:1: mqlog.log uses mqlog.producer._producer.Producer, "
        "private to mqlog.producer",
    ]
