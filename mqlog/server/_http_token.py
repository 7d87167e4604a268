"""Where the HTTP API's bearer token comes from: a file, or the environment."""

from __future__ import annotations

import os
from pathlib import Path

from mqlog.errors import ConfigError

#: The environment variable ``mqlog serve --http`` reads the token from.
TOKEN_ENV = "MQLOG_HTTP_TOKEN"


def read_http_token(file: Path | None) -> str | None:
    """The token from ``file`` (its first line, stripped), else from the
    environment variable :data:`TOKEN_ENV`, else None (no authentication).
    ConfigError for an unreadable or empty file."""
    if file is not None:
        try:
            lines = file.read_text().splitlines()
        except OSError as exc:
            raise ConfigError(f"cannot read the token file {str(file)!r}: {exc.strerror}") from None
        token = lines[0].strip() if lines else ""
        if not token:
            raise ConfigError(f"the token file {str(file)!r} is empty")
        return token
    return os.environ.get(TOKEN_ENV) or None
