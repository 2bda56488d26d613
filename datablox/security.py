"""CURVE keys and the ZAP allow-list of the control plane.

A key folder (``datablox-master keys`` makes one, ``~/.datablox/keys`` by
default) holds::

    client.key, client.key_secret   this user's key pair (the master and the CLI use it)
    node.key,   node.key_secret     the care-takers' key pair (``deploy`` copies it to each host)
    authorized/*.key                the public keys a care-taker lets in (``client.key`` is one)

Every control socket is CURVE-encrypted. A care-taker binds its control socket
as a CURVE server and answers a ZAP request only for a client key in its
allow-list; a refused peer can neither launch, stop nor read status, and each
refusal is logged with the peer's address and key.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from datablox.errors import RunError

log = logging.getLogger("datablox.security")

DEFAULT_KEYS = Path.home() / ".datablox" / "keys"


@dataclass(frozen=True)
class KeyPair:
    """A CURVE key pair, both halves Z85-encoded (40 bytes each)."""

    public: bytes
    secret: bytes

    @classmethod
    def generate(cls) -> KeyPair:
        public, secret = zmq.curve_keypair()
        return cls(public, secret)

    @classmethod
    def load(cls, secret_file: Path) -> KeyPair:
        try:
            public, secret = zmq.auth.load_certificate(str(secret_file))
        except (OSError, ValueError) as exc:
            raise RunError(
                f"cannot read the key {secret_file}: {exc}",
                "make keys with 'datablox-master keys'",
            ) from None
        if secret is None:
            raise RunError(f"{secret_file} holds no secret key")
        return cls(public, secret)

    def fields(self) -> dict[str, str]:
        """For a process spec (the spec file is readable by its owner only)."""
        return {"public": self.public.decode(), "secret": self.secret.decode()}

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> KeyPair:
        return cls(fields["public"].encode(), fields["secret"].encode())


def make_keys(folder: Path, force: bool = False) -> list[Path]:
    """Create the client and node key pairs and the allow-list; returns the files written.

    Existing keys are kept unless ``force``: a new node key would lock out
    every deployed care-taker until it is deployed again.
    """
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    authorized = folder / "authorized"
    authorized.mkdir(exist_ok=True)
    written: list[Path] = []
    for name in ("client", "node"):
        if (folder / f"{name}.key_secret").exists() and not force:
            continue
        public, secret = zmq.auth.create_certificates(str(folder), name)
        os.chmod(secret, 0o600)
        written += [Path(public), Path(secret)]
    client_public = folder / "client.key"
    allowed = authorized / "client.key"
    if not allowed.exists() or force:
        allowed.write_bytes(client_public.read_bytes())
        written.append(allowed)
    return written


def public_key(path: Path) -> bytes:
    try:
        public, _ = zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as exc:
        raise RunError(f"cannot read the public key {path}: {exc}") from None
    return public


def allowed_keys(folder: Path) -> set[bytes]:
    """The public keys of ``folder/authorized``."""
    found = folder / "authorized"
    if not found.is_dir():
        raise RunError(
            f"{found} does not exist: no client would be let in",
            "make keys with 'datablox-master keys'",
        )
    return {public_key(p) for p in sorted(found.glob("*.key"))}


@dataclass(frozen=True)
class ClientKeys:
    """What a master (or CLI client) needs to talk to care-takers."""

    own: KeyPair
    node_public: bytes

    @classmethod
    def load(cls, folder: Path) -> ClientKeys:
        return cls(KeyPair.load(folder / "client.key_secret"), public_key(folder / "node.key"))


def serve_curve(sock: zmq.Socket[Any], pair: KeyPair, domain: str) -> None:
    """Make ``sock`` a CURVE server whose clients are checked by the ZAP ``domain``."""
    sock.setsockopt(zmq.CURVE_SERVER, 1)
    sock.setsockopt(zmq.CURVE_SECRETKEY, pair.secret)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, pair.public)
    sock.setsockopt_string(zmq.ZAP_DOMAIN, domain)


def connect_curve(sock: zmq.Socket[Any], pair: KeyPair, server_public: bytes) -> None:
    """Make ``sock`` a CURVE client of the server whose public key is ``server_public``."""
    sock.setsockopt(zmq.CURVE_SECRETKEY, pair.secret)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, pair.public)
    sock.setsockopt(zmq.CURVE_SERVERKEY, server_public)


class Gate(ThreadAuthenticator):
    """The ZAP handler of one ZeroMQ context: an allow-list of client keys per domain.

    ``refused`` is called (in the gate's thread) with the domain, the peer's
    address and its key for every refused connection.
    """

    def __init__(self, zctx: zmq.Context[Any], refused: Callable[[str, str, str], None]) -> None:
        super().__init__(zctx, log=log)
        self.allowed: dict[str, set[bytes]] = {}
        self.refused = refused
        self._lock = threading.Lock()
        self._address = ""
        self.start()

    def admit(self, domain: str, keys: Iterable[bytes]) -> None:
        with self._lock:
            new = domain not in self.allowed
            self.allowed.setdefault(domain, set()).update(keys)
        if new:
            self.configure_curve_callback(domain, credentials_provider=self)

    def revoke(self, domain: str, keys: Iterable[bytes]) -> None:
        with self._lock:
            self.allowed.get(domain, set()).difference_update(keys)

    async def handle_zap_message(self, msg: list[bytes]) -> None:
        # frames: version, request id, domain, address, identity, mechanism, credentials
        self._address = msg[3].decode(errors="replace") if len(msg) > 3 else "?"
        await super().handle_zap_message(msg)

    def callback(self, domain: str, key: bytes) -> bool:
        with self._lock:
            ok = key in self.allowed.get(domain, set())
        if not ok:
            self.refused(domain, self._address, key.decode(errors="replace"))
        return ok
