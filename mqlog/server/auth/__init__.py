"""Who may use a server, and over what: the users file (SCRAM-SHA-256
credentials, checked by SASL/PLAIN and SASL/SCRAM-SHA-256 logins) and the TLS
context.

For the server runtime:

- ``ServerSecurity.from_options(users, tls_cert, tls_key, tls_client_ca)``
  checks and reads the options of ``mqlog serve`` at once: its ``users`` (a
  ``UserStore`` or None: logins required when set), ``ssl_context`` (TLS when
  set), ``authenticates`` (what a non-loopback address needs without
  ``--insecure``) and ``kafka_security_protocol``.
- ``UserStore(path)`` reads the users file once (ConfigError when it is bad or
  missing, before the server listens) and again whenever it changes;
  ``check_password(name, password)`` and ``scram_credentials(name)`` answer
  logins, alike for unknown users and wrong passwords.
- ``ScramExchange(store.scram_credentials)``: the server side of one
  SCRAM-SHA-256 exchange (``first``, then ``final``; ``ScramError`` refuses).
- ``server_ssl_context(cert, key, client_ca=None)`` builds the
  :class:`ssl.SSLContext` to pass to ``asyncio.start_server(ssl=...)``.

For ``mqlog users``: :func:`load_users`, :func:`set_user`,
:func:`remove_user` and :meth:`Credentials.from_password` (the file is
replaced atomically and kept mode 0600). The file format is in the docstring
of :mod:`mqlog.server.auth._users` and in docs/server.md (Security).
"""

from mqlog.server.auth._scram import ScramError, ScramExchange
from mqlog.server.auth._security import ServerSecurity
from mqlog.server.auth._tls import server_ssl_context
from mqlog.server.auth._users import (
    DEFAULT_ITERATIONS,
    MAX_ITERATIONS,
    MIN_ITERATIONS,
    Credentials,
    UserStore,
    check_iterations,
    check_user_name,
    load_users,
    remove_user,
    set_user,
)

__all__ = [
    "DEFAULT_ITERATIONS",
    "MAX_ITERATIONS",
    "MIN_ITERATIONS",
    "Credentials",
    "ScramError",
    "ScramExchange",
    "ServerSecurity",
    "UserStore",
    "check_iterations",
    "check_user_name",
    "load_users",
    "remove_user",
    "server_ssl_context",
    "set_user",
]
