"""Element classes of the shard tests (referenced as shard_elements:Class)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from datablox import Element, Param, push_in, push_out
from datablox.elements.files import JsonLinesSink
from datablox.elements.keyed import KeyCount
from datablox.ports import query_out


class DyingCount(KeyCount):
    """KeyCount whose process is killed (SIGKILL, by itself) in the middle of its first
    export or import of partitions in a run: ``die`` = "export" or "import". The
    ``flag`` file marks that it happened, so the restored run goes on."""

    params = (*KeyCount.params, Param("flag", "path"), Param("die", "str"))

    def on_start(self, params: dict[str, Any]) -> None:
        super().on_start(params)
        self.flag = Path(params["flag"])
        self.die = params["die"]

    def _maybe_die(self, when: str) -> None:
        if self.die == when and not self.flag.exists():
            self.flag.write_text(f"{self.name} {os.getpid()}")
            os.kill(os.getpid(), signal.SIGKILL)

    def export_partitions(
        self, partitions: frozenset[int], partition_of: Callable[[Any], int]
    ) -> Any:
        state = super().export_partitions(partitions, partition_of)
        self._maybe_die("export")
        return state

    def import_partitions(self, state: Any) -> None:
        self._maybe_die("import")
        super().import_partitions(state)


class AskCount(Element):
    """Asks a KeyCount shard the count of each record's key; emits the record with the
    answer in ``asked`` (a KeyCount with emit="each" upstream sets ``count``, so the
    answer can never be smaller)."""

    ports = (push_in("in"), push_out("out"), query_out("ask"))

    def on_batch(self, port: str, records: list[Any]) -> None:
        pending = [(r, self.ask_async({"key": r["key"]})) for r in records]
        self.emit_many([{**r, "asked": p.result(10.0)} for r, p in pending])


class SlowStartCount(KeyCount):
    """KeyCount whose members added at run time take ``delay`` seconds to start (a model
    to load, say): the stream may end while they start."""

    params = (*KeyCount.params, Param("delay", "float"))

    def on_start(self, params: dict[str, Any]) -> None:
        super().on_start(params)
        if not self.name.endswith("#1"):
            time.sleep(params["delay"])  # slow on purpose


class SlowFinishSink(JsonLinesSink):
    """JsonLinesSink whose ``on_finish`` takes ``delay`` seconds (a file to upload, say):
    control messages that come meanwhile are never read, since the process then ends."""

    params = (*JsonLinesSink.params, Param("delay", "float"))

    def on_start(self, params: dict[str, Any]) -> None:
        super().on_start(params)
        self.delay = params["delay"]

    def on_finish(self) -> None:
        super().on_finish()
        time.sleep(self.delay)  # slow on purpose
