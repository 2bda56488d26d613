"""Shards inside an element process: rewiring senders and moving partitions between members.

The master drives every change through control messages; this module carries
them out on both sides:

- **senders** (routers) into a shard: ``shard_add`` connects a link (and a
  query socket) to a new member, ``shard_remove`` ends one, ``shard_pause``
  holds the records of moving partitions and sends each old owner a MARKER
  after what it already had (then ``shard_paused`` goes back), and
  ``shard_switch`` puts the next routing-table version in force and sends the
  held records to their new owners;
- **members**: ``move_out`` exports the state of the moving partitions once
  the marker of that move has come in on every open input (so every record of
  theirs sent before the pause has been processed) and writes it for the new
  owner (``moved_out``); ``move_in`` imports it (``moved_in``);
- **receivers** of a shard's output: ``add_inputs`` makes a new member's
  connections inputs to wait for (their ends, their barriers).

Moves never overlap a checkpoint (the master runs one or the other), so a
crash during a move restores the whole run to the checkpoint before it, with
the routing table and members of that checkpoint.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from datablox.errors import ElementError
from datablox.partition import partition_of
from datablox.runtime.checkpoints import dumps, write_transfer
from datablox.runtime.handling import error_text
from datablox.runtime.shardask import ShardAsker
from datablox.runtime.shardlink import KeyedLink, ShardLink
from datablox.runtime.wiring import dealer, push_link

if TYPE_CHECKING:
    from datablox.runtime.hosted import Hosted
    from datablox.runtime.process import ProcessRuntime


class Resharding:
    """The process's side of shard changes."""

    def __init__(self, rt: ProcessRuntime) -> None:
        self.rt = rt
        #: move id -> the move_out message, until its markers are all in
        self.moves_out: dict[int, dict[str, Any]] = {}
        #: move id -> input connections whose marker has arrived
        self.markers: dict[int, set[int]] = {}
        #: move id -> (member, partitions, its inputs at the export) for an export that
        #: came early: the member keeps a copy until those inputs' markers are in
        self.releasing: dict[int, tuple[Hosted, frozenset[int], set[int]]] = {}

    def ops(self) -> dict[str, Any]:
        return {
            "shard_add": self._on_shard_add,
            "shard_remove": self._on_shard_remove,
            "shard_pause": self._on_shard_pause,
            "shard_switch": self._on_shard_switch,
            "add_inputs": self._on_add_inputs,
            "move_out": self._on_move_out,
            "move_in": self._on_move_in,
        }

    # ---- senders ---------------------------------------------------------------
    def shard_links(self, logical: set[int]) -> list[ShardLink]:
        return [
            link
            for hosted in self.rt.hosted.values()
            for out in hosted.ctx.ports.values()
            for link in out.links
            if isinstance(link, ShardLink) and link.conn_id in logical
        ]

    def shard_askers(self, logical: set[int]) -> list[ShardAsker]:
        return [
            asker
            for hosted in self.rt.hosted.values()
            for asker in hosted.ctx.askers.values()
            if isinstance(asker, ShardAsker) and asker.conn_id in logical
        ]

    def answer(self, msg: dict[str, Any], taken: list[int]) -> None:
        """Say which connections of a rewiring message were taken: the master settles the
        others with the new member (see ``datablox.shards.rewiring``)."""
        if "number" in msg:
            self.rt.send("rewired", number=msg["number"], taken=taken)

    def _on_shard_add(self, msg: dict[str, Any]) -> None:
        endpoints = msg["endpoints"]
        taken = []
        for conn in msg["conns"]:
            self.rt.conns[conn["id"]] = conn
            sender = self.rt.hosted.get(conn["from"]["element"])
            if sender is None:
                continue
            taken.append(conn["id"])
            shard = conn["to_shard"]
            address = endpoints[f"{conn['to']['element']}.{conn['to']['port']}"]
            if conn["kind"] == "query":
                for asker in self.shard_askers({shard["logical"]}):
                    asker.add_member(shard["member"], dealer(self.rt, [address]))
                continue
            for link in self.shard_links({shard["logical"]}):
                member = push_link(self.rt, sender, conn, address)
                link.add_member(shard["member"], member)
                self.rt.links.append(member)
                if link.closed:
                    member.close()  # the sender has ended: so has this connection
        self.answer(msg, taken)

    def _on_shard_remove(self, msg: dict[str, Any]) -> None:
        logical, member = set(msg["logical"]), int(msg["member"])
        for link in self.shard_links(logical):
            gone = link.remove_member(member)
            if gone is not None:
                self.rt.links.remove(gone)
        for asker in self.shard_askers(logical):
            asker.remove_member(member)

    def _on_shard_pause(self, msg: dict[str, Any]) -> None:
        logical, move = set(msg["logical"]), int(msg["move"])
        partitions = msg["partitions"]
        for link in self.shard_links(logical):
            if isinstance(link, KeyedLink):
                link.pause(partitions, move)
        for asker in self.shard_askers(logical):
            asker.pause(partitions)
        self.rt.send("shard_paused", move=move)

    def _on_shard_switch(self, msg: dict[str, Any]) -> None:
        logical = set(msg["logical"])
        owners, version = msg["owners"], int(msg["version"])
        for link in self.shard_links(logical):
            if isinstance(link, KeyedLink):
                link.switch(owners, version)
        for asker in self.shard_askers(logical):
            asker.switch(owners)

    # ---- receivers of a shard's output -----------------------------------------
    def _on_add_inputs(self, msg: dict[str, Any]) -> None:
        taken = []
        for conn in msg["conns"]:
            self.rt.conns[conn["id"]] = conn
            target = self.rt.hosted.get(conn["to"]["element"])
            if target is None:
                continue
            if conn["id"] in target.ended_inputs:
                taken.append(conn["id"])  # its end came first: nothing more will
            elif conn["kind"] == "push":
                if target.outputs_ended:
                    continue  # its inputs have all ended: it waits for no new one
                target.open_inputs.setdefault(conn["to"]["port"], set()).add(conn["id"])
                taken.append(conn["id"])
            elif not target.finished:
                target.open_queries.setdefault(conn["to"]["port"], set()).add(conn["id"])
                taken.append(conn["id"])
        self.answer(msg, taken)

    # ---- members -----------------------------------------------------------------
    def marker_arrived(self, conn: int, move: int) -> None:
        self.markers.setdefault(move, set()).add(conn)
        self.check_moves()

    def _on_move_out(self, msg: dict[str, Any]) -> None:
        self.moves_out[int(msg["move"])] = msg
        self.check_moves()

    def awaited(self, hosted: Hosted, early: bool) -> set[int]:
        """The input connections whose markers an export (``early``) or a release waits for:
        every open input, but for an early export not the element's read-only inputs."""
        skip = hosted.element.read_only_inputs if early else frozenset()
        if skip and not self._hook(hosted, "export_early"):
            skip = frozenset()
        return {c for port, conns in hosted.open_inputs.items() if port not in skip for c in conns}

    def check_moves(self) -> None:
        """Export the partitions of each move whose markers are all in (for a class with
        read-only inputs, its other inputs' markers); release what such a member kept
        for its in-flight records once every marker is in."""
        for move, msg in list(self.moves_out.items()):
            hosted = self.rt.hosted[msg["element"]]
            if not self.awaited(hosted, early=True) <= self.markers.get(move, set()):
                continue
            del self.moves_out[move]
            if hosted.element.read_only_inputs:
                partitions = frozenset(p for parts in msg["parts"].values() for p in parts)
                # inputs connected later carry no marker of this move
                self.releasing[move] = (hosted, partitions, self.awaited(hosted, early=False))
            else:
                self.markers.pop(move, None)
            started = time.monotonic()
            hosted.ctx.flush()
            files, size = {}, 0
            for dst, partitions in msg["parts"].items():
                state = self._hook(hosted, "export_partitions", frozenset(partitions), partition_of)
                data = dumps(state)
                path = self.rt.store.transfer_path(move, hosted.name, dst)
                write_transfer(path, data)
                files[dst] = str(path.relative_to(self.rt.store.root))
                size += len(data)
            self.rt.send(
                "moved_out",
                move=move,
                element=hosted.name,
                files=files,
                bytes=size,
                seconds=time.monotonic() - started,
            )
        for move, (hosted, partitions, inputs) in list(self.releasing.items()):
            if inputs & self.awaited(hosted, early=False) <= self.markers.get(move, set()):
                del self.releasing[move]
                self.markers.pop(move, None)
                self._hook(hosted, "release_partitions", partitions)

    def _hook(self, hosted: Hosted, hook: str, *args: Any) -> Any:
        """Call one of the element's partition hooks as its work; a failure stops the run
        (the state of a partition would be lost or doubled)."""
        previous = self.rt.clock.enter(hosted.handler.work)
        try:
            return getattr(hosted.element, hook)(*args)
        except Exception as exc:
            raise ElementError(
                f"element '{hosted.name}': {hook}() failed: {error_text(exc)}"
            ) from None
        finally:
            self.rt.clock.leave(previous)

    def _on_move_in(self, msg: dict[str, Any]) -> None:
        hosted = self.rt.hosted[msg["element"]]
        started = time.monotonic()
        for rel in msg["files"]:
            path = self.rt.store.root / rel
            self._hook(hosted, "import_partitions", self.rt.store.read_snapshot(rel))
            path.unlink(missing_ok=True)
        self.rt.send(
            "moved_in",
            move=int(msg["move"]),
            element=hosted.name,
            seconds=time.monotonic() - started,
        )
