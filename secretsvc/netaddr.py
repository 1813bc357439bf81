"""HOST:PORT addresses, and whether a host is this machine's loopback.

Shared by the server's settings, the client, the webhook, the injector's agent and the registry client; kept
apart from config.py so the agent, which starts in every pod, can use them without loading every server
setting.
"""

from __future__ import annotations

import ipaddress

from secretsvc.errors import ConfigError


def split_host_port(value: str) -> tuple[str, int]:
    """`HOST:PORT` or `[V6]:PORT` as (host, port); ValueError saying what is expected."""
    host, sep, port_text = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError("must be HOST:PORT, e.g. 127.0.0.1:8290")
    return host, int(port_text)


def parse_host_port(value: str, *, setting: str) -> tuple[str, int]:
    """`split_host_port`, with a ConfigError naming the setting."""
    try:
        return split_host_port(value)
    except ValueError as exc:
        raise ConfigError(f"{setting} {exc}, got {value!r}") from None


def host_of(authority: str) -> str:
    """The host of `HOST`, `HOST:PORT`, `[V6]` or `[V6]:PORT`; a bare IPv6 address is returned whole."""
    if authority.startswith("["):
        return authority[1:authority.find("]")]
    if authority.count(":") == 1:
        return authority.split(":", maxsplit=1)[0]
    return authority


def is_loopback(host: str) -> bool:
    """`localhost` or a loopback IP address (a bare host, not HOST:PORT; see `host_of`)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
