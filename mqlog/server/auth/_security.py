"""The security options of a server in one value: who may log in (a users
file) and over what (a TLS context), from ``--users``, ``--tls-cert``,
``--tls-key`` and ``--tls-client-ca``.

Invariant: :meth:`ServerSecurity.from_options` either returns a complete
setting (the users file read and valid, the TLS context built) or raises
:class:`~mqlog.errors.ConfigError` naming the option at fault, before the
server listens.
"""

from __future__ import annotations

import dataclasses
import os
import ssl

from mqlog.errors import ConfigError
from mqlog.server.auth._tls import server_ssl_context
from mqlog.server.auth._users import UserStore

PathLike = str | os.PathLike[str]


@dataclasses.dataclass(frozen=True)
class ServerSecurity:
    """``users``: logins are required (SASL) when set; ``ssl_context``: the
    listener speaks TLS when set; ``client_certificates``: TLS clients must
    present a certificate signed by the ``--tls-client-ca``."""

    users: UserStore | None = None
    ssl_context: ssl.SSLContext | None = None
    client_certificates: bool = False

    @classmethod
    def from_options(cls, users: PathLike | None = None, tls_cert: PathLike | None = None,
                     tls_key: PathLike | None = None,
                     tls_client_ca: PathLike | None = None) -> ServerSecurity:
        """Read and check the options (all optional; the TLS ones go together)."""
        if (tls_cert is None) != (tls_key is None):
            raise ConfigError("--tls-cert and --tls-key go together: give both or neither")
        if tls_client_ca is not None and tls_cert is None:
            raise ConfigError("--tls-client-ca needs --tls-cert and --tls-key")
        context = None
        if tls_cert is not None and tls_key is not None:
            context = server_ssl_context(tls_cert, tls_key, tls_client_ca)
        store = UserStore(users) if users is not None else None
        return cls(store, context, tls_client_ca is not None)

    @property
    def authenticates(self) -> bool:
        """True when every client proves who it is (a SASL login or a client
        certificate): what a non-loopback address needs without ``--insecure``."""
        return self.users is not None or self.client_certificates

    @property
    def kafka_security_protocol(self) -> str:
        """What a Kafka client sets ``security.protocol`` to for this server."""
        if self.users is not None:
            return "SASL_SSL" if self.ssl_context is not None else "SASL_PLAINTEXT"
        return "SSL" if self.ssl_context is not None else "PLAINTEXT"
