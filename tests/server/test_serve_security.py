"""The security options of ``mqlog serve``: checked before anything starts,
and which addresses they allow (a non-loopback address needs authentication
or --insecure; TLS alone does not do)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mqlog.cli import app
from mqlog.errors import ConfigError
from mqlog.server.auth import Credentials, ServerSecurity, set_user
from mqlog.server.kafka._server import check_bind
from tests.server._pki import make_key_and_cert

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None,
                                reason="needs the openssl command")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("security")
    cert, key = make_key_and_cert(directory, "localhost")
    ca, _ = make_key_and_cert(directory, "client-ca")
    users = directory / "users.json"
    set_user(users, "alice", Credentials.from_password("wonderland"))
    damaged = directory / "damaged.json"
    damaged.write_text("{not json")
    return {"cert": cert, "key": key, "ca": ca, "users": users, "damaged": damaged,
            "missing": directory / "missing.json"}


def serve(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--dir", str(tmp_path / "log"), "serve", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize(("options", "message"), [
    (["--users", "{missing}"], "missing.json"),
    (["--users", "{damaged}"], "damaged.json"),
    (["--tls-cert", "{cert}"], "--tls-cert and --tls-key go together"),
    (["--tls-cert", "{key}", "--tls-key", "{key}"], "--tls-cert"),
    (["--tls-cert", "{cert}", "--tls-key", "{missing}"], "--tls-key"),
    (["--tls-client-ca", "{ca}"], "--tls-client-ca needs --tls-cert"),
    (["--kafka", "0.0.0.0:0"], "--users FILE"),
    (["--kafka", "0.0.0.0:0", "--tls-cert", "{cert}", "--tls-key", "{key}"], "TLS alone"),
])
def test_bad_security_options_are_refused_before_anything_starts(
        tmp_path: Path, files: dict[str, Path], options: list[str], message: str) -> None:
    code, output = serve(tmp_path, *(option.format(**files) for option in options))
    assert code == 2, output
    assert message in output
    assert len(output.strip().splitlines()) == 1
    assert "Traceback" not in output
    assert not (tmp_path / "log").exists()


def test_a_non_loopback_address_needs_authentication_or_insecure(
        files: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match="--users FILE"):
        check_bind("192.0.2.1", False)
    with pytest.raises(ConfigError, match="TLS alone"):
        check_bind("192.0.2.1", False,
                   ServerSecurity.from_options(tls_cert=files["cert"], tls_key=files["key"]))
    check_bind("192.0.2.1", True)
    check_bind("192.0.2.1", False, ServerSecurity.from_options(users=files["users"]))
    check_bind("192.0.2.1", False, ServerSecurity.from_options(
        tls_cert=files["cert"], tls_key=files["key"], tls_client_ca=files["ca"]))
    check_bind("127.0.0.1", False, ServerSecurity.from_options(tls_cert=files["cert"],
                                                               tls_key=files["key"]))
