"""One rule set for every name mqlog stores on disk or shows: topics, groups, client ids.

Each of these names becomes a file or directory name (``topics/<topic>/``,
``groups/<group>/``, ``queues/<group>/``, ``members/<client id>-<12 hex>.json``),
so they follow one rule set, Kafka's topic-name rules:

- a ``str`` of 1 to the kind's maximum characters (below);
- only ``[a-zA-Z0-9._-]``: no path separator, space, control or non-ASCII
  character, so a name is always one safe file name and never starts with
  ``~`` (the prefix of a log's staging directories, see ``logstore.layout``);
- not ``.`` or ``..``;
- topic names starting ``__`` are reserved for mqlog's internal topics
  (``__consumer_offsets``, ``__replies``); only mqlog itself passes
  ``internal=True``.

========== ======= ===============================================================
kind       maximum why
========== ======= ===============================================================
topic      249     Kafka's limit: leaves room for suffixes in file names
group      249     the topic names' limit (a group is a directory, as a topic is)
client id  229     a joining member's file, ``<client id>-<12 hex digits>.json.joining``,
                   fits the 255-byte limit of a file name
========== ======= ===============================================================

A bad topic name raises InvalidTopicError, any other bad name ConfigError
(both are ValueErrors); a name of another type than ``str`` raises them too,
saying so. Nothing is written before a name is validated.
"""

from __future__ import annotations

import re

from mqlog.errors import ConfigError, InvalidTopicError

#: The characters a name may hold, as a regular expression class body.
NAME_CHARACTERS = "a-zA-Z0-9._-"
#: Longest topic name, as in Kafka.
TOPIC_NAME_MAX = 249
#: Prefix of mqlog's internal topic names (refused unless ``internal=True``).
INTERNAL_PREFIX = "__"
#: The kinds of name and their maximum lengths (see the module's table).
NAME_MAX = {"topic": TOPIC_NAME_MAX, "group": TOPIC_NAME_MAX, "client id": 229}

_NAME = re.compile(f"[{NAME_CHARACTERS}]+\\Z")
#: How messages call a name of each kind.
_LABEL = {"topic": "topic name", "group": "group name", "client id": "client id"}


def validate_name(kind: str, name: object, *, internal: bool = False) -> str:
    """Return ``name`` if it is a valid name of ``kind`` ("topic", "group" or
    "client id"); else raise InvalidTopicError (topics) or ConfigError (others).

    ``internal=True`` admits topic names starting ``__`` (mqlog's own topics);
    it is only meaningful for topics. Raises ValueError for an unknown kind (a bug).
    """
    if kind not in NAME_MAX:
        raise ValueError(f"unknown kind of name {kind!r}")
    error = InvalidTopicError if kind == "topic" else ConfigError
    label = _LABEL[kind]
    if not isinstance(name, str):
        raise error(f"{label} must be a str, not {type(name).__name__}")
    if not name:
        raise error(f"{label} is empty")
    if len(name) > NAME_MAX[kind]:
        raise error(f"{label} is {len(name)} characters long, the maximum is {NAME_MAX[kind]}")
    if name in (".", ".."):
        raise error(f"{label} cannot be {name!r}")
    if not _NAME.match(name):
        raise error(f"{label} {name!r} has characters outside [{NAME_CHARACTERS}]")
    if kind == "topic" and name.startswith(INTERNAL_PREFIX) and not internal:
        raise error(f"{label} {name!r} starts with {INTERNAL_PREFIX!r}, reserved for internal "
                    f"topics")
    return name
