"""mqlog.logstore.layout is the one place the names of a log directory's files are spelled."""

from __future__ import annotations

from pathlib import Path

import pytest

import mqlog
from mqlog.logstore import layout
from mqlog.logstore._segment import list_segment_bases

PACKAGE = Path(mqlog.__file__).parent
#: The names no other word of the code is spelled like ("state" or ".json" are).
DISTINCT = [value for name, value in vars(layout).items()
            if name.isupper() and isinstance(value, str)
            and value not in (layout.STATE_FILE, layout.PRODUCERS_FILE, layout.NOTIFY_FILE,
                              layout.TOPICS_DIR, layout.QUARANTINE_DESCRIPTION_SUFFIX)]


def test_file_names_are_spelled_only_in_layout() -> None:
    spelled = [(str(path.relative_to(PACKAGE)), value)
               for path in sorted(PACKAGE.rglob("*.py"))
               if path.name != "layout.py"
               for value in DISTINCT if f'"{value}' in path.read_text()]
    assert spelled == []


@pytest.mark.parametrize(("name", "base"), [
    ("00000000000000000000.log", 0),
    ("00000000000000052817.log", 52817),
    ("00000000000000000000.index", None),
    ("00000000000000000000.log.cleaned", None),
    ("00000000000000000000.log.quarantine-20261206T231502Z", None),
    ("0000000000000000000.log", None),  # 19 digits
    ("0000000000000000000\u0661.log", None),  # an Arabic-Indic digit: isdigit() but not ASCII
    ("state", None),
])
def test_segment_base(name: str, base: int | None) -> None:
    assert layout.segment_base(name) == base


def test_segment_names_sort_as_offsets(tmp_path: Path) -> None:
    bases = [0, 9, 10, 52817, 2**63 - 1]
    for base in bases:
        (tmp_path / (layout.segment_name(base) + layout.LOG_SUFFIX)).touch()
        (tmp_path / (layout.segment_name(base) + layout.INDEX_SUFFIX)).touch()
    (tmp_path / "0000000000000000000\u0661.log").touch()  # not a segment's name
    names = [layout.segment_name(base) for base in bases]
    assert sorted(names) == names
    assert list_segment_bases(str(tmp_path)) == bases


def test_the_temporary_pattern_matches_what_atomic_write_names() -> None:
    from mqlog.logstore._files import temporary_name

    match = layout.TEMPORARY_NAME.match(Path(temporary_name("/x/topic.json")).name)
    assert match is not None and match["target"] == "topic.json"
