"""What the user sees while a topology runs: a live table, progress bars, logs, a summary."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from datablox.master.state import ElementView, ProcessView, RunState


def _mb(n: int) -> str:
    return f"{n / 1e6:.0f} MB" if n else "-"


def _shown_state(view: ElementView, proc: ProcessView, silent: float | None) -> str:
    """The table's state column for one element."""
    if view.failed:
        return "failed"
    if view.finished:
        return "done"
    if not proc.started:
        return "starting"
    return f"silent {silent:.0f} s" if silent is not None else "running"


def element_table(state: RunState, title: str | None = None, elapsed: float | None = None) -> Table:
    """One row per element: throughput, backlog, busy/blocked/idle %, restarts, replayed, dead.

    Busy is time working, blocked is time waiting for room downstream, idle is
    time waiting for input. Replayed: records that reached the element again
    after restores from checkpoints (and duplicates dropped). With ``elapsed``
    (the final summary) rates and shares are averages over the run.
    """
    table = Table(title=title, title_justify="left", expand=False)
    for col, justify in (
        ("element", "left"),
        ("class", "left"),
        ("process", "left"),
        ("in", "right"),
        ("out", "right"),
        ("rec/s", "right"),
        ("backlog", "right"),
        ("busy", "right"),
        ("blocked", "right"),
        ("idle", "right"),
        ("restarts", "right"),
        ("replayed", "right"),
        ("dead", "right"),
        ("rss", "right"),
        ("state", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    now = time.monotonic()
    for view in state.elements.values():
        proc = state.processes[view.process]
        shown = _shown_state(view, proc, state.silent_for(view.process, now))
        rate = view.rate
        if elapsed:
            rate = max(view.records_in, view.records_out) / elapsed
        table.add_row(
            view.name,
            view.cls,
            view.process,
            f"{view.records_in:,}",
            f"{view.records_out:,}",
            f"{rate:,.0f}",
            f"{state.backlog(view.name):,}",
            *(f"{share * 100:.0f}%" for share in view.shares(elapsed)),
            str(proc.restarts),
            f"{state.replayed_into(view.name):,}",
            f"{int(view.stats.get('dead', 0)):,}",
            _mb(proc.rss),
            shown,
        )
    return table


class LiveDisplay:
    """A rich live table with a progress bar per source whose total is known."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,}/{task.total:,}"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self.tasks: dict[str, TaskID] = {}
        self.live: Live | None = None

    def start(self, state: RunState) -> None:
        self.live = Live(console=self.console, refresh_per_second=4, transient=True)
        self.live.start()

    def update(self, state: RunState, elapsed: float) -> None:
        for view in state.elements.values():
            prog = view.stats.get("progress")
            if prog and prog[1]:
                task = self.tasks.get(view.name)
                if task is None:
                    task = self.progress.add_task(view.name, total=prog[1])
                    self.tasks[view.name] = task
                self.progress.update(task, completed=prog[0])
        body = element_table(state, f"{state.tradecraft.get('name', '')} — {elapsed:.1f} s")
        parts: list[Any] = [body, *state.notes]
        if self.tasks:
            parts.append(self.progress)
        if self.live is not None:
            self.live.update(Group(*parts))

    def log(self, text: str) -> None:
        self.console.print(f"[yellow]{text}[/yellow]", highlight=False)

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()


class PlainDisplay:
    """Line-by-line output for logs and pipes: a status line every few seconds."""

    def __init__(self, stream: TextIO | None = None, every: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        self.every = every
        self.last = time.monotonic()

    def start(self, state: RunState) -> None:
        names = ", ".join(f"{p.name}[{'+'.join(p.elements)}]" for p in state.plan.processes)
        print(f"running {state.tradecraft.get('name', '')}: {names}", file=self.stream, flush=True)

    def update(self, state: RunState, elapsed: float) -> None:
        now = time.monotonic()
        if now - self.last < self.every:
            return
        self.last = now
        parts = []
        for view in state.elements.values():
            prog = view.stats.get("progress")
            extra = f"/{prog[1]:,}" if prog and prog[1] else ""
            silent = None if view.finished else state.silent_for(view.process, now)
            if silent is not None:
                extra += f" (no report for {silent:.0f} s: busy in its own code?)"
            parts.append(f"{view.name} {max(view.records_in, view.records_out):,}{extra}")
        print(f"[{elapsed:6.1f}s] " + "; ".join(parts), file=self.stream, flush=True)
        for note in state.notes:
            print(f"         {note}", file=self.stream, flush=True)

    def log(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def stop(self) -> None:
        pass


class QuietDisplay(PlainDisplay):
    """Only logs (warnings and errors)."""

    def start(self, state: RunState) -> None:
        pass

    def update(self, state: RunState, elapsed: float) -> None:
        pass
