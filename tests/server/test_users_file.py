"""The users file of mqlog serve: format, validation, atomic edits, the UserStore."""

from __future__ import annotations

import base64
import json
import os
import stat
import threading
from pathlib import Path

import pytest

from mqlog.errors import ConfigError
from mqlog.server.auth import (
    DEFAULT_ITERATIONS,
    Credentials,
    ScramExchange,
    UserStore,
    _scram,
    _users,
    check_user_name,
    load_users,
    remove_user,
    set_user,
)


@pytest.fixture(scope="module")
def alice() -> Credentials:
    return Credentials.from_password("wonderland")


def test_rfc7677_test_vector(monkeypatch: pytest.MonkeyPatch) -> None:
    """RFC 7677 section 3: user "user", password "pencil", salt
    W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations: the exchange it prints, byte for
    byte, from credentials made here."""
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    credentials = Credentials.from_password("pencil", 4096, salt)
    monkeypatch.setattr(_scram.secrets, "token_urlsafe",
                        lambda _size: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")
    exchange = ScramExchange(lambda _name: credentials)
    assert exchange.first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO") == (
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
    assert exchange.final(
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=") == (
        b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
    assert exchange.user == "user"


def test_a_password_matches_its_credentials_only(alice: Credentials) -> None:
    assert alice.matches("wonderland")
    assert not alice.matches("Wonderland")
    assert not alice.matches("")


def test_round_trip_and_mode_0600(tmp_path: Path, alice: Credentials) -> None:
    path = tmp_path / "users.json"
    bob = Credentials.from_password("builder", iterations=5000)
    assert set_user(path, "alice", alice) is False
    assert set_user(path, "bob", bob) is False
    assert load_users(path) == {"alice": alice, "bob": bob}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "wonderland" not in path.read_text()
    document = json.loads(path.read_text())
    assert document["bob"]["iterations"] == 5000
    assert set(document["bob"]) == {"salt", "iterations", "stored_key", "server_key"}


def test_replace_and_remove(tmp_path: Path, alice: Credentials) -> None:
    path = tmp_path / "users.json"
    set_user(path, "alice", alice)
    other = Credentials.from_password("looking-glass")
    assert set_user(path, "alice", other) is True
    assert load_users(path) == {"alice": other}
    assert remove_user(path, "nobody") is False
    assert remove_user(path, "alice") is True
    assert load_users(path) == {}


def test_mode_stays_0600_whatever_the_umask(tmp_path: Path, alice: Credentials) -> None:
    path = tmp_path / "users.json"
    path.write_text("{}")
    path.chmod(0o644)
    old = os.umask(0)
    try:
        set_user(path, "alice", alice)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
        tmp_path: Path, alice: Credentials, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "users.json"
    set_user(path, "alice", alice)
    before = path.read_bytes()

    def broken_fsync(_descriptor: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(_users.os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        set_user(path, "bob", Credentials.from_password("builder"))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["users.json"]


def test_the_file_is_replaced_by_rename(tmp_path: Path, alice: Credentials) -> None:
    """A reader holding the old file keeps reading the old, whole content."""
    path = tmp_path / "users.json"
    set_user(path, "alice", alice)
    with open(path) as old:
        set_user(path, "bob", Credentials.from_password("builder"))
        assert list(json.load(old)) == ["alice"]
    assert list(load_users(path)) == ["alice", "bob"]


@pytest.mark.parametrize(("text", "complaint"), [
    ("{", "line 1 column 2"),
    ("[]", "expected a JSON object"),
    ('{\n "alice": 3\n}', "line 2, user 'alice': expected an object"),
    ('{"a": {"salt": "AA==", "iterations": 4096, "stored_key": "x"}}', "missing server_key"),
    ('{"a": {"salt": "AA==", "iterations": 100, "stored_key": "", "server_key": ""}}',
     "iterations 100 is outside"),
    ('{"a": {"salt": "AA==", "iterations": true, "stored_key": "", "server_key": ""}}',
     "iterations must be an integer"),
    ('{"a": {"salt": "!!", "iterations": 4096, "stored_key": "", "server_key": ""}}',
     "salt is not valid base64"),
    ('{"a": {"salt": "", "iterations": 4096, "stored_key": "", "server_key": ""}}',
     "salt is empty"),
    ('{"a": {"salt": "AA==", "iterations": 4096, "stored_key": "AA==", "server_key": ""}}',
     "stored_key has 1 bytes, not 32"),
    ('{"a": {"salt": "AA==", "iterations": 4096, "stored_key": "", "server_key": "",'
     ' "password": "x"}}', "unknown field 'password'"),
    ('{"a b": {}}', "user 'a b'"),
    ('{"a": {},\n"a": {}}', "line 1: 'a' appears twice"),
])
def test_a_bad_file_is_a_config_error_naming_where(tmp_path: Path, text: str,
                                                   complaint: str) -> None:
    path = tmp_path / "users.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match="users file") as caught:
        load_users(path)
    assert complaint in str(caught.value)
    assert str(path) in str(caught.value)


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_users(tmp_path / "nope.json")
    with pytest.raises(ConfigError, match="does not exist"):
        remove_user(tmp_path / "nope.json", "alice")
    assert list(tmp_path.iterdir()) == []


def test_bad_input_writes_nothing(tmp_path: Path, alice: Credentials) -> None:
    path = tmp_path / "users.json"
    path.write_text("{broken")
    with pytest.raises(ConfigError):
        set_user(path, "alice", alice)
    assert path.read_text() == "{broken"
    with pytest.raises(ConfigError, match="whitespace"):
        set_user(tmp_path / "new.json", "a b", alice)
    assert not (tmp_path / "new.json").exists()


@pytest.mark.parametrize("name", ["", "a,b", "a=b", "tab\there", "x" * 256, "\u212b"])
def test_bad_user_names(name: str) -> None:
    with pytest.raises(ConfigError):
        check_user_name(name)


@pytest.mark.parametrize("name", ["alice", "svc.orders-1", "ops@example.com", "zoë"])
def test_good_user_names(name: str) -> None:
    check_user_name(name)


def test_bad_iterations_and_empty_password() -> None:
    with pytest.raises(ConfigError, match="outside"):
        Credentials.from_password("x", iterations=4095)
    with pytest.raises(ConfigError, match="empty"):
        Credentials.from_password("")


def test_user_store_reads_the_file_again_when_it_changes(tmp_path: Path,
                                                        alice: Credentials) -> None:
    path = tmp_path / "users.json"
    set_user(path, "alice", alice)
    store = UserStore(path)
    assert store.check_password("alice", "wonderland")
    assert store.names() == ["alice"]
    set_user(path, "bob", Credentials.from_password("builder"))
    assert store.check_password("bob", "builder")
    remove_user(path, "alice")
    assert not store.check_password("alice", "wonderland")


def test_user_store_keeps_the_users_read_before_when_the_file_turns_bad(
        tmp_path: Path, alice: Credentials, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "users.json"
    set_user(path, "alice", alice)
    store = UserStore(path)
    path.write_text("{ not json at all")
    assert store.check_password("alice", "wonderland")
    assert "keeping the users read before" in caplog.text


def test_user_store_refuses_to_start_on_a_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    path.write_text("[]")
    with pytest.raises(ConfigError):
        UserStore(path)
    with pytest.raises(ConfigError):
        UserStore(tmp_path / "missing.json")


def test_unknown_users_get_stable_decoys(tmp_path: Path, alice: Credentials) -> None:
    path = tmp_path / "users.json"
    set_user(path, "alice", alice)
    store = UserStore(path)
    decoy = store.scram_credentials("mallory")
    assert decoy == store.scram_credentials("mallory")
    assert decoy.iterations == DEFAULT_ITERATIONS
    assert len(decoy.salt) == len(alice.salt)
    assert decoy.salt != store.scram_credentials("trudy").salt
    assert store.scram_credentials("alice") == alice
    assert not store.check_password("mallory", "")
    assert not store.check_password("mallory", "wonderland")


def test_concurrent_edits_lose_nothing(tmp_path: Path) -> None:
    """Writers serialise on the directory lock: every user added at once stays."""
    path = tmp_path / "users.json"
    credentials = Credentials.from_password("same for all")
    names = [f"user{number}" for number in range(12)]
    start = threading.Barrier(len(names))

    def add(name: str) -> None:
        start.wait()
        set_user(path, name, credentials)

    threads = [threading.Thread(target=add, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(load_users(path)) == sorted(names)
