"""How a run ends when it does not simply finish: an element failed, a report never came.

Also too many dead letters, and a stop that does not drain.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from datablox.master.runopts import RunOptions
from datablox.master.state import Command, RunState

if TYPE_CHECKING:
    from datablox.master.service import Display

#: Seconds to wait for a process's last report after the care-taker saw it exit.
FINAL_REPORT_WAIT = 5.0


class RunEnding:
    """The watchdogs of a run's end, for ``Run``."""

    state: RunState
    options: RunOptions
    display: Display
    phase: str
    kill_sent: bool
    reports_due: float | None
    too_many_dead: bool
    failing: str | None
    unreported_since: dict[str, float]
    #: Ctrl-Cs (and SIGTERMs) seen so far
    seen_interrupts: int = 0
    #: when the orderly stop began (None: not stopping)
    stop_at: float | None = None
    #: a Ctrl-C came while a restore was under way: stop once the data flows again
    stop_after_restore: bool = False

    def kill(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def on_interrupts(self, interrupts: int, now: float) -> None:
        """A first Ctrl-C drains (after a restore under way, once it is done); a second kills."""
        if interrupts <= self.seen_interrupts:
            return
        self.seen_interrupts = interrupts
        if interrupts == 1 and self.phase in ("running", "recovering"):
            self.stop_at = now  # the drain timeout counts from the Ctrl-C
            if self.phase == "recovering":
                self.stop_after_restore = True
                self.display.log(
                    "a restore is under way: the run stops once it is done (Ctrl-C again "
                    f"to kill; killed anyway after {self.options.drain_timeout:g} s)"
                )
                return
            self.display.log(
                "stopping: sources stop, queues drain, sinks flush "
                f"(Ctrl-C again to kill; killed anyway after {self.options.drain_timeout:g} s)"
            )
            self.stop()
        else:
            self.display.log("killing every element process")
            self.kill()

    def stop_if_wanted(self, now: float) -> None:
        """Begin the orderly stop that a Ctrl-C during a restore, too many dead letters or
        a failed element asks for, once the data flows."""
        if self.phase != "running" or self.state.stopping:
            return
        why = None
        if self.stop_after_restore:
            why = "the restore is done"
        elif self.stop_at is None and self.dead_letters_over():
            why = f"more than {self.options.max_dead_letters:,} records went to dead letters"
        elif self.stop_at is None and self.failing:
            why = f"{self.failing}, so the run has failed"
        if why is None:
            return
        self.stop_after_restore = False
        self.display.log(f"stopping: {why}; sources stop, queues drain, sinks flush")
        self.stop()
        self.stop_at = self.stop_at or now

    def _on_exited(self, msg: dict[str, Any], process: str) -> list[Command]:
        raise NotImplementedError

    def final_reports_overdue(self) -> bool:
        """True (once, with a problem noted) when exited processes never sent their last report.

        A process sends its final counters before it exits, but the care-taker may
        see the exit first; the report normally follows within milliseconds.
        """
        # a process whose elements had not finished crashed: silent_exits restores it
        waiting = [p for p in self.state.unreported() if self.elements_finished(p)]
        if not waiting or not all(p.exited for p in self.state.processes.values()):
            self.reports_due = None
            return False
        now = time.monotonic()
        if self.reports_due is None:
            self.reports_due = now + FINAL_REPORT_WAIT
        if now < self.reports_due:
            return False
        self.state.problems.append(
            f"no final report from {', '.join(waiting)} within {FINAL_REPORT_WAIT:.0f} s "
            "of its exit; its last counters may be missing from the summary"
        )
        return True

    def fail_now(self, why: str) -> None:
        """The run has failed while the data flows: stop it (the loop does)."""
        if (
            self.phase == "running"
            and not self.state.stopping
            and not self.kill_sent
            and self.failing is None
        ):
            self.failing = why

    def silent_exits(self, now: float) -> list[Command]:
        """A process that exited cleanly but never sent its final report (its element's
        code called ``os._exit(0)``) crashed: its outputs would otherwise never end."""
        commands: list[Command] = []
        for process, at in list(self.unreported_since.items()):
            proc = self.state.processes[process]
            if proc.reported or proc.exited != "finished":
                del self.unreported_since[process]
            elif now - at > FINAL_REPORT_WAIT and (
                not self.elements_finished(process)
                or not all(p.exited for p in self.state.processes.values())
            ):
                del self.unreported_since[process]
                proc.exited = None
                log = "its process exited with code 0 before its elements had finished"
                commands += self._on_exited({"kind": "crashed", "code": 0, "log": log}, process)
        return commands

    def elements_finished(self, process: str) -> bool:
        """Whether every element of ``process`` said it had finished."""
        return all(self.state.elements[e].finished for e in self.state.processes[process].elements)

    def dead_letters_over(self) -> bool:
        """True once, with the problem noted, when the dead letters pass ``max_dead_letters``."""
        limit = self.options.max_dead_letters
        problem = None if self.too_many_dead else self.state.over_dead_letter_limit(limit)
        if problem is None:
            return False
        self.too_many_dead = True
        self.state.problems.append(problem)
        return True

    def drain_overdue(self) -> None:
        """A stop has drained for ``drain_timeout``: kill what is left, naming it."""
        stuck = [name for name, view in self.state.elements.items() if not view.finished]
        # elements that finished in processes that did not exit (a thread left running)
        stuck = stuck or [name for name, p in self.state.processes.items() if not p.exited]
        self.state.problems.append(
            f"the stop did not drain within {self.options.drain_timeout:g} s: every element "
            f"process was killed; unfinished: {', '.join(stuck)}"
        )
        self.display.log(f"the stop did not drain within {self.options.drain_timeout:g} s")
        self.kill()
