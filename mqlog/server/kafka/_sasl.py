"""SASL authentication of one Kafka connection: SaslHandshake (API key 17) and
SaslAuthenticate (API key 36), mechanisms PLAIN and SCRAM-SHA-256.

How the runtime uses it, on a server that authenticates (``--users``):

1. :func:`register` puts the two APIs in the server's API table (so
   ApiVersions advertises :data:`API_VERSIONS` for them; a server without
   users never registers them, and never advertises them).
2. Each connection makes ``session = SaslSession(users)`` (``users``: the
   server's one :class:`~mqlog.server.auth.UserStore`) when it is accepted
   and sets it in :data:`SESSION`, a context variable its handler tasks
   inherit; the registered handlers (:func:`sasl_handshake`,
   :func:`sasl_authenticate`) find it there.
3. Before ``session.authenticated``, the connection answers only the requests
   for which :func:`allowed_before_auth` is true (ApiVersions, SaslHandshake,
   SaslAuthenticate); any other request closes the connection, unanswered,
   as a Kafka broker does. Once ``session.failed`` (a failed login, an
   unknown mechanism, a step out of order) it sends that response, then
   closes the connection.

The exchange: SaslHandshake names a mechanism; an enabled one is chosen,
any other gets UNSUPPORTED_SASL_MECHANISM with the enabled list. Then
SaslAuthenticate carries PLAIN's single message (``authzid NUL user NUL
password``) or SCRAM's two rounds (client-first -> server-first,
client-final -> server-final). A wrong password and an unknown user get the
same SASL_AUTHENTICATION_FAILED and the same message, after the same work
(see ``UserStore``). Re-authentication (KIP-368) is not offered: the
session lifetime is 0, so a client never re-authenticates and a second
handshake on an authenticated connection is ILLEGAL_SASL_STATE.

SaslHandshake v0 (auth bytes sent afterwards as bare frames without a Kafka
header, for brokers older than 1.0) is not supported: a v0 handshake is
answered UNSUPPORTED_VERSION and fails. Every client that asks for
ApiVersions first (librdkafka, kafka-python 3, aiokafka, kafkajs) picks v1
and SaslAuthenticate when both are advertised. :data:`API_VERSIONS` still
lists SaslHandshake from v0: older librdkafka releases (2.0.2, which
Debian's kcat links, among them) decide that a broker "does not support
SASL handshake" unless v0 is in the advertised range.

The SCRAM server side is :class:`~mqlog.server.auth.ScramExchange`, run
from the stored keys of the users file: it never needs a password.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import logging

from kio.schema.errors import ErrorCode

from mqlog.server.auth import ScramError, ScramExchange, UserStore
from mqlog.server.kafka._apis import ApiTable
from mqlog.server.kafka._codec import Entity, Request, build, response_type
from mqlog.server.kafka._context import ServerState

log = logging.getLogger(__name__)

API_VERSIONS_KEY = 18
SASL_HANDSHAKE_KEY = 17
SASL_AUTHENTICATE_KEY = 36

#: The versions of the SASL APIs this server answers, for ApiVersions: key ->
#: (min, max).
API_VERSIONS: dict[int, tuple[int, int]] = {
    SASL_HANDSHAKE_KEY: (0, 1),
    SASL_AUTHENTICATE_KEY: (0, 2),
}
#: The mechanisms offered, in the order the handshake lists them.
MECHANISMS: tuple[str, ...] = ("PLAIN", "SCRAM-SHA-256")
#: Largest SaslAuthenticate payload accepted (PLAIN and SCRAM messages are
#: a few hundred bytes).
AUTH_BYTES_MAX = 16 * 1024


def allowed_before_auth(api_key: int) -> bool:
    """True for the requests a connection may send before it has authenticated:
    ApiVersions, SaslHandshake and SaslAuthenticate."""
    return api_key in (API_VERSIONS_KEY, SASL_HANDSHAKE_KEY, SASL_AUTHENTICATE_KEY)


class _Stage(enum.Enum):
    START = "start"  # waiting for SaslHandshake
    CHOSEN = "chosen"  # mechanism chosen, waiting for the first SaslAuthenticate
    SCRAM_FINAL = "scram final"  # server-first sent, waiting for client-final
    DONE = "done"  # authenticated
    FAILED = "failed"  # the connection is to be closed


class SaslSession:
    """The SASL state of one connection: start -> mechanism chosen -> (SCRAM:
    server-first sent ->) authenticated; any error moves it to failed, for good.

    Not thread-safe: one connection's requests are handled one at a time.
    """

    def __init__(self, users: UserStore, mechanisms: tuple[str, ...] = MECHANISMS) -> None:
        unknown = set(mechanisms) - set(MECHANISMS)
        assert not unknown, f"no such mechanisms: {sorted(unknown)}"
        self._users = users
        self._mechanisms = list(mechanisms)
        self._stage = _Stage.START
        self._mechanism: str | None = None
        self._scram: ScramExchange | None = None
        self._principal: str | None = None

    @property
    def authenticated(self) -> bool:
        """True once a login succeeded: every request is allowed from then on."""
        return self._stage is _Stage.DONE

    @property
    def failed(self) -> bool:
        """True after an error: the runtime sends the response, then closes."""
        return self._stage is _Stage.FAILED

    @property
    def principal(self) -> str | None:
        """The user name that logged in (None before)."""
        return self._principal

    @property
    def mechanism(self) -> str | None:
        """The mechanism the handshake chose (None before)."""
        return self._mechanism

    def handshake(self, mechanism: str, version: int = 1) -> tuple[ErrorCode, list[str]]:
        """SaslHandshake in ``version``: (error code, the enabled mechanisms).
        Version 0 is refused (see the module docstring)."""
        enabled = list(self._mechanisms)
        if version == 0:
            return self._fail(ErrorCode.unsupported_version), enabled
        if self._stage is not _Stage.START:
            return self._fail(ErrorCode.illegal_sasl_state), enabled
        if mechanism not in self._mechanisms:
            log.info("SASL handshake refused: mechanism %r is not enabled", mechanism)
            return self._fail(ErrorCode.unsupported_sasl_mechanism), enabled
        self._mechanism = mechanism
        self._stage = _Stage.CHOSEN
        return ErrorCode.none, enabled

    def authenticate(self, auth_bytes: bytes) -> tuple[ErrorCode, str | None, bytes, bool]:
        """SaslAuthenticate: (error code, error message or None, bytes for the
        client, True when the exchange is over). PLAIN costs one key derivation
        (PBKDF2): call it off the event loop."""
        if self._stage not in (_Stage.CHOSEN, _Stage.SCRAM_FINAL):
            return (self._fail(ErrorCode.illegal_sasl_state),
                    f"SaslAuthenticate not expected now (stage: {self._stage.value})",
                    b"", True)
        if len(auth_bytes) > AUTH_BYTES_MAX:
            return self._refuse(f"SASL message of {len(auth_bytes)} bytes is over "
                                f"{AUTH_BYTES_MAX}")
        if self._mechanism == "PLAIN":
            return self._plain(auth_bytes)
        if self._stage is _Stage.CHOSEN:
            return self._scram_first(auth_bytes)
        return self._scram_final(auth_bytes)

    def _fail(self, code: ErrorCode) -> ErrorCode:
        self._stage = _Stage.FAILED
        self._scram = None
        return code

    def _refuse(self, reason: str | None = None) -> tuple[ErrorCode, str, bytes, bool]:
        """Authentication failed; ``reason`` only for a malformed message (never
        for anything that depends on whether the user exists)."""
        message = (f"Authentication failed: {reason}" if reason else
                   f"Authentication failed: invalid user name or password "
                   f"(SASL mechanism {self._mechanism})")
        log.info("SASL login refused: %s", message)
        return self._fail(ErrorCode.sasl_authentication_failed), message, b"", True

    def _succeed(self, user: str, server_bytes: bytes) -> tuple[ErrorCode, None, bytes, bool]:
        self._stage = _Stage.DONE
        self._principal = user
        self._scram = None
        log.info("authenticated %r with %s", user, self._mechanism)
        return ErrorCode.none, None, server_bytes, True

    def _plain(self, auth_bytes: bytes) -> tuple[ErrorCode, str | None, bytes, bool]:
        parts = auth_bytes.split(b"\0")
        if len(parts) != 3:
            return self._refuse("a PLAIN message is authzid NUL user NUL password")
        try:
            authzid, user, password = (part.decode("utf-8") for part in parts)
        except UnicodeDecodeError:
            return self._refuse("the PLAIN message is not UTF-8")
        if not user or not password:
            return self._refuse("empty user name or password")
        if authzid and authzid != user:
            return self._refuse("an authorization id other than the user name")
        if not self._users.check_password(user, password):
            return self._refuse()
        return self._succeed(user, b"")

    def _scram_first(self, auth_bytes: bytes) -> tuple[ErrorCode, str | None, bytes, bool]:
        exchange = ScramExchange(self._users.scram_credentials)
        try:
            server_first = exchange.first(auth_bytes)
        except ScramError as error:  # malformed: says nothing about the user
            return self._refuse(f"bad SCRAM client-first message: {error}")
        self._scram = exchange
        self._stage = _Stage.SCRAM_FINAL
        return ErrorCode.none, None, server_first, False

    def _scram_final(self, auth_bytes: bytes) -> tuple[ErrorCode, str | None, bytes, bool]:
        exchange = self._scram
        assert exchange is not None and exchange.user is not None, "final without first"
        try:
            server_final = exchange.final(auth_bytes)
        except ScramError:
            # A bad proof and a malformed final message alike: the proof check is
            # where an unknown user fails too, so say nothing more.
            return self._refuse()
        if self._users.credentials(exchange.user) is None:  # decoys cannot match; be sure
            return self._refuse()
        return self._succeed(exchange.user, server_final)


async def handle_sasl_handshake(server: ServerState, request: Request,
                                session: SaslSession) -> Entity:
    """SaslHandshake v0-v1 (v0 is refused: see the module docstring)."""
    code, mechanisms = session.handshake(request.body.mechanism, request.api_version)
    return build(response_type(request.api_key, request.api_version), error_code=code,
                 mechanisms=tuple(mechanisms))


async def handle_sasl_authenticate(server: ServerState, request: Request,
                                   session: SaslSession) -> Entity:
    """SaslAuthenticate v0-v2; the key derivation of PLAIN runs in a thread."""
    code, message, server_bytes, _done = await asyncio.to_thread(
        session.authenticate, bytes(request.body.auth_bytes))
    return build(response_type(request.api_key, request.api_version), error_code=code,
                 error_message=message, auth_bytes=server_bytes)


#: The SASL session of the connection whose request is being handled (None on
#: a connection that needs no login): set by the connection, inherited by the
#: tasks it starts.
SESSION: contextvars.ContextVar[SaslSession | None] = contextvars.ContextVar(
    "mqlog_kafka_sasl_session", default=None)


def _session() -> SaslSession:
    session = SESSION.get()
    assert session is not None, "a SASL request on a connection without a session"
    return session


async def sasl_handshake(server: ServerState, request: Request) -> Entity:
    """SaslHandshake with this connection's session (:data:`SESSION`)."""
    return await handle_sasl_handshake(server, request, _session())


async def sasl_authenticate(server: ServerState, request: Request) -> Entity:
    """SaslAuthenticate with this connection's session (:data:`SESSION`)."""
    return await handle_sasl_authenticate(server, request, _session())


def register(table: ApiTable) -> None:
    """Serve SaslHandshake and SaslAuthenticate from ``table`` (each runs alone,
    in request order, like any API that changes its connection's state)."""
    for key, handler in ((SASL_HANDSHAKE_KEY, sasl_handshake),
                         (SASL_AUTHENTICATE_KEY, sasl_authenticate)):
        low, high = API_VERSIONS[key]
        table.register(key, low, high, handler)
