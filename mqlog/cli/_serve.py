"""``mqlog serve [--kafka HOST:PORT] [--http HOST:PORT]``: serve the log directory
over the Kafka protocol, HTTP, or both (with neither: Kafka on 127.0.0.1:9092).

The command only parses options and calls :func:`mqlog.server.run_server`
(imported when the command runs: no other command pays for the codec);
the security options are read and checked first (a bad users file,
certificate or token file: a one-line error, bad-input exit code, nothing
started); it prints ``listening on kafka://HOST:PORT`` and ``listening on
http://HOST:PORT`` (the real port when 0 was asked for) once clients can
connect, logs refused requests and connections on stderr, and exits 0 after
a graceful shutdown on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mqlog.cli._app import app, local_directory, settings

if TYPE_CHECKING:
    from mqlog.server import KafkaSettings

#: Where ``--kafka`` listens by default: loopback, Kafka's port.
DEFAULT_KAFKA = "127.0.0.1:9092"


@app.command()
def serve(
    ctx: typer.Context,
    kafka: Annotated[str | None, typer.Option(
        "--kafka", metavar="HOST:PORT",
        help="Serve the Kafka protocol on this address (port 0: a free port, printed). "
             f"Default: {DEFAULT_KAFKA} unless only --http is given.",
        show_default=False)] = None,
    http: Annotated[str | None, typer.Option(
        "--http", metavar="HOST:PORT",
        help="Serve the HTTP API, /metrics and the web console on this address "
             "(port 0: a free port, printed).", show_default=False)] = None,
    http_token_file: Annotated[Path | None, typer.Option(
        "--http-token-file", metavar="FILE",
        help="Require this bearer token (the file's first line) on HTTP requests; "
             "default: the MQLOG_HTTP_TOKEN environment variable, if set.",
        show_default=False)] = None,
    advertised: Annotated[str | None, typer.Option(
        "--advertised", metavar="HOST:PORT",
        help="The address clients are told to connect to (default: the --kafka address).",
        show_default=False)] = None,
    insecure: Annotated[bool, typer.Option(
        "--insecure",
        help="Allow a non-loopback address without authentication (--users or "
             "--tls-client-ca for --kafka, a token for --http): anyone who reaches it "
             "can read and write the log.",
    )] = False,
    auto_create_topics: Annotated[bool, typer.Option(
        "--auto-create-topics/--no-auto-create-topics",
        help="Create a missing topic when a client's Metadata request allows it "
             "(Kafka's auto.create.topics.enable).",
    )] = True,
    users: Annotated[Path | None, typer.Option(
        "--users", metavar="FILE", envvar="MQLOG_USERS_FILE", show_envvar=True,
        help="Require a SASL login (PLAIN or SCRAM-SHA-256) against this users file "
             "(see 'mqlog users').", show_default=False)] = None,
    tls_cert: Annotated[Path | None, typer.Option(
        "--tls-cert", metavar="PEM",
        help="Speak TLS with this certificate (PEM; intermediates after it).",
        show_default=False)] = None,
    tls_key: Annotated[Path | None, typer.Option(
        "--tls-key", metavar="PEM",
        help="The private key of --tls-cert (PEM, unencrypted).", show_default=False)] = None,
    tls_client_ca: Annotated[Path | None, typer.Option(
        "--tls-client-ca", metavar="PEM",
        help="Require client certificates signed by these CAs (PEM): mutual TLS.",
        show_default=False)] = None,
) -> None:
    """Serve the log directory to Kafka clients and over HTTP until SIGTERM or Ctrl-C.

    Prints `listening on kafka://HOST:PORT` (and `listening on
    http://HOST:PORT` with --http) once clients can connect. Embedded
    processes keep using the directory meanwhile. Binding an address that is
    not loopback needs authentication (--users, a token) or --insecure. See
    docs/server.md (Kafka) and docs/http.md (HTTP) for the APIs served,
    security and the limits.
    """
    from mqlog.server import read_http_token
    from mqlog.server.auth import ServerSecurity

    security = ServerSecurity.from_options(users, tls_cert, tls_key, tls_client_ca)
    http_token = read_http_token(http_token_file)
    if kafka is None and http is None:
        kafka = DEFAULT_KAFKA
    # Imported here: the protocol codec takes most of a second to import, which
    # no other command should pay.
    from mqlog.server import run_server

    local_directory(ctx, "serve")
    options = settings(ctx)
    logging.basicConfig(level=logging.DEBUG if options.debug else logging.WARNING,
                        format="mqlog serve: %(levelname)s: %(message)s", stream=sys.stderr)

    def ready(url: str) -> None:
        print(f"listening on {url}", flush=True)

    run_server(options.directory, kafka, advertised, http=http, http_token=http_token,
               insecure=insecure, security=security,
               settings=_kafka_settings(auto_create_topics) if kafka else None, ready=ready)


def _kafka_settings(auto_create_topics: bool) -> KafkaSettings:
    from mqlog.server import KafkaSettings

    return KafkaSettings(auto_create_topics=auto_create_topics)
