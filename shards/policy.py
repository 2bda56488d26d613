"""The scaling policy of shards: how many members a shard needs, decided from load reports.

Pure: figures go in (time injected), a :class:`Decision` comes out; no
sockets, no clock. The rule, after DS2 (Kalavri et al., OSDI 2018):

- each member's **true rate** is what it processes per second of *busy*
  time (working, not blocked downstream, not idle), so it does not depend on
  how loaded the member happens to be;
- the shard must process what arrives plus its backlog within
  ``drain_seconds``; the members needed are computed in one step from the
  true rate, aiming at ``target_busy`` so there is headroom — not one more
  member per round;
- growth is bounded by the **CPU budget**: a member costs the CPU it
  measurably uses (an I/O-bound member waiting on remote calls uses a
  fraction of a core, a CPU-bound one a whole core), so the members that fit
  are the free CPU over the busiest member's CPU, with a cap on processes
  per node to bound memory;
- what arrives is what the senders *offer*: their rate over the time they were
  not blocked by the shard (a bounded queue hides the demand otherwise);
- damping against flapping (as dask's ``adaptive_core``): no decision while a
  change is in flight (planned members not yet all reporting), nor for
  ``settle`` rounds after it (new members warm up); growing needs
  ``wait_out`` agreeing rounds (more for a shard whose members are costly to
  shrink back), shrinking ``wait_in`` rounds of sustained low load.

Every decision is kept with its inputs, for the live table and the summary.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class MemberLoad:
    """One member's figures over the last window."""

    name: str
    node: str
    #: share of the window spent working (not blocked, not idle)
    busy: float
    #: records it handled in the window
    processed: int
    #: cores it used in the window (measured by the care-taker)
    cpu: float


@dataclass(frozen=True)
class Observation:
    """A shard's load over one window ending at ``at`` (seconds, any origin)."""

    at: float
    window: float
    members: tuple[MemberLoad, ...]
    #: records per second offered to the shard (its senders' rates over the time they
    #: were not blocked: see :func:`offered`)
    arriving: float
    #: records queued towards the shard, not yet handled
    backlog: int


@dataclass(frozen=True)
class Budget:
    """What the nodes can still give: measured free CPU and process slots."""

    #: node -> cores not in use
    free_cpu: Mapping[str, float]
    #: node -> element processes running now
    processes: Mapping[str, int]
    #: the most element processes a node takes (bounds memory; the user may set it)
    max_processes: int


@dataclass(frozen=True)
class Limits:
    """The shard as declared: ``shard(min=, max=)``, and the cost of a member.

    ``cost`` is the effort to shrink back, in rounds: 0 for a stateless pool
    member, more for a member holding much state.
    """

    min: int
    max: int
    cost: int = 0


@dataclass(frozen=True)
class Settings:
    target_busy: float = 0.8
    drain_seconds: float = 10.0
    wait_out: int = 1
    wait_in: int = 5
    #: members below this average busy share are lightly loaded (may shrink)
    idle_busy: float = 0.5
    #: a member fits in the free CPU when it has at least ``1 - fit`` of what one uses
    #: (measured CPU is never quite a whole core, nor is what is free)
    fit: float = 0.2
    #: rounds without a decision after the member count changed (new members warm up)
    settle: int = 1


@dataclass(frozen=True)
class Decision:
    """One round of the policy, with what it saw."""

    at: float
    observed: int
    wanted: int
    planned: int
    reason: str
    inputs: dict[str, float]


@dataclass
class PolicyState:
    """What the policy remembers between rounds."""

    planned: int
    streak: int = 0
    #: +1 growing, -1 shrinking, 0 steady
    direction: int = 0
    #: the member count of the last round (None: none yet), and the rounds still to
    #: wait after it changed
    seen: int | None = None
    settling: int = 0
    log: list[Decision] = field(default_factory=list)


#: A sender counts as unblocked for at least this share of a window (bounds the estimate).
MIN_UNBLOCKED = 0.05


def offered(rate: float, blocked: float) -> float:
    """What a sender would send per second if its receivers never held it back.

    A sender blocked by a full queue for a share of the window sends only
    what the shard takes: the queue towards the shard is bounded, so the
    backlog cannot show the demand. Its rate over the time it was *not*
    blocked can (as DS2 reads a source's true output rate).
    """
    return rate / max(MIN_UNBLOCKED, 1.0 - min(1.0, max(0.0, blocked)))


def true_rate(members: Sequence[MemberLoad], window: float) -> float | None:
    """Records per busy second of one member (None: nobody was busy)."""
    busy_seconds = sum(m.busy for m in members) * window
    processed = sum(m.processed for m in members)
    if busy_seconds <= 0 or processed <= 0:
        return None
    return processed / busy_seconds


def needed(obs: Observation, limits: Limits, settings: Settings) -> tuple[int, dict[str, float]]:
    """Members needed for what arrives and the backlog, in one step (DS2), within limits."""
    rate = true_rate(obs.members, obs.window)
    demand = obs.arriving + obs.backlog / settings.drain_seconds
    inputs = {
        "arriving": obs.arriving,
        "backlog": float(obs.backlog),
        "demand": demand,
        "busy": sum(m.busy for m in obs.members) / max(1, len(obs.members)),
        "true_rate": rate or 0.0,
    }
    if rate is None:
        wanted = limits.min if demand <= 0 else len(obs.members)
    else:
        wanted = math.ceil(demand / (rate * settings.target_busy))
    return max(limits.min, min(limits.max, wanted)), inputs


def room(
    obs: Observation, budget: Budget, settings: Settings | None = None
) -> tuple[int, dict[str, float]]:
    """How many more members the CPU budget and the process cap allow."""
    settings = settings or Settings()
    # as much as the busiest member uses (a new member has not shown its load yet)
    cpu_each = max(0.01, max((m.cpu for m in obs.members), default=0.0))
    free = sum(max(0.0, c) for c in budget.free_cpu.values())
    by_cpu = math.floor(free / cpu_each + settings.fit)
    by_slots = sum(
        max(0, budget.max_processes - budget.processes.get(node, 0)) for node in budget.free_cpu
    )
    return min(by_cpu, by_slots), {"cpu_each": cpu_each, "free_cpu": free, "slots": by_slots}


def decide(
    obs: Observation,
    state: PolicyState,
    limits: Limits,
    budget: Budget,
    settings: Settings | None = None,
) -> Decision:
    """One round: the members the shard should have now (``planned``), and why."""
    settings = settings or Settings()
    observed = len(obs.members)
    wanted, inputs = needed(obs, limits, settings)
    extra, budget_inputs = room(obs, budget, settings)
    inputs.update(budget_inputs)

    def done(planned: int, reason: str) -> Decision:
        state.planned = planned
        decision = Decision(obs.at, observed, wanted, planned, reason, inputs)
        state.log.append(decision)
        return decision

    if state.planned != observed:
        return done(state.planned, f"waiting for {state.planned} member(s) to report")
    if state.seen is not None and state.seen != observed:
        # a change just completed: its new members' first figures (and the node's
        # free CPU) do not show their load yet
        state.settling = settings.settle
    state.seen = observed
    if state.settling > 0:
        state.settling -= 1
        return done(observed, f"measuring {observed} member(s)")
    direction = (wanted > observed) - (wanted < observed)
    if direction < 0 and (inputs["busy"] >= settings.idle_busy or obs.backlog > 0):
        direction = 0  # members are well used, or behind: not the moment to shrink
    if direction != state.direction:
        state.direction, state.streak = direction, 0
    state.streak += 1
    if direction == 0:
        return done(observed, "steady")
    if direction > 0:
        grow_to = min(wanted, observed + extra)
        if grow_to <= observed:
            return done(observed, f"needs {wanted}, but no CPU or process slot is free")
        waits = settings.wait_out + limits.cost
        if state.streak < waits:
            return done(observed, f"needs {wanted}; waiting ({state.streak}/{waits})")
        state.streak = 0
        why = "" if grow_to == wanted else f" (the budget allows {grow_to})"
        return done(grow_to, f"grow to {grow_to}: {wanted} needed{why}")
    if state.streak < settings.wait_in:
        return done(
            observed, f"could shrink to {wanted}; waiting ({state.streak}/{settings.wait_in})"
        )
    state.streak = 0
    # to what the load needs now: the first rounds of the streak may still have seen
    # the tail of a burst
    return done(wanted, f"shrink to {wanted}: load has been low for {settings.wait_in} rounds")
