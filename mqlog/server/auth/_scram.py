"""The server side of one SASL SCRAM-SHA-256 exchange (RFC 5802, RFC 7677),
from stored keys: the server never sees or keeps a password.

Two rounds::

    client-first  "n,,n=alice,r=<client nonce>"
    server-first  "r=<client nonce><server nonce>,s=<salt>,i=<iterations>"
    client-final  "c=biws,r=<nonce>,p=<proof>"
    server-final  "v=<server signature>"

The server checks ``H(proof XOR HMAC(stored_key, AuthMessage)) == stored_key``
(constant-time) and answers ``HMAC(server_key, AuthMessage)``, where
AuthMessage is client-first-bare, server-first and client-final without its
proof, as received, joined by commas.

One deliberate leniency, Kafka's own (``ScramSaslServer``): the nonce of the
client-final message must *end with* the nonce of server-first rather than
equal it. librdkafka before its fix (2.0.2 is still what Debian's kcat
links) repeats the client nonce in front there; the proof covers the message
as sent, so nothing is weakened that the proof does not still check. This is
why the exchange is written here rather than taken from ``scramp``, whose
server insists on equality (as the RFC says) and so refuses those clients.

Not supported, and refused as a malformed message: channel binding (the
``-PLUS`` mechanisms, gs2 flag ``p``), an authorization id other than the
user name, and mandatory extensions (``m=``). Optional extensions (Kafka's
``tokenauth``) are ignored: delegation tokens are not users here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable

from mqlog.server.auth._users import Credentials

#: Bytes of randomness in the server's part of the nonce.
SERVER_NONCE_BYTES = 24

_ESCAPE = re.compile("=(2C|3D)")
_BARE_EQUALS = re.compile("=(?!2C|3D)")


class ScramError(ValueError):
    """A SCRAM message that is malformed, out of order or refuses the login;
    the message says which, never whether the user exists."""


class ScramExchange:
    """One exchange: :meth:`first` then :meth:`final`, each once, in order.

    ``credentials_of(name)`` returns the credentials to run with: the user's,
    or decoys for an unknown name (see ``UserStore.scram_credentials``) so
    that the exchange fails only at the proof.
    """

    def __init__(self, credentials_of: Callable[[str], Credentials]) -> None:
        self._credentials_of = credentials_of
        self._credentials: Credentials | None = None
        self._client_first_bare = ""
        self._server_first = ""
        self._nonce = ""
        self._gs2_header = ""
        self.user: str | None = None
        self._finished = False

    def first(self, client_first: bytes) -> bytes:
        """The server-first message answering ``client_first``."""
        if self.user is not None:
            raise ScramError("a second client-first message")
        text = _text(client_first, "client-first")
        flag, separator, rest = text.partition(",")
        authzid, separator2, bare = rest.partition(",")
        if not separator or not separator2 or flag not in ("n", "y"):
            if flag.startswith("p"):
                raise ScramError("channel binding is not supported")
            raise ScramError("client-first must start with a gs2 header such as 'n,,'")
        attributes = bare.split(",")
        if len(attributes) < 2 or not attributes[0].startswith("n=") \
                or not attributes[1].startswith("r="):
            raise ScramError("client-first must carry n= (user) then r= (nonce)")
        user = _unescape_name(attributes[0][2:])
        if authzid and authzid != f"a={attributes[0][2:]}":
            raise ScramError("an authorization id other than the user name")
        client_nonce = attributes[1][2:]
        if not client_nonce or not all(0x21 <= ord(char) <= 0x7E for char in client_nonce):
            raise ScramError("the client nonce must be printable ASCII")
        credentials = self._credentials_of(user)
        self._nonce = client_nonce + secrets.token_urlsafe(SERVER_NONCE_BYTES)
        self._server_first = (f"r={self._nonce},s={_b64(credentials.salt)},"
                              f"i={credentials.iterations}")
        self._client_first_bare = bare
        self._gs2_header = f"{flag},{authzid},"
        self._credentials = credentials
        self.user = user
        return self._server_first.encode("ascii")

    def final(self, client_final: bytes) -> bytes:
        """The server-final message if ``client_final`` proves the password;
        ScramError otherwise."""
        credentials = self._credentials
        if credentials is None or self._finished:
            raise ScramError("client-final out of order")
        self._finished = True
        text = _text(client_final, "client-final")
        without_proof, separator, proof_text = text.rpartition(",p=")
        attributes = without_proof.split(",")
        if not separator or len(attributes) < 2 or not attributes[0].startswith("c=") \
                or not attributes[1].startswith("r="):
            raise ScramError("client-final must be c=..., r=..., p=...")
        binding = base64.b64encode(self._gs2_header.encode("utf-8")).decode("ascii")
        if attributes[0][2:] != binding:
            raise ScramError("the channel binding does not match the gs2 header")
        if not attributes[1][2:].endswith(self._nonce):  # Kafka's rule: see the docstring
            raise ScramError("the nonce does not match")
        try:
            proof = base64.b64decode(proof_text, validate=True)
        except (binascii.Error, ValueError):
            raise ScramError("the proof is not base64") from None
        auth_message = ",".join((self._client_first_bare, self._server_first,
                                 without_proof)).encode("utf-8")
        signature = hmac.digest(credentials.stored_key, auth_message, "sha256")
        if len(proof) != len(signature):
            raise ScramError("invalid user name or password")
        client_key = bytes(a ^ b for a, b in zip(proof, signature))
        if not hmac.compare_digest(hashlib.sha256(client_key).digest(), credentials.stored_key):
            raise ScramError("invalid user name or password")
        server_signature = hmac.digest(credentials.server_key, auth_message, "sha256")
        return f"v={_b64(server_signature)}".encode("ascii")


def _text(message: bytes, what: str) -> str:
    try:
        return message.decode("utf-8")
    except UnicodeDecodeError:
        raise ScramError(f"the {what} message is not UTF-8") from None


def _unescape_name(saslname: str) -> str:
    """RFC 5802's saslname: ``,`` and ``=`` are sent as ``=2C`` and ``=3D``."""
    if _BARE_EQUALS.search(saslname):
        raise ScramError("the user name has a bare '='")
    name = _ESCAPE.sub(lambda match: "," if match.group(1) == "2C" else "=", saslname)
    if not name:
        raise ScramError("the user name is empty")
    return name


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
