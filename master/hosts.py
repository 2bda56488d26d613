"""The hosts file: which hosts run care-takers, and how to reach them (TOML).

::

    [defaults]                      # optional; any host field
    user = "deploy"
    ssh_key = "~/.ssh/id_ed25519"

    [[host]]
    name = "node1"                  # the node name 'on node1' pins elements to
    address = "10.0.0.11"           # SSH address
    advertise = "10.0.0.11"         # where masters and other nodes reach it (default: address)
    cpus = 4                        # CPU budget (default: every core)

See docs/nodes.md for every field.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from datablox.errors import RunError

DEFAULT_PORT = 7301


@dataclass(frozen=True)
class HostSpec:
    """One host of a hosts file."""

    name: str
    address: str
    user: str = "root"
    ssh_port: int = 22
    ssh_key: str | None = None
    #: SSH host keys to trust; None: ~/.ssh/known_hosts
    known_hosts: str | None = None
    #: refuse hosts whose SSH host key is not in known_hosts
    strict_host_keys: bool = True
    #: where datablox is installed on the host (a virtualenv, keys, run folders)
    root: str = "~/.datablox-node"
    python: str = "python3"
    #: the care-taker's control port
    port: int = DEFAULT_PORT
    #: address its sockets bind on (default: advertise)
    bind: str | None = None
    #: address masters and other nodes reach it at (default: address)
    advertise: str | None = None
    #: CPU budget in cores (default: all); also its slots unless ``slots`` is set
    cpus: int | None = None
    slots: int | None = None

    @property
    def reach(self) -> str:
        return self.advertise or self.address

    @property
    def endpoint(self) -> str:
        return f"tcp://{self.reach}:{self.port}"


TYPES: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "address": str,
    "user": str,
    "ssh_port": int,
    "ssh_key": str,
    "known_hosts": str,
    "strict_host_keys": bool,
    "root": str,
    "python": str,
    "port": int,
    "bind": str,
    "advertise": str,
    "cpus": int,
    "slots": int,
}


def parse_hosts(text: str, source: str = "hosts file") -> list[HostSpec]:
    """The hosts of a hosts file's text; RunError naming the file and the host otherwise."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RunError(f"{source}: {exc}", "the hosts file is TOML; see docs/nodes.md") from None
    unknown = set(data) - {"defaults", "host"}
    if unknown:
        raise RunError(
            f"{source}: unknown section(s) {', '.join(sorted(unknown))}",
            "a hosts file has [defaults] and [[host]] entries",
        )
    defaults = data.get("defaults", {})
    hosts = data.get("host", [])
    if not isinstance(hosts, list) or not hosts:
        raise RunError(f"{source}: no [[host]] entries", "add one [[host]] table per host")
    names = {f.name for f in fields(HostSpec)}
    found: list[HostSpec] = []
    for index, entry in enumerate(hosts, 1):
        merged: dict[str, Any] = {**defaults, **entry}
        label = f"{source}: host {merged.get('name') or f'#{index}'}"
        for key, value in merged.items():
            if key not in names:
                raise RunError(
                    f"{label}: unknown field '{key}'", f"fields: {', '.join(sorted(names))}"
                )
            if not isinstance(value, TYPES[key]) or (TYPES[key] is int and isinstance(value, bool)):
                raise RunError(f"{label}: '{key}' must be a {TYPES[key].__name__}, got {value!r}")  # type: ignore[union-attr]
        for required in ("name", "address"):
            if not merged.get(required):
                raise RunError(f"{label}: '{required}' is missing")
        found.append(HostSpec(**merged))
    seen: set[str] = set()
    for host in found:
        if host.name in seen:
            raise RunError(f"{source}: two hosts are named '{host.name}'")
        seen.add(host.name)
    return found


def load_hosts(path: Path) -> list[HostSpec]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RunError(f"cannot read the hosts file {path}: {exc.strerror or exc}") from None
    return parse_hosts(text, str(path))
