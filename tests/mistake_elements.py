"""Element classes for the regression tests of what new users broke (mistake_elements:Class)."""

from __future__ import annotations

import datetime
import math
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from datablox import (
    Element,
    ElementError,
    Param,
    QueryError,
    Source,
    push_in,
    push_out,
    query_in,
    query_out,
)


class Awkward(Source):
    """Records holding values the codecs treat differently, one kind per record."""

    ports = (push_out("out"),)
    params = (Param("repeat", "int", 1),)

    def on_start(self, params: dict[str, Any]) -> None:
        self.repeat = params["repeat"]

    def generate(self) -> Iterator[dict[str, Any]]:
        kinds: list[tuple[str, Any]] = [
            ("plain", {"a": [1, 2.5, "x", True, None]}),
            ("int_keys", {1: "a", 2: "b"}),
            ("big_int", 2**70),
            ("nan", math.nan),
            ("inf", -math.inf),
            ("bytes", b"\x00\xff"),
            ("datetime", datetime.datetime(2026, 1, 2, 3, 4, 5)),
            ("tuple", (1, 2)),
            ("set", {3}),
            ("deep", _nested(300)),
        ]
        i = 0
        for _ in range(self.repeat):
            for kind, value in kinds:
                yield {"i": i, "kind": kind, "value": value}
                i += 1


def _nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


class Relay(Element):
    """A user element (not declaring plain records) that passes records on."""

    ports = (push_in("in"), push_out("out"))

    def on_record(self, port: str, record: dict[str, Any]) -> None:
        self.emit(record)


def with_tuple(record: dict[str, Any]) -> dict[str, Any]:
    """A Map function that adds a tuple, which every codec turns into a list."""
    record["t"] = (1, 2)
    return record


class TypeNames(Element):
    """Writes, per record, the type name of its field ``t`` (one line each to ``path``)."""

    ports = (push_in("in"),)
    params = (Param("path", "str"),)

    def on_start(self, params: dict[str, Any]) -> None:
        self.path = params["path"]
        self.names: list[str] = []

    def on_record(self, port: str, record: dict[str, Any]) -> None:
        self.names.append(type(record["t"]).__name__)

    def on_finish(self) -> None:
        with open(self.path, "w") as fh:
            fh.write("\n".join(self.names))


class BigInt(Source):
    """Emits ``count`` records, every ``every``-th holding an integer over 64 bits."""

    ports = (push_out("out"),)
    params = (Param("count", "int", 100), Param("every", "int", 10))

    def on_start(self, params: dict[str, Any]) -> None:
        self.count, self.every = params["count"], params["every"]
        self.total = self.count

    def generate(self) -> Iterator[dict[str, Any]]:
        for i in range(self.count):
            yield {"n": i, "big": 2**70 + i if i % self.every == 0 else i}


class Doubler(Element):
    """Answers {"n": n} with 2n; refuses odd multiples of ``refuse_every``."""

    ports = (query_in("get"),)
    params = (Param("refuse_every", "int|null", None),)

    def on_start(self, params: dict[str, Any]) -> None:
        self.refuse = params["refuse_every"]

    def on_query(self, port: str, request: Any) -> Any:
        n = request["n"]
        if self.refuse and n % self.refuse == 0:
            raise ValueError(f"no double for {n}")
        return 2 * n


class AskEach(Element):
    """Asks for each record's double; ``strict`` turns a failed ask into an ElementError."""

    ports = (push_in("in"), query_out("ask"), push_out("out"))
    params = (Param("strict", "bool", False), Param("timeout", "number", 10.0))

    def on_start(self, params: dict[str, Any]) -> None:
        self.strict, self.timeout = params["strict"], params["timeout"]

    def on_record(self, port: str, record: dict[str, Any]) -> None:
        try:
            double = self.ask({"n": record["n"]}, timeout=self.timeout)
        except QueryError as exc:
            if self.strict:
                raise ElementError(f"the lookup failed: {exc}") from exc
            raise
        self.emit({**record, "double": double})


class NumbersAndAnswers(Source):
    """A source that also answers its consumer's lookups: the push + query loop shape."""

    ports = (push_out("out"), query_in("get"))
    params = (Param("count", "int", 1000),)

    def on_start(self, params: dict[str, Any]) -> None:
        self.count = params["count"]
        self.total = self.count

    def generate(self) -> Iterator[dict[str, Any]]:
        for i in range(self.count):
            yield {"n": i, "pad": "x" * 200}

    def on_query(self, port: str, request: Any) -> Any:
        return 2 * request["n"]


class ExitAtStart(Element):
    """Ends its own process in ``on_start``."""

    ports = (push_in("in"),)
    params = (Param("code", "int", 3),)

    def on_start(self, params: dict[str, Any]) -> None:
        os._exit(params["code"])

    def on_record(self, port: str, record: dict[str, Any]) -> None:
        pass


class StuckAtFinish(Element):
    """Never returns from ``on_finish`` and ignores SIGTERM's orderly stop."""

    ports = (push_in("in"),)
    params = (Param("marker", "str"),)

    def on_start(self, params: dict[str, Any]) -> None:
        self.marker = params["marker"]

    def on_record(self, port: str, record: dict[str, Any]) -> None:
        pass

    def on_finish(self) -> None:
        with open(self.marker, "w") as fh:
            fh.write(str(os.getpid()))
        while True:
            time.sleep(0.05)  # stuck in user code on purpose


class StuckOnRecord(Element):
    """Writes its pid to ``marker`` at its first record, then never returns from ``on_record``."""

    ports = (push_in("in"),)
    params = (Param("marker", "str"),)

    def on_start(self, params: dict[str, Any]) -> None:
        self.marker = params["marker"]

    def on_record(self, port: str, record: dict[str, Any]) -> None:
        with open(self.marker, "w") as fh:
            fh.write(str(os.getpid()))
        threading.Event().wait()  # stuck in user code on purpose, ignoring every stop


class UnpicklableState(Element):
    """Passes records on; its snapshot holds a lambda, which pickle refuses."""

    ports = (push_in("in"), push_out("out"))

    def on_record(self, port: str, record: dict[str, Any]) -> None:
        self.emit(record)

    def snapshot(self) -> Any:
        return {"f": lambda: 1}


class RaisesKeyboardInterrupt(Element):
    """Raises KeyboardInterrupt from its own code at record id 5."""

    ports = (push_in("in"), push_out("out"))

    def on_record(self, port: str, record: dict[str, Any]) -> None:
        if record["id"] == 5:
            raise KeyboardInterrupt
        self.emit(record)


class EmitsNotMaps(Element):
    """Emits, for each record, a list, a number and the record itself."""

    ports = (push_in("in"), push_out("out"))

    def on_record(self, port: str, record: dict[str, Any]) -> None:
        self.emit([1, 2])
        self.emit(5)
        self.emit(record)


class FailsAt(Element):
    """Passes records on, and stops the run on purpose (ElementError) at id ``at``."""

    ports = (push_in("in"), push_out("out"))
    params = (Param("at", "int"),)

    def on_start(self, params: dict[str, Any]) -> None:
        self.at = params["at"]

    def on_record(self, port: str, record: dict[str, Any]) -> None:
        if record["id"] == self.at:
            raise ElementError(f"cannot go on at record {self.at}")
        self.emit(record)


class ReturnsRecord(Element):
    """Returns each record from on_record instead of emitting it (a mistake)."""

    ports = (push_in("in"), push_out("out"))

    def on_record(self, port: str, record: dict[str, Any]) -> dict[str, Any]:
        record["seen"] = True
        return record


class FailsInHook(Element):
    """Passes records on, and raises ElementError in ``hook`` (on_end or on_finish)."""

    ports = (push_in("in"), push_out("out"))
    params = (Param("hook", "str"),)

    def on_start(self, params: dict[str, Any]) -> None:
        self.hook = params["hook"]

    def on_record(self, port: str, record: dict[str, Any]) -> None:
        self.emit(record)

    def on_end(self, port: str) -> None:
        if self.hook == "on_end":
            raise ElementError("the end came too soon")

    def on_finish(self) -> None:
        if self.hook == "on_finish":
            raise ElementError("the end came too soon")


class FailsInGenerate(Source):
    """Emits ``count`` records, then raises ElementError from generate."""

    ports = (push_out("out"),)
    params = (Param("count", "int"),)

    def on_start(self, params: dict[str, Any]) -> None:
        self.count = params["count"]

    def generate(self) -> Iterator[dict[str, Any]]:
        for i in range(self.count):
            yield {"id": i}
        raise ElementError("the end came too soon")


class ExitsOnce(Element):
    """Ends its process with ``os._exit(code)`` at id ``at``, once (``marker`` remembers)."""

    ports = (push_in("in"), push_out("out"))
    params = (Param("at", "int"), Param("code", "int"), Param("marker", "str"))

    def on_start(self, params: dict[str, Any]) -> None:
        self.at, self.code, self.marker = params["at"], params["code"], params["marker"]

    def on_record(self, port: str, record: dict[str, Any]) -> None:
        if record["id"] == self.at and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(self.code)
        self.emit(record)


class LeavesThread(Element):
    """Starts a thread (not a daemon) that never ends, and passes records on."""

    ports = (push_in("in"), push_out("out"))

    def on_start(self, params: dict[str, Any]) -> None:
        threading.Thread(target=threading.Event().wait, name="forever").start()

    def on_record(self, port: str, record: dict[str, Any]) -> None:
        self.emit(record)


class StartFailsOnceAfter(Element):
    """Passes records on; its ``on_start`` raises once, the first time it starts after
    ``marker`` exists (a restore meeting a service that is down for a moment)."""

    ports = (push_in("in"), push_out("out"))
    params = (Param("marker", "str"), Param("done", "str"))

    def on_start(self, params: dict[str, Any]) -> None:
        if os.path.exists(params["marker"]) and not os.path.exists(params["done"]):
            open(params["done"], "w").close()
            raise RuntimeError("the service is down for a moment")

    def on_record(self, port: str, record: dict[str, Any]) -> None:
        self.emit(record)


class AsksAtStart(Element):
    """Asks its query port in ``on_start`` (not allowed: nobody answers yet)."""

    ports = (push_in("in"), push_out("out"), query_out("ask"))

    def on_start(self, params: dict[str, Any]) -> None:
        self.first = self.ask({"n": 1})

    def on_record(self, port: str, record: dict[str, Any]) -> None:
        self.emit(record)


class EmitsToMinusOne(Element):
    """Emits each record to connection -1 of ``out``."""

    ports = (push_in("in"), push_out("out"))

    def on_record(self, port: str, record: dict[str, Any]) -> None:
        self.emit_to(-1, record)
