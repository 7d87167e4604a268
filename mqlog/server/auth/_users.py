"""The users file of ``mqlog serve``: who may log in, as SCRAM-SHA-256 credentials.

The file is one JSON object, user name -> credentials (RFC 5802, section 3)::

    {
      "alice": {
        "salt": "<base64>",
        "iterations": 4096,
        "stored_key": "<base64 of 32 bytes>",
        "server_key": "<base64 of 32 bytes>"
      }
    }

``SaltedPassword = PBKDF2-HMAC-SHA256(password, salt, iterations)``,
``stored_key = SHA256(HMAC(SaltedPassword, "Client Key"))`` and ``server_key
= HMAC(SaltedPassword, "Server Key")``: what a SCRAM server needs, and enough
to check a PLAIN password (derive again and compare the stored key), while no
password is ever on disk. Passwords are taken as their UTF-8 bytes, without
SASLprep, as Kafka's own brokers and clients do.

Invariants:

- :func:`load_users` returns only valid credentials or raises
  :class:`~mqlog.errors.ConfigError` naming the file and the line or user at
  fault; it never returns part of a bad file.
- :func:`set_user` and :func:`remove_user` replace the file whole: a
  temporary file beside it, written, fsynced, renamed over it, then the
  directory fsynced; the file is always mode 0600. A reader sees
  the old file or the new one, never a mix, and bad input writes nothing.
  Writers serialise on an exclusive ``flock`` of the directory, so two
  concurrent edits do not lose one another.
- :class:`UserStore` answers for a user that does not exist exactly as for a
  wrong password: PLAIN runs the same key derivation on decoy credentials, and
  SCRAM hands out a decoy salt (stable per name within the process) so the
  exchange fails only at the proof.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import unicodedata
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mqlog.errors import ConfigError

log = logging.getLogger(__name__)

#: Iterations of PBKDF2 for a new user (Kafka's and RFC 7677's default).
DEFAULT_ITERATIONS = 4096
#: The fewest iterations RFC 7677 allows for SCRAM-SHA-256.
MIN_ITERATIONS = 4096
#: The most iterations accepted: each PLAIN login costs the server one derivation
#: (about a second at this count), and kafka-python refuses more.
MAX_ITERATIONS = 1_000_000
#: Bytes of random salt for a new user.
SALT_BYTES = 16
#: Bytes of a SHA-256 digest: the size of stored_key and server_key.
KEY_BYTES = 32
#: Longest user name, in characters.
NAME_CHARS_MAX = 255
#: Largest users file read (a bound, not an expected size: 100,000 users fit).
FILE_BYTES_MAX = 32 * 1024 * 1024

_FIELDS = ("salt", "iterations", "stored_key", "server_key")


@dataclasses.dataclass(frozen=True)
class Credentials:
    """One user's SCRAM-SHA-256 credentials (never the password itself)."""

    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    @classmethod
    def from_password(cls, password: str, iterations: int = DEFAULT_ITERATIONS,
                      salt: bytes | None = None) -> Credentials:
        """Credentials for ``password`` (a fresh random salt unless given)."""
        if not password:
            raise ConfigError("the password is empty")
        check_iterations(iterations)
        salt = os.urandom(SALT_BYTES) if salt is None else salt
        stored_key, server_key = _keys(password, salt, iterations)
        return cls(salt, iterations, stored_key, server_key)

    def matches(self, password: str) -> bool:
        """True when ``password`` derives these credentials (constant-time compare)."""
        stored_key, _server_key = _keys(password, self.salt, self.iterations)
        return hmac.compare_digest(stored_key, self.stored_key)

    def to_json(self) -> dict[str, Any]:
        """The credentials as they are written in the users file."""
        return {"salt": _b64(self.salt), "iterations": self.iterations,
                "stored_key": _b64(self.stored_key), "server_key": _b64(self.server_key)}


def _keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    """(stored_key, server_key) of RFC 5802 for SHA-256."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    return hashlib.sha256(client_key).digest(), hmac.digest(salted, b"Server Key", "sha256")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def check_iterations(iterations: int) -> None:
    """Raise ConfigError unless ``MIN_ITERATIONS <= iterations <= MAX_ITERATIONS``."""
    if isinstance(iterations, bool) or not isinstance(iterations, int):
        raise ConfigError(f"iterations must be an integer, not {iterations!r}")
    if not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
        raise ConfigError(f"iterations {iterations} is outside {MIN_ITERATIONS}.."
                          f"{MAX_ITERATIONS}")


def check_user_name(name: str) -> None:
    """Raise ConfigError unless ``name`` can be a user name: 1..255 characters, no
    whitespace or control characters, no ``,`` or ``=`` (SCRAM would have to
    escape them), and unchanged by Unicode NFKC normalisation (SASLprep)."""
    if not name:
        raise ConfigError("a user name cannot be empty")
    if len(name) > NAME_CHARS_MAX:
        raise ConfigError(f"user name of {len(name)} characters is longer than "
                          f"{NAME_CHARS_MAX}")
    bad = [char for char in name if char in ",=" or char.isspace()
           or unicodedata.category(char).startswith("C")]
    if bad:
        raise ConfigError(f"user name {name!r} has {bad[0]!r}: names cannot hold "
                          f"whitespace, control characters, ',' or '='")
    if unicodedata.normalize("NFKC", name) != name:
        raise ConfigError(f"user name {name!r} is not in Unicode NFKC form; use "
                          f"{unicodedata.normalize('NFKC', name)!r}")


def load_users(path: str | os.PathLike[str]) -> dict[str, Credentials]:
    """Every user of the users file at ``path``, validated; ConfigError otherwise
    (a missing file included)."""
    path = Path(path)
    try:
        with open(path, "rb") as file:
            data = file.read(FILE_BYTES_MAX + 1)
    except FileNotFoundError:
        raise ConfigError(f"users file {path} does not exist (create it with "
                          f"'mqlog users add NAME --file {path}')") from None
    except IsADirectoryError:
        raise ConfigError(f"users file {path} is a directory") from None
    if len(data) > FILE_BYTES_MAX:
        raise ConfigError(f"users file {path} is larger than {FILE_BYTES_MAX} bytes")
    return _parse_users(data, str(path))


def _parse_users(data: bytes, where: str) -> dict[str, Credentials]:
    """The users in ``data`` (the bytes of a users file named ``where`` in errors)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"users file {where}: not UTF-8 at byte {error.start}") from None
    try:
        document = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as error:
        raise ConfigError(f"users file {where}, line {error.lineno} column {error.colno}: "
                          f"{error.msg}") from None
    except _DuplicateKeyError as error:
        raise ConfigError(f"users file {where}, line {_line_of(text, error.key)}: "
                          f"{error.key!r} appears twice") from None
    if not isinstance(document, dict):
        raise ConfigError(f"users file {where}: expected a JSON object of user name -> "
                          f"credentials, found {type(document).__name__}")
    users = {}
    for name, entry in document.items():
        try:
            check_user_name(name)
            users[name] = _credentials_from_json(entry)
        except ConfigError as error:
            raise ConfigError(f"users file {where}, line {_line_of(text, name)}, user "
                              f"{name!r}: {error}") from None
    return users


class _DuplicateKeyError(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


def _line_of(text: str, key: str) -> int:
    """The line where ``key`` first appears as an object key in ``text`` (1 if not found)."""
    found = re.search(re.escape(json.dumps(key)) + r"\s*:", text)
    if found is None:  # written with escapes json.dumps does not use
        return 1
    return text.count("\n", 0, found.start()) + 1


def _credentials_from_json(entry: Any) -> Credentials:
    if not isinstance(entry, dict):
        raise ConfigError(f"expected an object with {', '.join(_FIELDS)}, found "
                          f"{type(entry).__name__}")
    missing = [field for field in _FIELDS if field not in entry]
    unknown = sorted(set(entry) - set(_FIELDS))
    if missing or unknown:
        raise ConfigError(f"missing {', '.join(missing)}" if missing
                          else f"unknown field {unknown[0]!r}")
    check_iterations(entry["iterations"])
    salt = _decode(entry, "salt")
    stored_key = _decode(entry, "stored_key")
    server_key = _decode(entry, "server_key")
    if not salt:
        raise ConfigError("salt is empty")
    for field, value in (("stored_key", stored_key), ("server_key", server_key)):
        if len(value) != KEY_BYTES:
            raise ConfigError(f"{field} has {len(value)} bytes, not {KEY_BYTES}")
    return Credentials(salt, entry["iterations"], stored_key, server_key)


def _decode(entry: Mapping[str, Any], field: str) -> bytes:
    value = entry[field]
    if not isinstance(value, str):
        raise ConfigError(f"{field} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{field} is not valid base64") from None


def set_user(path: str | os.PathLike[str], name: str, credentials: Credentials) -> bool:
    """Add user ``name`` to the users file at ``path`` (created when missing), or
    replace their credentials; True when the user existed."""
    check_user_name(name)
    path = Path(path)
    with _locked_directory(path):
        users = load_users(path) if path.exists() else {}
        existed = name in users
        users[name] = credentials
        _replace(path, users)
    return existed


def remove_user(path: str | os.PathLike[str], name: str) -> bool:
    """Remove user ``name`` from the users file at ``path``; False (and nothing
    written) when there is no such user."""
    path = Path(path)
    with _locked_directory(path):
        users = load_users(path)
        if name not in users:
            return False
        del users[name]
        _replace(path, users)
    return True


@contextlib.contextmanager
def _locked_directory(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on the directory of ``path`` (writers serialise)."""
    directory = path.parent
    try:
        descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        raise ConfigError(f"the directory of users file {path} does not exist") from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def _replace(path: Path, users: Mapping[str, Credentials]) -> None:
    """Write ``users`` to a temporary file beside ``path`` and rename it over it."""
    if path.is_dir():
        raise ConfigError(f"users file {path} is a directory")
    text = json.dumps({name: users[name].to_json() for name in sorted(users)}, indent=2)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW,
                         0o600)
    try:
        try:
            os.fchmod(descriptor, 0o600)  # whatever the umask or a leftover said
            os.write(descriptor, (text + "\n").encode("utf-8"))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    except OSError as error:  # some file systems cannot sync a directory
        if error.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(directory)


class UserStore:
    """The users a server checks logins against: the users file at ``path``,
    read again when it changes (``mqlog users add`` takes effect for the next
    login, without a restart).

    Reading happens at construction (ConfigError if the file is bad or missing,
    so a server does not start without its users) and then whenever the file's
    identity, size or modification time differ from the last read. A file
    that turns bad later is logged and the users last read are kept.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._signature = self._stat()
        self._users = load_users(self.path)
        self._secret = os.urandom(KEY_BYTES)

    def _stat(self) -> tuple[int, int, int, int] | None:
        try:
            status = os.stat(self.path)
        except OSError:
            return None
        return status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns

    def _refresh(self) -> None:
        signature = self._stat()
        if signature == self._signature:
            return
        self._signature = signature
        try:
            self._users = load_users(self.path)
        except ConfigError as error:
            log.warning("keeping the users read before: %s", error)

    def names(self) -> list[str]:
        """The user names, sorted."""
        self._refresh()
        return sorted(self._users)

    def credentials(self, name: str) -> Credentials | None:
        """The credentials of user ``name``, None when there is no such user."""
        self._refresh()
        return self._users.get(name)

    def scram_credentials(self, name: str) -> Credentials:
        """The credentials a SCRAM exchange for ``name`` runs with: the user's, or
        decoys (same salt each time for a name, keys nobody can match) when there
        is no such user, so the exchange fails only at the proof, as for a
        wrong password."""
        found = self.credentials(name)
        if found is not None:
            return found
        return self._decoy(name)

    def _decoy(self, name: str) -> Credentials:
        def derive(label: bytes) -> bytes:
            return hmac.digest(self._secret, label + b"\0" + name.encode("utf-8"), "sha256")

        return Credentials(derive(b"salt")[:SALT_BYTES], DEFAULT_ITERATIONS,
                           derive(b"stored_key"), derive(b"server_key"))

    def check_password(self, name: str, password: str) -> bool:
        """True when user ``name`` exists and ``password`` is theirs. Takes as long
        for a user that does not exist (one key derivation either way)."""
        found = self.credentials(name)
        candidate = found if found is not None else self._decoy(name)
        return candidate.matches(password) and found is not None
