"""Driving source elements: pulling batches from their generators, skipping after a restore."""

from __future__ import annotations

from collections.abc import Callable

from datablox.element import Source
from datablox.errors import ElementError
from datablox.runtime.context import OutPort
from datablox.runtime.handling import error_text, named
from datablox.runtime.hosted import Hosted


def pump(
    hosted: Hosted,
    batch_size: int,
    stopping: Callable[[], bool],
    pause: Callable[[], bool] = lambda: False,
) -> None:
    """Pull up to one batch of records from a source's generator and emit them (one
    list, for a source that runs through ``generate_batches``).

    Records collect in the out-port's pending list and go to its links in one
    ``extend``: a record costs one list append, whatever the fan-out. A source
    that waits inside ``generate`` (paced, or waiting for data) ends the batch
    early when ``stopping()`` or ``pause()`` says so after a wait, so that a
    slow source holds up neither a stop nor a checkpoint.
    """
    element = hosted.element
    assert isinstance(element, Source) and hosted.gen is not None
    out = hosted.ctx.outputs.get(element.source_port)
    if out is None:
        hosted.source_done = True
        return
    if hosted.batched:
        _pump_list(hosted, out)
    else:
        _pump_records(hosted, out, batch_size, stopping, pause)
    out.flush()
    if stopping():
        hosted.source_done = True


def _pump_records(
    hosted: Hosted,
    out: OutPort,
    batch_size: int,
    stopping: Callable[[], bool],
    pause: Callable[[], bool],
) -> None:
    """Collect up to one batch from a source's ``generate`` in ``out``'s pending list."""
    assert hosted.gen is not None
    pending = out.pending
    n = 0
    try:
        for record in hosted.gen:
            if record is None:
                break
            if out.pending is not pending:
                pending = out.pending  # a wait() inside the generator flushed the batch
                if stopping() or pause():
                    pending.append(record)
                    break
            pending.append(record)
            n += 1
            if n >= batch_size:
                break
        else:
            hosted.source_done = True
    except ElementError as exc:
        raise named(exc, hosted.name, "in generate") from None
    except Exception as exc:
        _failed(hosted, "generate", exc)


def _pump_list(hosted: Hosted, out: OutPort) -> None:
    """Put the next list of a source that runs through ``generate_batches`` in its
    out-port's pending list (a restored source's carried-over records first)."""
    assert hosted.gen is not None
    batch = hosted.carry
    if batch:
        hosted.carry = []
    else:
        try:
            batch = next(hosted.gen)
        except StopIteration:
            hosted.source_done = True
        except ElementError as exc:
            raise named(exc, hosted.name, "in generate_batches") from None
        except Exception as exc:
            _failed(hosted, "generate_batches", exc)
    if batch:
        out.pending.extend(batch)


def _failed(hosted: Hosted, method: str, exc: Exception) -> None:
    """A source's generator raised: it is done, and the failure is noted and logged."""
    hosted.failed = f"{method} failed: {error_text(exc)}"
    hosted.ctx.log(hosted.name, hosted.failed)
    hosted.source_done = True


def resume(hosted: Hosted, done: int, log: Callable[[str, str], None]) -> None:
    """After a restore, skip the ``done`` records a resumable source emitted before its
    checkpoint (its counters are restored with the snapshot)."""
    if done <= 0 or hosted.gen is None:
        return
    skipped = 0
    if hosted.batched:
        for batch in hosted.gen:
            if batch:
                take = min(len(batch), done - skipped)
                skipped += take
                if take < len(batch):
                    hosted.carry = list(batch[take:])  # emitted first, before the next list
                if skipped >= done:
                    break
    else:
        for record in hosted.gen:
            if record is not None:
                skipped += 1
                if skipped >= done:
                    break
    log(hosted.name, f"restored; skipped the {skipped:,} records it emitted before the checkpoint")
