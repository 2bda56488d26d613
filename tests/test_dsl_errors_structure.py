"""Mistakes in names, cycles, shards, feeds, fusion and groups: message, file:line:col, caret, hint."""

# ruff: noqa: E501  (expected compiler output is compared verbatim, long lines included)

from __future__ import annotations

from tests.dsl_errors_support import _in_cases, block, expect, rendered  # noqa: F401


def test_duplicate_group_parameter() -> None:
    expect(
        """
        group G(a, a) { element x = cases:Thing() }
        topology t { element g = G(a=1) }
        """,
        """
        error: duplicate parameter 'a' in group G
         --> t.topo:1:12
          |
        1 | group G(a, a) { element x = cases:Thing() }
          |            ^
          = hint: first declared at t.topo:1:9
        """,
    )


def test_duplicate_group_name() -> None:
    expect(
        """
        group G() { element x = cases:Thing() }
        group G() { element x = cases:Thing() }
        topology t { element g = G() }
        """,
        """
        error: duplicate group name 'G'
         --> t.topo:2:7
          |
        2 | group G() { element x = cases:Thing() }
          |       ^
          = hint: first defined at t.topo:1:7
        """,
    )


def test_duplicate_element_and_feed() -> None:
    expect(
        """
        topology t {
            element s = cases:Src()
            element s = cases:Thing()
            feed f = s.out
            feed f = s.out
        }
        """,
        """
        error: duplicate element name 's'
         --> t.topo:3:13
          |
        3 |     element s = cases:Thing()
          |             ^
          = hint: first declared at t.topo:2:13
        """,
        """
        error: duplicate feed name 'f'
         --> t.topo:5:10
          |
        5 |     feed f = s.out
          |          ^
          = hint: first named at t.topo:4:10
        """,
    )


def test_duplicate_connection() -> None:
    expect(
        """
        topology t {
            element s = cases:Src()
            element d = cases:Sink()
            s.out -> d.in
            s -> d
        }
        """,
        """
        error: duplicate connection s.out -> d.in
         --> t.topo:5:5
          |
        5 |     s -> d
          |     ^^^^^^
          = hint: first made at t.topo:4:5
        """,
    )


def test_push_cycle_names_the_path() -> None:
    expect(
        """
        topology t {
            element s = cases:Src()
            element x = cases:Thing()
            element y = cases:Thing()
            s -> x -> y -> x
        }
        """,
        """
        error: push cycle: x -> y -> x
         --> t.topo:5:15
          |
        5 |     s -> x -> y -> x
          |               ^^^^^^
          = hint: a loop of push connections can deadlock once its queues fill; break the loop with a query connection (?>)
        """,
    )


def test_shard_errors() -> None:
    expect(
        """
        topology t {
            element x = cases:Thing() shard(min=0, max=2)
            element y = cases:Thing() shard(min=1.5, max="a", avg=3)
            element z = cases:Thing() shard(min=1)
        }
        """,
        """
        error: shard(min=0, max=2) is not a range: need 1 <= min <= max
         --> t.topo:2:41
          |
        2 |     element x = cases:Thing() shard(min=0, max=2)
          |                                         ^
          = hint: a shard has at least one member
        """,
        """
        error: shard min must be an integer, got float 1.5
         --> t.topo:3:41
        """,
        """
        error: shard max must be an integer, got str 'a'
         --> t.topo:3:50
        """,
        """
        error: shard(...) takes min, max and key, not 'avg'
         --> t.topo:3:55
          |
        3 |     element y = cases:Thing() shard(min=1.5, max="a", avg=3)
          |                                                       ^^^
          = hint: write shard(min=1, max=8), or shard(min=1, max=8, key="field")
        """,
        """
        error: shard(...) needs max, the largest number of members
         --> t.topo:4:31
          |
        4 |     element z = cases:Thing() shard(min=1)
          |                               ^^^^^^^^^^^^
          = hint: write shard(min=1, max=8); min defaults to 1
        """,
    )


def test_shards_of_classes_that_cannot_be_sharded_that_way() -> None:
    expect(
        """
        topology t {
            element s = cases:Src() shard(max=2)
            element c = Count() shard(max=2)
            element k = Count() shard(max=2, key="x")
            element n = KeyCount(key="name") shard(max=4, key="x")
            element w = KeyCount(key="x") shard(max=4, key=["a", 3])
            element v = KeyCount(key="x") shard(max=4)
            s.out -> c.in; s.out -> k.in; s.out -> n.in; s.out -> w.in; s.out -> v.in
        }
        """,
        """
        error: 's' (Src) cannot be a shard: it has no push in-port to spread over members
         --> t.topo:2:29
          |
        2 |     element s = cases:Src() shard(max=2)
          |                             ^^^^^^^^^^^^
          = hint: shard the element that receives its records instead
        """,
        """
        error: 'c' (Count) keeps state, so a pool (a shard without key) would split it arbitrarily between members
         --> t.topo:3:25
          |
        3 |     element c = Count() shard(max=2)
          |                         ^^^^^^^^^^^^
          = hint: Count cannot move its state between members; drop shard(...)
        """,
        """
        error: 'k' (Count) keeps state it cannot move between members: the class defines snapshot() but not export_partitions()/import_partitions()
         --> t.topo:4:42
          |
        4 |     element k = Count() shard(max=2, key="x")
          |                                          ^^^
          = hint: define both hooks (docs/shards.md), or drop shard(...)
        """,
        """
        error: KeyCount keeps its state by field 'name' (parameter key); its keyed shard must route on that field, not x
         --> t.topo:5:55
          |
        5 |     element n = KeyCount(key="name") shard(max=4, key="x")
          |                                                       ^^^
          = hint: write key="name"
        """,
        """
        error: shard key must be a field name or a list of field names, got ['a', 3]
         --> t.topo:6:52
          |
        6 |     element w = KeyCount(key="x") shard(max=4, key=["a", 3])
          |                                                    ^^^^^^^^
          = hint: write key="objectId", key="candidate.ra" or key=["src", "dst"]
        """,
        """
        error: 'v' (KeyCount) keeps state, so a pool (a shard without key) would split it arbitrarily between members
         --> t.topo:7:35
          |
        7 |     element v = KeyCount(key="x") shard(max=4)
          |                                   ^^^^^^^^^^^^
          = hint: give the shard a key: shard(min=1, max=4, key="field")
        """,
    )


def test_feed_must_be_a_push_out_port() -> None:
    expect(
        """
        topology t {
            element y = cases:Thing()
            element p = cases:Probe()
            feed a = y.in
            feed b = p.ask
        }
        """,
        """
        error: feed 'a' must name a push out-port; y.in is a push in-port
         --> t.topo:4:16
          |
        4 |     feed a = y.in
          |                ^^
          = hint: a feed publishes the records an element pushes out
        """,
        "error: feed 'b' must name a push out-port; p.ask is a query out-port",
    )


def test_fuse_errors() -> None:
    expect(
        """
        topology t {
            element s = cases:Src() on n1
            element x = cases:Thing() shard(max=2)
            element y = cases:Thing() on n2
            element z = cases:Thing()
            fuse s, x
            fuse s, nope
            fuse z, y, s
        }
        """,
        """
        error: sharded element 'x' cannot be fused
         --> t.topo:6:13
          |
        6 |     fuse s, x
          |             ^
          = hint: a shard runs as several processes; drop it from fuse or drop shard(...)
        """,
        """
        error: 's' is in two fuse groups
         --> t.topo:7:10
          |
        7 |     fuse s, nope
          |          ^
          = hint: an element runs in one process; merge the two fuse statements
        """,
        """
        error: unknown element 'nope' in fuse
         --> t.topo:7:13
          |
        7 |     fuse s, nope
          |             ^^^^
          = hint: elements declared here: s, x, y, z
        """,
        """
        error: fused elements are placed on different nodes: 'y' on n2, 's' on n1
         --> t.topo:8:16
          |
        8 |     fuse z, y, s
          |                ^
          = hint: fused elements run in one process, so on one node
        """,
    )


def test_group_instantiation_errors() -> None:
    expect(
        """
        group G(a, b=1) {
            element f = cases:Filt(where=a, limit=b)
            expose in = f.in
        }
        topology t {
            element s = cases:Src()
            element g = G(b=2, c=3) shard(max=2)
            s.out -> g.inp
        }
        """,
        """
        error: group G needs parameter 'a'
         --> t.topo:7:17
          |
        7 |     element g = G(b=2, c=3) shard(max=2)
          |                 ^
          = hint: give it a value: G(a=...), or a default in the group
        """,
        """
        error: group G has no parameter 'c'
         --> t.topo:7:24
          |
        7 |     element g = G(b=2, c=3) shard(max=2)
          |                        ^
          = hint: G takes: a, b
        """,
        """
        error: group instance 'g' cannot be sharded
         --> t.topo:7:29
          |
        7 |     element g = G(b=2, c=3) shard(max=2)
          |                             ^^^^^^^^^^^^
          = hint: a group is several elements; put shard(...) on elements inside group G
        """,
        """
        error: group instance 'g' (G) exposes no port 'inp'
         --> t.topo:8:16
          |
        8 |     s.out -> g.inp
          |                ^^^
          = hint: did you mean 'in'?
        """,
    )


def test_group_parameter_errors_point_at_the_value_given() -> None:
    out = expect(
        """
        group G(a) {
            element f = cases:Filt(where="x", limit=a)
            element h = cases:Thing(x=zz)
        }
        topology t {
            element g = G(a="many")
        }
        """,
        """
        error: group G has no parameter 'zz'
         --> t.topo:3:31
          |
        3 |     element h = cases:Thing(x=zz)
          |                               ^^
          = hint: G takes: a
        """,
        """
        error: parameter 'limit' of cases:Filt must be int, got str 'many'
         --> t.topo:6:21
          |
        6 |     element g = G(a="many")
          |                     ^^^^^^
        """,
    )
    assert "needs parameter" not in out


def test_bare_name_outside_a_group_is_not_a_value() -> None:
    out = expect(
        """
        topology t {
            element s = cases:Src(count=n)
        }
        """,
        """
        error: 'n' is not a value
         --> t.topo:2:33
          |
        2 |     element s = cases:Src(count=n)
          |                                 ^
          = hint: strings need quotes: write "n"; bare names refer to group parameters, and this is not inside a group
        """,
    )
    assert out.count("error:") == 1


def test_group_structure_errors() -> None:
    expect(
        """
        group G(p=q) {
            element f = cases:Thing()
            element h = G()
            expose in = f.in
            expose in = f.in
            expose out = nope.out
            feed x = f.out
        }
        topology t {
            element g = G()
            expose q = g.out
        }
        """,
        """
        error: the default of group parameter 'p' must be a literal value
         --> t.topo:1:11
          |
        1 | group G(p=q) {
          |           ^
          = hint: write a string in quotes ("q"), a number, true/false/null, a list or a map
        """,
        """
        error: group G contains itself: G -> G
         --> t.topo:3:17
          |
        3 |     element h = G()
          |                 ^
          = hint: a group may use other groups, but not itself
        """,
        """
        error: duplicate exposed port 'in'
         --> t.topo:5:12
        """,
        """
        error: unknown element 'nope'
         --> t.topo:6:18
          |
        6 |     expose out = nope.out
          |                  ^^^^
          = hint: elements declared here: f, h
        """,
        """
        error: 'feed' is only allowed in a topology
         --> t.topo:7:10
        """,
        """
        error: 'expose' is only allowed inside a group
          --> t.topo:11:12
        """,
    )


def test_bare_group_instance_with_no_matching_exposed_port() -> None:
    expect(
        """
        group G() {
            element f = cases:Thing()
            expose in = f.in
        }
        topology t {
            element s = cases:Src()
            element g = G()
            g -> s
        }
        """,
        """
        error: 'g' has no push out-port to connect from
         --> t.topo:8:5
          |
        8 |     g -> s
          |     ^
          = hint: its ports: in
        """,
    )


def test_all_errors_are_collected_in_source_order() -> None:
    out = rendered(
        """
        topology t {
            element a = cases:Nope()
            element b = cases:Src(count="x")
            a.out -> zz.in
        }
        """
    )
    heads = [line for line in out.splitlines() if line.startswith("error:")]
    assert heads == [
        "error: module 'cases' has no class 'Nope'",
        "error: parameter 'count' of cases:Src must be int, got str 'x'",
        "error: unknown element 'zz'",
    ]


def test_a_fuse_statement_longer_than_a_process_can_hold_is_an_error() -> None:
    """Before: fusion capped its own chains at 40 but took a longer fuse as written."""
    names = [f"m{i}" for i in range(41)]
    elements = "\n".join(f'    element {n} = Map(set={{"x": "1"}})' for n in names)
    out = rendered(
        "topology t {\n    element src = Generate(count=1)\n"
        f"{elements}\n    src -> {' -> '.join(names)}\n    fuse {', '.join(names)}\n}}\n"
    )
    assert out.startswith(
        "error: fuse lists 41 elements; at most 40 run in one process\n  --> t.topo:45:10\n"
    ), out
    assert "split the list into several fuse statements" in out
    names.pop()  # 40 is fine
    assert "fuse lists" not in rendered(
        "topology t {\n    element src = Generate(count=1)\n"
        + "\n".join(f'    element {n} = Map(set={{"x": "1"}})' for n in names)
        + f"\n    src -> {' -> '.join(names)}\n    fuse {', '.join(names)}\n"
        "    element bad = Nope()\n}\n"
    )
