"""Splitting a process's time between its elements: working, blocked on a full queue, idle.

The scaling policy decides on these figures, so they must not mix: time spent
waiting for a downstream queue to accept a batch is *blocked*, not busy; time
spent waiting for input is *idle*. A process hosting several (fused) elements
charges each stretch of time to the element whose code is running: a fused
receiver's work is not charged to its sender.
"""

from __future__ import annotations

from time import perf_counter


class Account:
    """Seconds charged to one element's work (``blocked`` is its blocked account)."""

    __slots__ = ("blocked", "seconds")

    def __init__(self, blocked: Account | None = None) -> None:
        self.seconds = 0.0
        self.blocked = blocked


class Clock:
    """Charges elapsed time to the account in effect; ``None`` means idle."""

    __slots__ = ("current", "since", "unowned_blocked")

    def __init__(self) -> None:
        self.current: Account | None = None
        self.since = perf_counter()
        #: blocked time that no element's account can take
        self.unowned_blocked = Account()

    def settle(self) -> None:
        """Charge the time so far to the account in effect (before reading accounts)."""
        now = perf_counter()
        if self.current is not None:
            self.current.seconds += now - self.since
        self.since = now

    def enter(self, account: Account | None) -> Account | None:
        """Charge time from now on to ``account``; returns the account to restore."""
        self.settle()
        previous = self.current
        self.current = account
        return previous

    def leave(self, previous: Account | None) -> None:
        """Charge the time since the matching ``enter`` and restore ``previous``."""
        self.settle()
        self.current = previous

    def block(self, owner: Account | None = None) -> Account | None:
        """Start charging the element running now as blocked; pair with ``leave``.

        Outside any element's code (a source's last batches sent as its outputs
        end, say), the blocked time is ``owner``'s: the element whose link waits.
        """
        current = self.current if self.current is not None else owner
        blocked = current.blocked if current is not None else None
        return self.enter(blocked if blocked is not None else self.unowned_blocked)
