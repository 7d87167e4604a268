"""mqlog.names: one rule set for topic, group and client-id names, used by every door."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mqlog
from mqlog.consumer._config import ConsumerConfig
from mqlog.errors import ConfigError, InvalidTopicError
from mqlog.names import INTERNAL_PREFIX, NAME_MAX, validate_name

KINDS = tuple(NAME_MAX)
ALLOWED = string.ascii_letters + string.digits + "._-"
#: Names of the allowed characters short enough for every kind.
VALID = st.text(alphabet=ALLOWED, min_size=1, max_size=min(NAME_MAX.values())).filter(
    lambda name: name not in (".", "..") and not name.startswith(INTERNAL_PREFIX))
OUTSIDE = st.characters(blacklist_characters=ALLOWED)


def refused(kind: str) -> type[Exception]:
    return InvalidTopicError if kind == "topic" else ConfigError


@given(VALID)
def test_a_name_valid_for_one_kind_is_valid_for_every_kind(name: str) -> None:
    assert [validate_name(kind, name) for kind in KINDS] == [name] * len(KINDS)


@given(VALID, st.integers(min_value=0, max_value=300), OUTSIDE)
def test_one_character_outside_the_set_is_refused_for_every_kind(
    name: str, at: int, bad: str
) -> None:
    spoiled = name[:at] + bad + name[at:]
    for kind in KINDS:
        with pytest.raises(refused(kind), match="has characters outside"):
            validate_name(kind, spoiled)


@pytest.mark.parametrize("kind", KINDS)
def test_lengths(kind: str) -> None:
    longest = "a" * NAME_MAX[kind]
    assert validate_name(kind, longest) == longest
    with pytest.raises(refused(kind), match=f"characters long, the maximum is {NAME_MAX[kind]}"):
        validate_name(kind, longest + "a")
    with pytest.raises(refused(kind), match="is empty"):
        validate_name(kind, "")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", [".", ".."])
def test_dot_names_are_refused(kind: str, name: str) -> None:
    with pytest.raises(refused(kind), match="cannot be"):
        validate_name(kind, name)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", [7, None, b"x", ["x"]])
def test_other_types_are_refused(kind: str, name: object) -> None:
    with pytest.raises(refused(kind), match=f"must be a str, not {type(name).__name__}"):
        validate_name(kind, name)


def test_the_internal_prefix_is_reserved_for_internal_topics_only() -> None:
    with pytest.raises(InvalidTopicError, match="reserved for internal topics"):
        validate_name("topic", "__x")
    assert validate_name("topic", "__x", internal=True) == "__x"
    assert validate_name("group", "__x") == validate_name("client id", "__x") == "__x"


def test_staging_prefixes_of_the_layout_are_never_names() -> None:
    for kind in KINDS:
        for name in ("~creating-x", "~deleting-x"):
            with pytest.raises(refused(kind)):
                validate_name(kind, name)


def test_an_unknown_kind_is_a_bug() -> None:
    with pytest.raises(ValueError, match="unknown kind of name 'member'"):
        validate_name("member", "x")


# -- every door uses the rules ---------------------------------------------------------------


GROUP_NAMES = ["ok", "a" * 249, "__g", "a.b-c_d", "", ".", "..", "a/b", "a b", "é", "a" * 250, 7]


@pytest.mark.parametrize("group", GROUP_NAMES)
def test_consumer_and_queue_groups_accept_and_refuse_the_same_names(
    tmp_path, group: object
) -> None:
    outcomes = []
    for kind in ("consumer", "queue"):  # one log each: a group name is of one kind
        with mqlog.open(tmp_path / kind) as log:
            log.create_topic("t")
            try:
                getattr(log, kind)(group, ["t"]).close()
            except ConfigError as error:
                outcomes.append(str(error))
            else:
                outcomes.append("accepted")
    assert outcomes[0] == outcomes[1]
    assert (outcomes[0] == "accepted") == _valid("group", group)


def _valid(kind: str, name: object) -> bool:
    try:
        validate_name(kind, name)
    except ConfigError:
        return False
    return True


@pytest.mark.parametrize(("client_id", "message"), [
    ("a/b", "client id 'a/b' has characters outside [a-zA-Z0-9._-]"),
    ("../../x", "client id '../../x' has characters outside [a-zA-Z0-9._-]"),
    ("a" * 230, "client id is 230 characters long, the maximum is 229"),
])
def test_a_bad_client_id_is_refused(client_id: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        ConsumerConfig(client_id=client_id)


def test_the_longest_client_id_joins_a_group(tmp_path) -> None:
    with mqlog.open(tmp_path / "log") as log:
        log.create_topic("t")
        with log.consumer("g", ["t"], client_id="c" * NAME_MAX["client id"]) as consumer:
            consumer.poll(timeout=0)
            assert [m.client_id for m in log.describe_group("g").members] == [
                "c" * NAME_MAX["client id"]]
