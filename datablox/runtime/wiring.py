"""Binding an element process's in-ports and connecting its out-ports to their peers."""

from __future__ import annotations

from typing import Any

import zmq

from datablox.registry import resolve
from datablox.runtime.hosted import Hosted
from datablox.runtime.links import BatchEncoder, LocalAsker, LocalLink, RemoteAsker, RemoteLink
from datablox.runtime.loop import EventLoop
from datablox.runtime.shardask import ShardAsker
from datablox.runtime.shardlink import (
    POOL_BATCH,
    POOL_HWM,
    POOL_SOCKBUF,
    KeyedLink,
    PoolLink,
    ShardLink,
)
from datablox.security import connect_curve, serve_curve

#: How long a process that has finished goes on delivering what its push connections
#: still hold (its records, their end-of-stream) before it exits anyway. The master
#: abandons a connection whose receiver has crashed, or finished before a new shard
#: member was wired to it (``master/shardwiring.py``), so the exit does not wait for it.
SEND_LINGER_MS = 30_000


def bind_inputs(rt: EventLoop) -> dict[str, str]:
    """Bind a PULL per push in-port and a ROUTER per query in-port with remote peers."""
    endpoints: dict[str, str] = {}
    for conn in rt.spec["connections"]:
        dst, src = conn["to"], conn["from"]
        target = rt.hosted.get(dst["element"])
        if target is None:
            continue
        if conn["kind"] == "push":
            target.open_inputs.setdefault(dst["port"], set()).add(conn["id"])
        else:
            target.open_queries.setdefault(dst["port"], set()).add(conn["id"])
        if src["element"] in rt.hosted:
            continue
        key = f"{dst['element']}.{dst['port']}"
        if key in endpoints:
            continue
        kind = zmq.PULL if conn["kind"] == "push" else zmq.ROUTER
        sock = rt.zctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        if kind == zmq.PULL:
            hwm, sockbuf = queue_bounds(rt, conn)
            sock.setsockopt(zmq.RCVHWM, hwm)
            sock.setsockopt(zmq.RCVBUF, sockbuf)
        else:
            # a ROUTER drops answers beyond its high-water mark, silently: no limit here
            # (an asker bounds what it has in flight, a batch's queries at most)
            sock.setsockopt(zmq.SNDHWM, 0)
            sock.setsockopt(zmq.RCVHWM, 0)
        if rt.data_keys is not None:
            serve_curve(sock, rt.data_keys, "data")
        sock.bind(f"tcp://{rt.host}:*")
        port = sock.getsockopt_string(zmq.LAST_ENDPOINT).rsplit(":", 1)[1]
        # bound on the node's bind address, reached at its advertised address
        endpoints[key] = f"tcp://{rt.advertise}:{port}"
        table = rt.in_sockets if kind == zmq.PULL else rt.query_sockets
        table[sock] = (target, dst["port"])
        rt.poller.register(sock, zmq.POLLIN)
    return endpoints


def connect_outputs(rt: EventLoop, endpoints: dict[str, str]) -> None:
    """Connect out-ports and query out-ports now that every in-port is bound."""
    askers: dict[tuple[str, str], list[dict[str, Any]]] = {}
    shard_links: dict[int, ShardLink] = {}
    for conn in rt.spec["connections"]:
        src, dst = conn["from"], conn["to"]
        sender = rt.hosted.get(src["element"])
        if sender is None:
            continue
        if conn["kind"] == "query":
            askers.setdefault((src["element"], src["port"]), []).append(conn)
            continue
        out = sender.ctx.outputs[src["port"]]
        target = rt.hosted.get(dst["element"])
        link: RemoteLink | LocalLink
        owner = sender.handler.work
        shard = conn.get("to_shard")
        if shard is not None:
            # a member of a shard (never fused): one link per member behind one shard link
            group = shard_links.get(shard["logical"])
            if group is None:
                group = shard_links[shard["logical"]] = _shard_link(rt, sender, shard)
                out.links.append(group)
            member = push_link(rt, sender, conn, endpoints[f"{dst['element']}.{dst['port']}"])
            group.add_member(shard["member"], member)
            rt.links.append(member)
            continue
        if target is not None:
            encoder = BatchEncoder(rt.codec, _bad_record(sender, src["port"]))
            deliver, barrier = _local_delivery(rt, target, conn["id"], dst["port"])
            link = LocalLink(
                conn["id"], deliver, rt.batch_size, encoder, sender.element, owner, barrier
            )
        else:
            link = push_link(rt, sender, conn, endpoints[f"{dst['element']}.{dst['port']}"])
        out.links.append(link)
        rt.links.append(link)
    for hosted in rt.hosted.values():
        for out in hosted.ctx.outputs.values():
            if len(out.links) > 1:
                for fan in out.links:
                    if isinstance(fan, LocalLink):
                        fan.fans_out = True
    for (ename, port), conns in askers.items():
        sender = rt.hosted[ename]
        describe = f"element '{ename}' query port '{port}'"
        if any(c.get("to_shard") for c in conns):
            sender.ctx.askers[port] = _shard_asker(rt, conns, endpoints, describe)
            continue
        local = [c for c in conns if c["to"]["element"] in rt.hosted]
        if local and len(local) == len(conns):
            target = rt.hosted[local[0]["to"]["element"]]
            sender.ctx.askers[port] = LocalAsker(
                _local_answer(target, local[0]["to"]["port"]), describe
            )
            continue
        addresses = [
            endpoints[f"{c['to']['element']}.{c['to']['port']}"]
            for c in conns
            if c["to"]["element"] not in rt.hosted
        ]
        sender.ctx.askers[port] = RemoteAsker(dealer(rt, addresses), describe, rt.wait_readable)


def push_link(rt: EventLoop, sender: Hosted, conn: dict[str, Any], address: str) -> RemoteLink:
    """A push connection from ``sender`` to an element in another process at ``address``."""
    src, dst = conn["from"], conn["to"]
    sock = rt.zctx.socket(zmq.PUSH)
    if rt.data_keys is not None:
        connect_curve(sock, rt.data_keys, rt.data_keys.public)
    hwm, sockbuf = queue_bounds(rt, conn)
    pool = into_pool(conn)
    sock.setsockopt(zmq.SNDHWM, hwm)
    sock.setsockopt(zmq.SNDBUF, sockbuf)
    sock.setsockopt(zmq.LINGER, SEND_LINGER_MS)
    sock.connect(address)
    return RemoteLink(
        sock,
        sender.id,
        conn["id"],
        rt.codec,
        min(rt.batch_size, POOL_BATCH) if pool else rt.batch_size,
        rt.while_blocked,
        f"element '{sender.name}' port '{src['port']}' "
        f"(connection to {dst['element']}.{dst['port']})",
        _bad_record(sender, src["port"]),
        rt.clock,
        sender.handler.work,
    )


def queue_bounds(rt: EventLoop, conn: dict[str, Any]) -> tuple[int, int]:
    """High-water mark (batches) and kernel buffer (bytes) at each end of a push
    connection: the run's, or a pool member's shorter ones."""
    if into_pool(conn):
        return min(rt.hwm, POOL_HWM), min(rt.sockbuf, POOL_SOCKBUF)
    return rt.hwm, rt.sockbuf


def into_pool(conn: dict[str, Any]) -> bool:
    """Whether ``conn`` leads to a member of a pool (a shard without a key)."""
    shard = conn.get("to_shard")
    return shard is not None and not shard.get("key")


def dealer(rt: EventLoop, addresses: list[str]) -> zmq.Socket:  # type: ignore[type-arg]
    """The asking socket of a query port, connected to its answerers."""
    sock = rt.zctx.socket(zmq.DEALER)
    if rt.data_keys is not None:
        connect_curve(sock, rt.data_keys, rt.data_keys.public)
    sock.setsockopt(zmq.LINGER, 0)
    # a ROUTER drops answers beyond its high-water mark, silently: no limit at either end
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.RCVHWM, 0)
    for address in addresses:
        sock.connect(address)
    return sock


def _shard_link(rt: EventLoop, sender: Hosted, shard: dict[str, Any]) -> ShardLink:
    if not shard.get("key"):
        return PoolLink(shard["logical"], shard["name"])
    table = rt.spec["routing"][shard["name"]]
    return KeyedLink(
        shard["logical"],
        shard["name"],
        shard["key"],
        table["owners"],
        table["version"],
        _bad_record(sender, shard["port"]),
        lambda condition: rt.wait_for(condition),
    )


def _shard_asker(
    rt: EventLoop, conns: list[dict[str, Any]], endpoints: dict[str, str], describe: str
) -> ShardAsker:
    shard = conns[0]["to_shard"]
    cls = resolve(shard["class"])
    key = shard.get("key")
    port = conns[0]["to"]["port"]
    mode = "any" if not key else ("scatter" if cls.query_routing == "scatter" else "key")
    table = rt.spec.get("routing", {}).get(shard["name"])
    asker = ShardAsker(
        describe,
        mode,
        key,
        lambda request: cls.request_key(port, request, key or []),
        lambda answers: cls.gather(port, answers),
        table["owners"] if table and key else None,
        rt.wait_readable,
        rt.wait_for,
    )
    asker.conn_id = shard["logical"]
    for c in conns:
        address = endpoints[f"{c['to']['element']}.{c['to']['port']}"]
        asker.add_member(c["to_shard"]["member"], dealer(rt, [address]))
    return asker


def _bad_record(sender: Hosted, port: str) -> Any:
    def bad(record: Any, error: str) -> None:
        sender.handler.reject(port, record, error)

    return bad


def _local_answer(target: Hosted, port: str) -> Any:
    def answer(request: Any) -> tuple[bool, Any]:
        return target.handler.query(port, request)

    return answer


def _local_delivery(rt: EventLoop, target: Hosted, conn: int, port: str) -> tuple[Any, Any]:
    arrived = rt.records_arrived

    def deliver(records: list[Any]) -> None:
        arrived(target, conn, port, records)

    def barrier(checkpoint: int) -> None:
        rt.barrier_arrived(target, conn, checkpoint)

    return deliver, barrier
