"""Where `--serve` listens and who may read it.

`--serve [HOST:]PORT` binds 127.0.0.1 unless a host is given. Bound beyond loopback, every
page, the API and `/metrics` ask for a token (`/healthz` stays open, for load balancers); a
bind beyond loopback without one is refused before anything opens.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass

from realtime.core.errors import InputError

#: The environment variable read for the token when `--serve-token` is not given (a command
#: line is visible to every user of the machine in `ps`; the environment is not).
TOKEN_ENV = "REALTIME_SERVE_TOKEN"
MIN_TOKEN_LENGTH = 8
DEFAULT_HOST = "127.0.0.1"


@dataclass(frozen=True)
class ServeAddress:
    """`--serve`'s value: the host to bind (an address or a name) and the port (0: any free
    one, said at start)."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_serve_address(text: str) -> ServeAddress:
    """`8080`, `0.0.0.0:8080`, `localhost:8080`, `[::1]:8080` -> ServeAddress (ValueError with
    the reason otherwise)."""
    text = text.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = DEFAULT_HOST, text
    elif host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text!r}: write an IPv6 address in brackets, e.g. [::1]:8080")
    if not host:
        raise ValueError(f"{text!r}: the host before ':' is empty")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r}: expected [HOST:]PORT with a port from 0 to 65535")
    return ServeAddress(host, int(port_text))


def is_loopback(host: str) -> bool:
    """True when every address `host` names is a loopback one (127.0.0.0/8, ::1). A name that
    does not resolve is not loopback (binding it fails later, with its own message)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(
        ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses
    )


def serve_token(given: str | None, address: ServeAddress, environ=os.environ) -> str | None:
    """The token the server asks for (None: open), from `--serve-token` or the environment;
    InputError for a bind beyond loopback without one, or a token too short to mean much."""
    token = given if given is not None else environ.get(TOKEN_ENV) or None
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise InputError(f"the serve token is too short (at least {MIN_TOKEN_LENGTH} characters)")
    if token is None and not is_loopback(address.host):
        raise InputError(
            f"--serve {address} is reachable beyond this machine: give a token with "
            f"--serve-token or {TOKEN_ENV}, or bind to loopback (--serve {address.port}, "
            "then e.g. an SSH tunnel)"
        )
    return token
