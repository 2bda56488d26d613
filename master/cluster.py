"""The master's side of the control plane: one CURVE connection to each care-taker.

Care-takers are long-lived servers; a master connects to each (the embedded
one, or those a hosts file lists), says hello, heartbeats, and notices the
ones that stop answering.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import zmq

from datablox import control
from datablox.errors import RunError
from datablox.master.planner import NodeInfo
from datablox.security import ClientKeys, connect_curve

#: Seconds between the master's heartbeats to each care-taker.
HEARTBEAT_EVERY = 0.5


@dataclass
class NodeLink:
    """One care-taker as the master sees it."""

    endpoint: str
    sock: zmq.Socket[Any]
    #: the care-taker's node name (known once it said hello)
    name: str = ""
    info: NodeInfo | None = None
    host: str = ""
    last_seen: float = 0.0
    #: its latest figures: cores, cpu_used, mem_used, mem_total, loadavg
    figures: dict[str, Any] = field(default_factory=dict)
    #: declared lost: nothing is sent to it, and what it says is only used to fence it
    lost: bool = False
    #: the care-taker's process id (a new one: it was restarted, and lost what it ran)
    pid: int | None = None
    restarted: bool = False


class Cluster:
    """Connections to care-takers, by node name."""

    def __init__(self, keys: ClientKeys, zctx: zmq.Context | None = None) -> None:  # type: ignore[type-arg]
        self.keys = keys
        self.zctx = zctx or zmq.Context.instance()
        self.links: list[NodeLink] = []
        self.by_name: dict[str, NodeLink] = {}
        self.by_sock: dict[zmq.Socket[Any], NodeLink] = {}
        self.poller = zmq.Poller()
        self.beat_at = 0.0
        #: one identity on every care-taker: a reconnect is still this master
        self.identity = f"master-{uuid.uuid4().hex}".encode()

    def connect(self, endpoint: str, runs: list[str] | None = None) -> NodeLink:
        """Connect to the care-taker at ``endpoint`` and say hello (naming ``runs`` this
        master takes over)."""
        sock = self.zctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.ROUTING_ID, self.identity)
        sock.setsockopt(zmq.LINGER, 500)
        sock.setsockopt(zmq.SNDHWM, 100_000)
        sock.setsockopt(zmq.RCVHWM, 0)
        connect_curve(sock, self.keys.own, self.keys.node_public)
        sock.connect(endpoint)
        link = NodeLink(endpoint, sock)
        self.links.append(link)
        self.by_sock[sock] = link
        self.poller.register(sock, zmq.POLLIN)
        self._send(link, {"op": "hello", "runs": runs or []})
        return link

    @property
    def nodes(self) -> dict[str, NodeInfo]:
        """The care-takers that said hello and are not lost."""
        return {
            link.name: link.info for link in self.links if link.info is not None and not link.lost
        }

    def wait_for_nodes(self, count: int, timeout: float) -> list[NodeInfo]:
        deadline = time.monotonic() + timeout
        while len(self.nodes) < count:
            if time.monotonic() > deadline:
                silent = [link.endpoint for link in self.links if link.info is None]
                raise RunError(
                    f"only {len(self.nodes)} of {count} care-taker(s) answered within "
                    f"{timeout:.0f} s"
                    + (f"; no answer from {', '.join(silent)}" if silent else ""),
                    "check that they are deployed and running ('datablox-master status'), and "
                    "that this machine's client key is in their allow-list",
                )
            self.recv(100)
        return list(self.nodes.values())

    def recv(self, timeout_ms: int) -> dict[str, Any] | None:
        """The next message from any care-taker; ``node`` names it, ``blob_data`` holds the
        files sent with it (name → bytes)."""
        for sock, _ in self.poller.poll(timeout_ms):
            link = self.by_sock[sock]
            data, *blobs = sock.recv_multipart()
            msg = control.decode(data)
            link.last_seen = time.monotonic()
            if msg["op"] == "hello":
                self._hello(link, msg)
            elif msg["op"] == "heartbeat":
                link.figures = {k: v for k, v in msg.items() if k not in ("op", "node", "pid")}
                if link.pid is not None and msg.get("pid") not in (None, link.pid):
                    link.restarted = True
            msg["node"] = link.name
            if blobs:
                msg["blob_data"] = dict(zip(msg.get("blobs", []), blobs, strict=True))
            if link.lost:
                msg["lost"] = True
            return msg
        return None

    def _hello(self, link: NodeLink, msg: dict[str, Any]) -> None:
        name = str(msg["node"])
        other = self.by_name.get(name)
        if other is not None and other is not link and not other.lost:
            raise RunError(
                f"two care-takers call themselves '{name}' ({other.endpoint}, {link.endpoint})",
                "give each host its own name in the hosts file",
            )
        link.name = name
        link.host = str(msg.get("host", ""))
        link.info = NodeInfo(name, int(msg.get("slots", 1)), float(msg.get("cores", 1)))
        link.pid = msg.get("pid")
        self.by_name[name] = link

    def _send(self, link: NodeLink, msg: dict[str, Any], blobs: list[bytes] | None = None) -> None:
        try:
            link.sock.send_multipart([control.encode(msg), *(blobs or [])], flags=zmq.NOBLOCK)
        except zmq.Again:
            pass  # its queue is full: it has not read for long, and will be declared lost

    def send_node(self, node: str, msg: dict[str, Any], blobs: list[bytes] | None = None) -> None:
        link = self.by_name.get(node)
        if link is None or link.lost:
            return
        self._send(link, msg, blobs)

    def fence(self, node: str, msg: dict[str, Any]) -> None:
        """Send to a node declared lost (to stop what it still runs)."""
        self._send(self.by_name[node], msg)

    def heartbeat(self, now: float) -> None:
        if now - self.beat_at < HEARTBEAT_EVERY:
            return
        self.beat_at = now
        for link in self.links:
            if link.info is not None and not link.lost:
                self._send(link, {"op": "heartbeat"})

    def silent(self, timeout: float, now: float) -> list[str]:
        """Nodes heard from more than ``timeout`` seconds ago (and not yet declared lost)."""
        return [
            link.name
            for link in self.links
            if link.info is not None and not link.lost and now - link.last_seen > timeout
        ]

    def restarted(self) -> list[str]:
        """Nodes whose care-taker is a new process (and not yet declared lost)."""
        return [link.name for link in self.links if link.restarted and not link.lost]

    def mark_lost(self, node: str) -> None:
        self.by_name[node].lost = True

    def close(self) -> None:
        for link in self.links:
            link.sock.close(linger=0)
