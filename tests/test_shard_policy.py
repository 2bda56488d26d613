"""The shards' scaling policy (pure), on synthetic load histories."""

from __future__ import annotations

from dataclasses import dataclass, field

from datablox.shards.policy import (
    MIN_UNBLOCKED,
    Budget,
    Decision,
    Limits,
    MemberLoad,
    Observation,
    PolicyState,
    Settings,
    decide,
    offered,
    room,
    true_rate,
)


@dataclass
class Simulated:
    """A shard whose members each process ``capacity`` records per busy second.

    ``cpu_full``: cores a member uses when busy all the time (I/O-bound: a
    fraction; CPU-bound: 1). ``cores``: the node's CPUs (the budget).
    """

    capacity: float
    cpu_full: float
    cores: float
    limits: Limits
    members: int = 1
    backlog: float = 0.0
    max_processes: int = 16
    slow: dict[int, float] = field(default_factory=dict)  # member index -> its capacity
    #: records the queue into the shard holds at most (None: unbounded)
    queue: int | None = None
    state: PolicyState = field(default_factory=lambda: PolicyState(planned=1))
    decisions: list[Decision] = field(default_factory=list)
    processed: list[float] = field(default_factory=list)

    def second(self, at: float, arriving: float) -> Decision:
        caps = [self.slow.get(i, self.capacity) for i in range(self.members)]
        done = min(arriving + self.backlog, sum(caps))
        offer = arriving
        if self.queue is not None:
            # a bounded queue: the sender is blocked for the share it cannot send
            taken = min(arriving, done + self.queue - self.backlog)
            blocked = 1.0 - taken / arriving if arriving else 0.0
            arriving, offer = taken, offered(taken, blocked)
        self.backlog += arriving - done
        self.processed.append(done)
        loads = []
        for i, cap in enumerate(caps):
            share = done * cap / sum(caps)
            busy = share / cap
            loads.append(MemberLoad(f"m#{i}", "n1", busy, int(share), self.cpu_full * busy))
        used = sum(m.cpu for m in loads)
        budget = Budget({"n1": self.cores - used}, {"n1": self.members}, self.max_processes)
        obs = Observation(at, 1.0, tuple(loads), offer, int(self.backlog))
        decision = decide(obs, self.state, self.limits, budget)
        self.members = decision.planned  # new members report from the next second
        self.decisions.append(decision)
        return decision

    def changes(self) -> list[int]:
        """The member counts the policy moved to, in order."""
        out, last = [], 1
        for d in self.decisions:
            if d.planned != last:
                out.append(d.planned)
                last = d.planned
        return out


def test_the_true_rate_is_per_busy_second() -> None:
    members = [MemberLoad("a", "n", 0.5, 500, 0.1), MemberLoad("b", "n", 0.25, 250, 0.1)]
    assert true_rate(members, 1.0) == 1000.0
    assert true_rate([MemberLoad("a", "n", 0.0, 0, 0.0)], 1.0) is None


def test_a_step_of_io_bound_input_is_met_in_one_decision_and_then_held() -> None:
    """8,000 records/s to members that take 1,000/s each and mostly wait (5% CPU)."""
    shard = Simulated(capacity=1000, cpu_full=0.05, cores=2, limits=Limits(1, 12))
    for t in range(70):
        shard.second(float(t), 8000)
    assert shard.changes()[0] >= 9  # one step, from the true rate
    assert len(shard.changes()) <= 2
    steady = shard.processed[10:]
    assert min(steady) >= 0.95 * 8000
    # no change over the last 60 s of steady feed
    assert len({d.planned for d in shard.decisions[10:]}) == 1


def test_cpu_bound_members_stop_at_what_the_cores_give() -> None:
    shard = Simulated(capacity=1000, cpu_full=1.0, cores=2, limits=Limits(1, 12))
    for t in range(30):
        shard.second(float(t), 8000)
    assert max(d.planned for d in shard.decisions) <= 3  # cores + 1
    assert any("budget" in d.reason or "no CPU" in d.reason for d in shard.decisions)


def test_a_ramp_only_grows() -> None:
    shard = Simulated(capacity=1000, cpu_full=0.05, cores=2, limits=Limits(1, 12))
    for t in range(40):
        shard.second(float(t), 200.0 * t)
    counts = [d.planned for d in shard.decisions]
    assert counts == sorted(counts)
    assert counts[-1] * 1000 * 0.8 >= 200 * 39 * 0.95


def test_bursts_do_not_make_it_flap() -> None:
    """2 s of 6,000/s, then 2 s of nothing, again and again."""
    shard = Simulated(capacity=1000, cpu_full=0.05, cores=2, limits=Limits(1, 12))
    for t in range(80):
        shard.second(float(t), 6000 if t % 4 < 2 else 0)
    assert len(shard.changes()) <= 2


def test_a_slow_member_counts_with_its_own_rate() -> None:
    """Member 0 runs on a slow host at half speed: the needed count uses the measured
    rate of the members as they are, so it asks for more than full-speed members need."""
    shard = Simulated(capacity=1000, cpu_full=0.05, cores=2, limits=Limits(1, 12), slow={0: 500})
    for t in range(30):
        shard.second(float(t), 6000)
    assert min(shard.processed[8:]) >= 0.95 * 6000


def test_sustained_idleness_goes_back_to_min() -> None:
    shard = Simulated(capacity=1000, cpu_full=0.05, cores=2, limits=Limits(2, 12))
    shard.state = PolicyState(planned=2)
    shard.members = 2
    for t in range(20):
        shard.second(float(t), 8000)
    assert shard.members >= 10
    for t in range(20, 60):
        shard.second(float(t), 0)
    assert shard.members == 2
    # it waited for the idleness to last, then went down in one step
    shrink = [d for d in shard.decisions if d.reason.startswith("shrink")]
    assert len(shrink) == 1 and shrink[0].at - 20 >= 4


def test_a_costly_member_waits_longer_before_growing() -> None:
    cheap = Simulated(capacity=1000, cpu_full=0.05, cores=2, limits=Limits(1, 12, cost=0))
    costly = Simulated(capacity=1000, cpu_full=0.05, cores=2, limits=Limits(1, 12, cost=3))
    for t in range(10):
        cheap.second(float(t), 8000)
        costly.second(float(t), 8000)
    first = [next(d.at for d in s.decisions if d.planned > 1) for s in (cheap, costly)]
    assert first[1] - first[0] == 3


def test_every_round_is_logged_with_its_inputs() -> None:
    shard = Simulated(capacity=1000, cpu_full=0.05, cores=2, limits=Limits(1, 12))
    for t in range(5):
        shard.second(float(t), 3000)
    assert len(shard.state.log) == 5
    first = shard.state.log[0]
    assert first.inputs["arriving"] == 3000 and first.inputs["true_rate"] == 1000
    assert {"demand", "busy", "cpu_each", "free_cpu", "slots"} <= first.inputs.keys()
    assert first.reason == "grow to 4: 4 needed" and first.planned == 4
    # the new members warm up before their figures count
    settle = Settings().settle
    assert [d.reason for d in shard.state.log[1:]] == ["measuring 4 member(s)"] * settle + [
        "steady"
    ] * (4 - settle)


def test_a_sender_held_back_by_a_full_queue_shows_its_demand() -> None:
    """The queue into the shard is bounded: the backlog stays small and the sender only
    gets out what the shard takes; its rate over the time it was not blocked shows
    the 8,000 records/s it offers, so the first decision is the whole step."""
    assert offered(1000.0, 0.875) == 8000.0
    assert offered(1000.0, 0.0) == 1000.0
    assert offered(1000.0, 1.0) == 1000.0 / MIN_UNBLOCKED
    shard = Simulated(capacity=1000, cpu_full=0.05, cores=2, limits=Limits(1, 12), queue=500)
    for t in range(30):
        shard.second(float(t), 8000)
    assert shard.changes()[0] >= 9
    assert min(shard.processed[6:]) >= 0.95 * 8000


def test_a_member_that_nearly_fits_in_the_free_cpu_fits() -> None:
    """Measured free CPU is never a whole core: 0.96 free takes one more member using 1.0."""
    members = (MemberLoad("m#1", "n1", 1.0, 1000, 1.0),)
    obs = Observation(0.0, 1.0, members, 8000.0, 0)
    extra, _ = room(obs, Budget({"n1": 0.96}, {"n1": 2}, 16))
    assert extra == 1
    extra, _ = room(obs, Budget({"n1": 0.5}, {"n1": 2}, 16))
    assert extra == 0


def test_a_shrink_goes_to_what_the_last_rounds_wanted_not_the_tail_of_the_load() -> None:
    """The first idle round still sees the end of the feed (3 wanted); five rounds later
    only 1 is wanted: the shrink goes to 1 in one step, not to 3 and then again."""
    shard = Simulated(capacity=1000, cpu_full=0.05, cores=2, limits=Limits(1, 12))
    for t in range(15):
        shard.second(float(t), 8000)
    shard.second(15.0, 2000)
    for t in range(16, 40):
        shard.second(float(t), 0)
    shrinks = [d.planned for d in shard.decisions if d.reason.startswith("shrink")]
    assert shrinks == [1]
