"""The element base classes: what a user subclasses to process records.

An element is one unit of processing. It declares its ports and parameters as
class attributes (so a topology can be checked without running anything) and
overrides a few hooks that the runtime calls from a single thread:

``on_start(params)``
    once, after parameters are validated and every connection is wired, before
    any record arrives. Raising here fails the run with the element's name.
``on_batch(port, records)``
    for each batch that arrives on a push in-port. The default calls
    ``on_record`` for each record; override it to work on whole batches.
``on_record(port, record)``
    for each record (when ``on_batch`` is not overridden). An exception here is
    logged with the element and port, the record goes to the dead-letter file
    and the element goes on with the next record.
``on_query(port, request)``
    for each query arriving on a query in-port; the return value is the answer.
    An exception is sent back to the asker as a :class:`~datablox.errors.QueryError`.
``on_end(port)``
    when every connection into a push in-port has ended.
``on_finish()``
    when all push in-ports have ended (sources: when ``generate`` is exhausted
    or the run is stopping). The last chance to emit; flush files here. The
    push outputs end right after it; queries may still arrive until every
    element that asks this one has finished, so a source may answer its own
    consumer's queries.

``snapshot()`` / ``restore(state)``
    the element's state, for the delivery guarantee (``docs/delivery.md``).
    ``snapshot`` returns any picklable value (None: no state); the runtime
    calls it at each checkpoint, between batches, and writes it to the run's
    checkpoint store. After a crash the element is started again
    (``on_start`` runs as usual) and ``restore`` gets the state of the last
    completed checkpoint; the records that came after it arrive again.
    Counters, positions of sources and dead letters are the runtime's business.
``on_checkpoint(checkpoint)``
    when a checkpoint this element took part in is complete everywhere: the
    moment for a sink to commit to an outside system what it wrote up to it.

The shard contract (``docs/shards.md``): any element can be declared
``shard(min=, max=)`` in a ``.topo``. A class without state (no ``snapshot``)
can be a pool; a keyed shard (``shard(..., key="field")``) of a class with
state needs ``export_partitions(partitions, partition_of)`` (hand the state
of those partitions over, forgetting it) and ``import_partitions(state)``
(take it in), so partitions can move between members while records flow.
``member_cost()`` answers whether a member may be added (None: no) and at
what cost to shrink back; ``min_members`` is the fewest members the class
works with; ``query_routing`` says whether a query goes to the member owning
its key (``request_key``) or to every member (``gather`` combines answers).

Errors: any exception from ``on_record``/``on_batch`` (including ``QueryError``
and ``QueryTimeout`` from ``ask``) dead-letters the record; raise
:class:`~datablox.errors.ElementError` to stop the element and fail the run.

An element class may also define a static ``check_params(params)`` returning a
list of ``datablox.ports.ParamProblem``; ``datablox-master check`` calls it, so
a bad parameter value is reported at its place in the ``.topo`` before
anything runs (``Filter`` and ``Map`` parse their expressions there).

Not guaranteed: the order of batches arriving from *different* upstream
elements. Guaranteed with sources that can replay: each record's effect on
state (through ``snapshot``/``restore``) and at sinks happens exactly once,
across crashes of element processes (``docs/delivery.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from datablox.errors import ElementClassError
from datablox.ports import Param, Port

if TYPE_CHECKING:
    from datablox.runtime.context import ElementContext

Record = dict[str, Any]

__all__ = ["Element", "Record", "Source"]


class Element:
    """Base class of every element class. See the module docstring for the hooks."""

    #: Declared ports. Subclasses list ``push_in``/``push_out``/``query_in``/``query_out``.
    ports: ClassVar[Sequence[Port]] = ()
    #: Declared parameters with types and defaults.
    params: ClassVar[Sequence[Param]] = ()
    #: True when the element is cheap per record, so the planner may fuse it
    #: with its neighbours automatically.
    cheap: ClassVar[bool] = False
    #: Names of the parameters that hold a file the element writes: ``check``
    #: refuses a topology in which two elements write one file.
    writes: ClassVar[Sequence[str]] = ()
    #: Names of the parameters that hold a file (or a glob of files) the element reads
    #: at start: ``check`` warns when none exists (yet).
    reads: ClassVar[Sequence[str]] = ()
    #: Names of the parameters that hold a Python callable as ``package.module:name``,
    #: imported when the element starts: ``check`` imports it too (in the child
    #: process that imports user classes) and reports one that cannot be imported
    #: or is not callable, at the parameter's value.
    calls: ClassVar[Sequence[str]] = ()
    #: True when every record the element emits is either one it received,
    #: unchanged, or built only of values every codec carries as they are
    #: (maps with string keys, lists, strings, 64-bit integers, finite floats,
    #: booleans, null). A fused neighbour then gets the records without the
    #: encode/decode copy that otherwise makes fused runs give exactly the
    #: results of separate processes. Leave it False when unsure.
    plain_records: bool = False

    #: The element's name in the topology; set by the runtime.
    name: str = "?"
    _ctx: ElementContext

    # ---- hooks -------------------------------------------------------------
    def on_start(self, params: dict[str, Any]) -> None:
        """Called once with validated parameters (defaults filled in)."""

    def on_batch(self, port: str, records: list[Record]) -> None:
        """Handle a batch arriving on push in-port ``port``."""
        for record in records:
            self.on_record(port, record)

    def on_record(self, port: str, record: Record) -> None:
        """Handle one record arriving on push in-port ``port``."""
        raise NotImplementedError(
            f"{type(self).__name__} receives records on '{port}' but defines no on_record"
        )

    def on_query(self, port: str, request: Any) -> Any:
        """Answer one query arriving on query in-port ``port``."""
        raise NotImplementedError(
            f"{type(self).__name__} receives queries on '{port}' but defines no on_query"
        )

    def on_end(self, port: str) -> None:
        """Called when every connection into push in-port ``port`` has ended."""

    def on_finish(self) -> None:
        """Called once when all inputs have ended; may still emit."""

    def snapshot(self) -> Any:
        """The element's state at a checkpoint (picklable; None: nothing to keep)."""
        return None

    def restore(self, state: Any) -> None:
        """Take back the state ``snapshot`` returned, after ``on_start`` of a restarted element."""

    def on_checkpoint(self, checkpoint: int) -> None:
        """Checkpoint ``checkpoint`` is complete everywhere (commit what was written up to it)."""

    # ---- the shard contract (docs/shards.md) --------------------------------
    #: The fewest members this class works with as a shard (``shard(min=)`` may ask more).
    min_members: ClassVar[int] = 1
    #: The parameter naming the field the element keys its state by; a keyed shard
    #: of this class must route on that same field (the checker verifies it).
    state_key_param: ClassVar[str | None] = None
    #: How a query reaches a keyed shard: "key" (the member that owns the request's
    #: key) or "scatter" (every member; ``gather`` combines the answers).
    query_routing: ClassVar[str] = "key"

    def member_cost(self) -> int | None:
        """May the shard add a member? None: no. Otherwise the cost of shrinking back,
        in scaling rounds: 0 for a member without state, more for much state."""
        return 0

    def export_partitions(
        self, partitions: frozenset[int], partition_of: Callable[[Any], int]
    ) -> Any:
        """Hand over (and forget) the state of ``partitions``; ``partition_of(key)`` maps a
        state key to its partition. Picklable; the receiving member gets it in
        ``import_partitions``."""
        raise NotImplementedError(f"{type(self).__name__} defines no export_partitions")

    def import_partitions(self, state: Any) -> None:
        """Take in state another member exported (partitions this member now owns)."""
        raise NotImplementedError(f"{type(self).__name__} defines no import_partitions")

    #: Input ports whose records only read the partition state, never change it (a
    #: JOIN's stream, enriched from its dataset). A partition move then does not wait
    #: for the records in flight on them: the member exports once its other inputs'
    #: markers are in (when ``export_early()`` agrees), keeps serving the in-flight
    #: records of those partitions from what it exported, and forgets it in
    #: ``release_partitions`` once every input's marker is in.
    read_only_inputs: ClassVar[frozenset[str]] = frozenset()

    def export_early(self) -> bool:
        """May the next export come before the read-only inputs' markers? (Only asked of a
        class with ``read_only_inputs``.)"""
        return True

    def release_partitions(self, partitions: frozenset[int]) -> None:
        """The records in flight for ``partitions`` (exported earlier) are all handled:
        forget what was kept to serve them."""

    @classmethod
    def request_key(cls, port: str, request: Any, key: Sequence[str]) -> Any:
        """The shard key of a query ``request`` (default: the key fields of a map request,
        or a bare request itself when the key is one field)."""
        return key_value(request, key) if isinstance(request, dict) else request

    @classmethod
    def gather(cls, port: str, answers: list[Any]) -> Any:
        """Combine the answers of every member to a scattered query (default: the list)."""
        return answers

    @classmethod
    def has_state(cls) -> bool:
        """True when the class keeps state across records (it defines ``snapshot``)."""
        return cls.snapshot is not Element.snapshot

    @classmethod
    def keyable(cls) -> bool:
        """True when the class can be a keyed shard: no state, or state it can move."""
        return not cls.has_state() or (
            cls.export_partitions is not Element.export_partitions
            and cls.import_partitions is not Element.import_partitions
        )

    # ---- services provided by the runtime ----------------------------------
    def emit(self, record: Record, port: str = "out") -> None:
        """Send ``record`` on push out-port ``port`` (to every connection of that port).

        Blocks while a downstream queue is full (backpressure); never drops.
        """
        self._ctx.emit(port, record)

    def emit_many(self, records: list[Record], port: str = "out") -> None:
        """Send several records on ``port``."""
        self._ctx.emit_many(port, records)

    def emit_to(self, index: int, record: Record, port: str = "out") -> None:
        """Send ``record`` on only the ``index``-th connection of ``port`` (routing)."""
        self._ctx.emit_to(port, index, record)

    def emit_all(self, record: Record, port: str = "out") -> None:
        """Send ``record`` on ``port`` and, where the port leads into a shard, to every
        member of the shard (one copy each) instead of the one owning its key: for
        news every member needs, such as "this dataset version is complete"."""
        self._ctx.emit_all(port, record)

    def connections(self, port: str = "out") -> int:
        """How many connections leave push out-port ``port``."""
        return self._ctx.connections(port)

    def ask(self, request: Any, port: str = "ask", timeout: float = 10.0) -> Any:
        """Ask a query on query out-port ``port`` and wait up to ``timeout`` s for the answer.

        Raises ``QueryTimeout`` when no answer comes and ``QueryError`` when the
        answering element failed. An element asks until its ``on_finish`` has
        returned: from then on, the elements it asks may finish (an ``on_query``
        that runs later must not ask).
        """
        return self._ctx.ask(port, request, timeout)

    def ask_async(self, request: Any, port: str = "ask") -> Any:
        """Start a query without waiting; returns a handle whose ``result(timeout)`` waits.

        Many queries may be in flight at once; answers are matched by correlation id.
        """
        return self._ctx.ask_async(port, request)

    def dead_letter(self, record: Any, error: str, **context: Any) -> None:
        """Write ``record`` to this element's dead-letter file with an error and context."""
        self._ctx.dead_letter(self.name, record, error, context)

    def log(self, message: str) -> None:
        """Write a line to the run log, prefixed with the element name."""
        self._ctx.log(self.name, message)

    @classmethod
    def instance_port(cls, port: Port, params: dict[str, Any]) -> Port:
        """``port`` as an element with ``params`` has it: a class whose record fields
        depend on its parameters (a join's key fields) returns them here, so the
        checker can compare them with the other side of a connection."""
        return port

    @classmethod
    def port(cls, name: str) -> Port | None:
        """The declared port called ``name``, if any."""
        for p in cls.ports:
            if p.name == name:
                return p
        return None


class Source(Element):
    """An element that produces records from ``generate()``.

    ``generate`` is a generator; each yielded record is emitted on
    ``source_port``. Yield ``None`` to let the runtime flush timers and handle
    control messages without emitting (e.g. while waiting for data). It is not
    guaranteed to run to exhaustion: on Ctrl-C the runtime stops pulling from it
    and calls ``on_finish``. Set ``self.total`` in ``on_start`` when the number
    of records is known, so a progress bar can be shown.
    """

    source_port: ClassVar[str] = "out"
    #: True when ``generate`` yields the same records in the same order every
    #: time (files, seeded generators), so the source can replay: restored
    #: at a checkpoint, it skips the records it had emitted before it, unless it
    #: defines ``snapshot``/``restore`` to put itself at the position directly.
    #: A source that cannot replay (False, and no ``restore``) gives at-most-once
    #: delivery for what it emitted after the last checkpoint before a crash.
    resumable: ClassVar[bool] = False
    total: int | None = None

    def generate(self) -> Iterator[Record | None]:
        raise NotImplementedError(f"{type(self).__name__} defines no generate()")

    def generate_batches(self, size: int) -> Iterator[list[Record] | None]:
        """Optional, for speed: a generator of lists of records, each at most ``size`` long
        (the run's batch size). A class that defines it is run through it instead of
        ``generate``, and pays the runtime's per-record cost once per list. It yields the
        same records in the same order as ``generate`` would, and ``None`` (or an empty
        list) where ``generate`` would yield ``None``. A resumable source counts what it
        has emitted per list: a restore skips whole lists and the front of the last one.
        """
        raise NotImplementedError(f"{type(self).__name__} defines no generate_batches()")

    @classmethod
    def batched(cls) -> bool:
        """True when the class defines ``generate_batches``."""
        return cls.generate_batches is not Source.generate_batches

    def wait(self, seconds: float) -> None:
        """Pause for ``seconds`` while the runtime keeps flushing and listening.

        Returns early when a checkpoint is due, so that the source's barrier is not
        held up (a paced source computes its next wait from the clock, as Generate
        does)."""
        self._ctx.wait(seconds)


MISSING: Any = object()


def field_value(record: Any, path: str) -> Any:
    """``record[path]``; a dotted path reaches into nested maps when no field has that name.
    MISSING when absent."""
    if not isinstance(record, dict):
        return MISSING
    value = record.get(path, MISSING)
    if value is MISSING and "." in path:
        value = record
        for part in path.split("."):
            if not isinstance(value, dict) or part not in value:
                return MISSING
            value = value[part]
    return value


def key_value(record: Any, key: Sequence[str]) -> Any:
    """The shard key of ``record``: one field's value, or a tuple of several (MISSING
    when a field is absent)."""
    if len(key) == 1:
        return field_value(record, key[0])
    values = tuple(field_value(record, k) for k in key)
    return MISSING if any(v is MISSING for v in values) else values


def check_element_class(cls: Any, ref: str) -> type[Element]:
    """Verify that ``cls`` (loaded from ``ref``) is a usable element class."""
    if not isinstance(cls, type) or not issubclass(cls, Element):
        raise ElementClassError(
            f"'{ref}' is not an element class (got {cls!r})",
            "element classes subclass datablox.Element or datablox.Source",
        )
    return cls  # its declarations are checked by registry.check_declarations
