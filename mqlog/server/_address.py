"""``HOST:PORT`` addresses of the listeners, and which of them are loopback."""

from __future__ import annotations

import ipaddress

from mqlog.errors import ConfigError

__all__ = ["check_http_bind", "format_address", "is_loopback", "parse_address"]


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[IPV6]:PORT`` for IPv6) as (host, port); ConfigError if
    it is not one."""
    host, colon, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not colon or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigError(f"address {text!r} is not HOST:PORT (PORT 0 to 65535)")
    return host, int(port_text)


def format_address(host: str, port: int) -> str:
    """``HOST:PORT``, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and the loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_http_bind(host: str, insecure: bool, token: str | None) -> None:
    """ConfigError unless ``host`` is loopback, or a bearer token is required, or
    ``insecure`` allows anyone: a log must not be opened to a network by accident."""
    if is_loopback(host) or insecure or token is not None:
        return
    raise ConfigError(
        f"{host} is not a loopback address: serving HTTP on it needs a bearer token "
        f"(--http-token-file FILE or MQLOG_HTTP_TOKEN) or --insecure")
