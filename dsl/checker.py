"""Semantic checks over the flat IR: classes, ports, parameters, fields, cycles, placement."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from typing import Any

from datablox.dsl import ir
from datablox.dsl.calls import calls_of, check_calls
from datablox.dsl.classes import Loaded, load_classes
from datablox.dsl.diagnostics import Diagnostic, Location, error, unique, warning
from datablox.dsl.limits import MAX_FUSED_CHAIN
from datablox.dsl.paramcheck import (
    hook_location,
    param_location,
    param_problems,
    resolve_paths,
    shard_problems,
    uncarried,
)
from datablox.dsl.shardcheck import class_problems
from datablox.element import Element
from datablox.filenames import input_files
from datablox.ports import Port, suggest, types_compatible

Resolver = Callable[[str], type[Element]]
_OP = {"push": "->", "query": "?>"}


def _port_list(cls: type[Element]) -> str:
    names = [f"{p.name} ({p.direction} {p.kind})" for p in cls.ports]
    return ", ".join(names) if names else "none"


def _fields(fields: Any) -> str:
    return ", ".join(f"{k} ({v})" for k, v in fields.items()) or "no fields"


class _Checker:
    def __init__(
        self,
        topo: ir.Topology,
        spans: ir.Spans,
        resolve: Resolver | None,
        group_names: Sequence[str],
    ) -> None:
        self.topo = topo
        self.spans = spans
        self.resolve = resolve
        self.group_names = list(group_names)
        self.diags: list[Diagnostic] = []
        self.by_name: dict[str, int] = {}
        self.classes: list[type[Element] | None] = []
        self.loaded: dict[str, Loaded] = {}
        self.path_base: str | None = None
        #: elements whose parameters have their declared types (and resolved paths)
        self.params_ok: set[int] = set()

    def err(self, message: str, loc: Location | None, hint: str | None = None) -> None:
        self.diags.append(error(message, loc, hint))

    def at(self, *keys: tuple[Any, ...]) -> Location | None:
        return self.spans.at(*keys)

    # ---- elements -----------------------------------------------------------
    def elements(self) -> None:
        for i, el in enumerate(self.topo.elements):
            if el.name in self.by_name:
                first = self.at(("element", self.by_name[el.name]))
                self.err(
                    f"duplicate element name '{el.name}'",
                    self.at(("element", i)),
                    f"first declared at {first}" if first else None,
                )
            else:
                self.by_name[el.name] = i
            cls = self.load_class(i, el)
            self.classes.append(cls)
            if cls is not None:
                self.params(i, el, cls)
            self.shard(i, el, cls)

    def load_class(self, i: int, el: ir.Element) -> type[Element] | None:
        found = self.loaded.get(el.cls)
        if found is None or found.error is None:
            return found.cls if found else None
        exc = found.error
        hint = exc.hint
        near = suggest(el.cls, self.group_names)
        if near and exc.message.startswith("unknown element class"):
            hint = f"did you mean group '{near}'?"
        self.err(exc.message, self.at(("class", i)), hint)
        return None

    def params(self, i: int, el: ir.Element, cls: type[Element]) -> None:
        problems = param_problems(el, cls)
        for problem in problems:
            if problem.param not in el.unchecked:
                self.err(
                    problem.message, param_location(self.spans, i, el, cls, problem), problem.hint
                )
        if problems:
            return
        self.params_ok.add(i)
        for found in self.loaded[el.cls].problems_for(i, el.cls, el.params):
            self.err(found.message, hook_location(self.spans, i, el, found), found.hint)
        if self.path_base is not None:
            resolve_paths(el, cls, self.path_base)

    def shard(self, i: int, el: ir.Element, cls: type[Element] | None) -> None:
        found = shard_problems(i, el, self.spans)
        self.diags.extend(found)
        if cls is not None and not found:
            self.diags.extend(class_problems(i, el, cls, self.spans))

    # ---- ports --------------------------------------------------------------
    def port_of(
        self, key: tuple[Any, ...], ep: ir.Endpoint, direction: str, kind: str
    ) -> Port | None:
        """The port ``ep`` names; picks the only candidate when no port was written."""
        wanted = f"{kind} {direction}-port"
        if ep.choices is not None:
            # A group instance named without a port: choose among its exposed ports.
            found = []
            for exposed, element, port_name in ep.choices:
                j = self.by_name.get(element)
                inner = self.classes[j] if j is not None else None
                if inner is None:
                    return None  # its class failed to load, already reported
                port = inner.port(port_name)
                if port is not None and port.kind == kind and port.direction == direction:
                    found.append((exposed, element, port))
            labels = [c[0] for c in found]
            listing = ", ".join(c[0] for c in ep.choices) or "none"
        else:
            i = self.by_name.get(ep.element)
            if i is None:
                near = suggest(ep.element, list(self.by_name))
                self.err(
                    f"unknown element '{ep.element}'",
                    self.at(key),
                    f"did you mean '{near}'?" if near else None,
                )
                return None
            cls = self.classes[i]
            if cls is None:
                return None
            if ep.port is not None:
                port = cls.port(ep.port)
                if port is None:
                    near = suggest(ep.port, [p.name for p in cls.ports])
                    hint = f"did you mean '{near}'? " if near else ""
                    self.err(
                        f"element '{ep.element}' ({self.topo.elements[i].cls}) has no port "
                        f"'{ep.port}'",
                        self.at(key),
                        f"{hint}its ports: {_port_list(cls)}",
                    )
                return port
            found = [
                ("", ep.element, p)
                for p in cls.ports
                if p.kind == kind and p.direction == direction
            ]
            labels = [c[2].name for c in found]
            listing = _port_list(cls)
        if len(found) == 1:
            ep.element, ep.port, ep.choices = found[0][1], found[0][2].name, None
            return found[0][2]
        side = "from" if direction == "out" else "to"
        if not found:
            self.err(
                f"'{ep.element}' has no {wanted} to connect {side}",
                self.at(key),
                f"its ports: {listing}",
            )
        else:
            self.err(
                f"'{ep.element}' has {len(found)} {wanted}s ({', '.join(labels)}); say which one",
                self.at(key),
                f"write {ep.element}.{labels[0]}",
            )
        return None

    def as_instance(self, ep: ir.Endpoint, port: Port) -> Port:
        """The port as the element's parameters shape it (``Element.instance_port``)."""
        i = self.by_name.get(ep.element)
        cls = self.classes[i] if i is not None else None
        if cls is None or i is None:
            return port
        params = {k: v for k, v in self.topo.elements[i].params.items() if isinstance(k, str)}
        return cls.instance_port(port, params)

    # ---- connections --------------------------------------------------------
    def connections(self) -> list[tuple[int, str, str]]:
        """Check every connection; returns the push edges (connection id, from, to)."""
        seen: dict[tuple[str, ...], int] = {}
        edges = []
        for c, conn in enumerate(self.topo.connections):
            src = self.port_of(("from", c), conn.src, "out", conn.kind)
            dst = self.port_of(("to", c), conn.dst, "in", conn.kind)
            if src is None or dst is None:
                continue
            src, dst = self.as_instance(conn.src, src), self.as_instance(conn.dst, dst)
            if self.link(c, conn, src, dst) and conn.kind == "push":
                edges.append((c, conn.src.element, conn.dst.element))
            key = (conn.kind, str(conn.src), str(conn.dst))
            if key in seen:
                self.err(
                    f"duplicate connection {conn.src} {_OP[conn.kind]} {conn.dst}",
                    self.at(("conn", c)),
                    f"first made at {self.at(('conn', seen[key]))}",
                )
            seen.setdefault(key, c)
        return edges

    def link(self, c: int, conn: ir.Connection, src: Port, dst: Port) -> bool:
        ok = True
        if src.direction != "out":
            ok = False
            self.err(
                f"cannot connect from '{conn.src}': it is an in-port",
                self.at(("from", c)),
                "the left side of a connection is an out-port; are the sides swapped?",
            )
        if dst.direction != "in":
            ok = False
            self.err(
                f"cannot connect to '{conn.dst}': it is an out-port",
                self.at(("to", c)),
                "the right side of a connection is an in-port; are the sides swapped?",
            )
        wrong = [(key, p) for key, p in (("from", src), ("to", dst)) if p.kind != conn.kind]
        other = "query" if conn.kind == "push" else "push"
        if len(wrong) == 2:
            ok = False
            self.err(
                f"push connected to query: '{_OP[conn.kind]}' joins {conn.kind} ports, but "
                f"{conn.src} and {conn.dst} are {other} ports",
                self.at(("conn", c)),
                f"use '{_OP[other]}' for a {other} connection",
            )
        elif wrong:
            ok = False
            self.err(
                f"push connected to query: {conn.src} is a {src.kind} port but {conn.dst} "
                f"is a {dst.kind} port",
                self.at((wrong[0][0], c)),
                "a connection joins two push ports (->) or two query ports (?>)",
            )
        if ok and src.fields is not None and dst.fields is not None:
            self.record_fields(c, conn, src, dst)
        return ok

    def record_fields(self, c: int, conn: ir.Connection, src: Port, dst: Port) -> None:
        assert src.fields is not None and dst.fields is not None
        for name, need in dst.fields.items():
            got = src.fields.get(name)
            if got is None:
                self.err(
                    f"record field '{name}' ({need}) needed by {conn.dst} is not produced "
                    f"by {conn.src}",
                    self.at(("conn", c)),
                    f"{conn.src} produces: {_fields(src.fields)}",
                )
            elif not types_compatible(got, need):
                self.err(
                    f"record field '{name}' is {got} from {conn.src} but {conn.dst} needs {need}",
                    self.at(("conn", c)),
                    "convert it on the way, e.g. with a Map element",
                )

    def cycles(self, edges: list[tuple[int, str, str]]) -> None:
        out: dict[str, list[tuple[int, str]]] = {}
        for c, a, b in edges:
            out.setdefault(a, []).append((c, b))
        state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
        path: list[str] = []

        def visit(node: str) -> None:
            state[node] = 1
            path.append(node)
            for c, nxt in out.get(node, []):
                if state.get(nxt) == 1:
                    loop = [*path[path.index(nxt) :], nxt]
                    self.err(
                        f"push cycle: {' -> '.join(loop)}",
                        self.at(("conn", c)),
                        "a loop of push connections can deadlock once its queues fill; "
                        "break the loop with a query connection (?>)",
                    )
                elif nxt not in state:
                    visit(nxt)
            path.pop()
            state[node] = 2

        for el in self.topo.elements:
            if el.name not in state:
                visit(el.name)

    # ---- feeds, fuse, unconnected ports -------------------------------------
    def feeds(self) -> None:
        seen: set[str] = set()
        for f, feed in enumerate(self.topo.feeds):
            if feed.name in seen:
                self.err(f"duplicate feed name '{feed.name}'", self.at(("feed", f)))
            seen.add(feed.name)
            port = self.port_of(("feed.target", f), feed.target, "out", "push")
            if port is not None and (port.kind, port.direction) != ("push", "out"):
                self.err(
                    f"feed '{feed.name}' must name a push out-port; {feed.target} is a "
                    f"{port.kind} {port.direction}-port",
                    self.at(("feed.target", f)),
                    "a feed publishes the records an element pushes out",
                )

    def fuse(self) -> None:
        owner: dict[str, int] = {}
        for g, members in enumerate(self.topo.fuse):
            nodes: dict[str, str] = {}
            if len(set(members)) < 2:
                self.diags.append(
                    warning(
                        f"fuse names one element ('{members[0]}'): it fuses nothing",
                        self.at(("fuse", g, 0)),
                        "fuse lists two elements or more, to run in one process",
                    )
                )
            if len(set(members)) > MAX_FUSED_CHAIN:
                self.err(
                    f"fuse lists {len(set(members))} elements; at most {MAX_FUSED_CHAIN} run "
                    "in one process",
                    self.at(("fuse", g, 0)),
                    "fused elements call each other directly and Python's stack holds about "
                    f"{MAX_FUSED_CHAIN} of them; split the list into several fuse statements",
                )
            for j, name in enumerate(members):
                loc = self.at(("fuse", g, j), ("fuse", g, 0))
                if name in members[:j]:
                    self.err(f"'{name}' is named twice in one fuse", loc, "name it once")
                    continue
                i = self.by_name.get(name)
                if i is None:
                    near = suggest(name, list(self.by_name))
                    self.err(
                        f"unknown element '{name}' in fuse",
                        loc,
                        f"did you mean '{near}'?" if near else None,
                    )
                    continue
                if owner.setdefault(name, g) != g:
                    self.err(
                        f"'{name}' is in two fuse groups",
                        loc,
                        "an element runs in one process; merge the two fuse statements",
                    )
                el = self.topo.elements[i]
                if el.shard is not None:
                    self.err(
                        f"sharded element '{name}' cannot be fused",
                        loc,
                        "a shard runs as several processes; drop it from fuse or drop shard(...)",
                    )
                if el.node is not None:
                    first = nodes.setdefault(el.node, name)
                    if len(nodes) > 1 and first == name:
                        placed = ", ".join(f"'{m}' on {n}" for n, m in nodes.items())
                        self.err(
                            f"fused elements are placed on different nodes: {placed}",
                            loc,
                            "fused elements run in one process, so on one node",
                        )

    def one_writer_per_file(self) -> None:
        """Two elements writing one file would interleave (and cut) each other's lines."""
        writers: dict[str, int] = {}
        for i, el in enumerate(self.topo.elements):
            cls = self.classes[i]
            for name in getattr(cls, "writes", ()) if cls is not None else ():
                value = el.params.get(name)
                if not isinstance(value, str) or not value:
                    continue
                key = os.path.normpath(os.path.abspath(os.path.expanduser(value)))
                first = writers.setdefault(key, i)
                if first != i:
                    other = self.topo.elements[first].name
                    self.err(
                        f"element '{el.name}' writes {value!r}, which element '{other}' writes too",
                        self.at(("value", i, name), ("class", i)),
                        "two writers of one file interleave their lines; give each its own "
                        "file, or send both streams to one sink",
                    )

    def callables(self) -> None:
        """The functions elements name in ``calls`` parameters (Map's ``fn``) are imported,
        in the child process that imports user code, and each that cannot be is an error."""
        calls = [
            call
            for i, el in enumerate(self.topo.elements)
            if i in self.params_ok and (cls := self.classes[i]) is not None
            for call in calls_of(i, el.cls, cls, el.params)
        ]
        if not calls:
            return
        for call, found in check_calls(calls, in_process=self.resolve is not None).items():
            el = self.topo.elements[call.index]
            self.err(found.message, hook_location(self.spans, call.index, el, found), found.hint)

    def missing_inputs(self) -> None:
        """A file an element reads at start that is not there is a warning: it may yet be
        made before the run, and the element names it if it is still missing then."""
        for i, el in enumerate(self.topo.elements):
            cls = self.classes[i]
            if cls is None or i not in self.params_ok:
                continue
            for name in getattr(cls, "reads", ()):
                value = el.params.get(name)
                if not isinstance(value, str) or not value:
                    continue
                missing = input_files(value)[1]
                if missing is not None:
                    self.diags.append(
                        warning(
                            f"element '{el.name}' reads its {name}, but {missing} (yet)",
                            self.at(("value", i, name), ("class", i)),
                            f"{el.cls} opens it when the run starts; relative paths resolve "
                            "against the .topo file's folder",
                        )
                    )

    def unconnected(self) -> list[Diagnostic]:
        used: set[tuple[str, str]] = set()
        for conn in self.topo.connections:
            for ep in (conn.src, conn.dst):
                if ep.port is not None:
                    used.add((ep.element, ep.port))
        for feed in self.topo.feeds:
            if feed.target.port is not None:
                used.add((feed.target.element, feed.target.port))
        found = []
        for i, el in enumerate(self.topo.elements):
            cls = self.classes[i]
            given = {p.name: p.default for p in cls.params} if cls is not None else {}
            given.update(el.params)
            for port in cls.ports if cls is not None else ():
                if (el.name, port.name) in used or not port.used_with(given):
                    continue
                if port.kind == "query" and port.direction == "out":
                    found.append(
                        warning(
                            f"query out-port '{el.name}.{port.name}' is not connected: every "
                            "question asked on it fails (its record goes to the dead letters)",
                            self.at(("element", i)),
                            f"connect it to an element that answers: {el.name}.{port.name} ?> "
                            "OTHER.PORT",
                        )
                    )
                if port.kind != "push":
                    continue
                loc = self.at(("element", i))
                serves_queries = any(
                    q.kind == "query" and q.direction == "in" and (el.name, q.name) in used
                    for q in cls.ports  # type: ignore[union-attr]
                )
                if port.direction == "in" and serves_queries:
                    # a store preloaded at start that only answers queries is a normal set-up
                    continue
                if port.direction == "in":
                    found.append(
                        warning(
                            f"push in-port '{el.name}.{port.name}' has no incoming connection",
                            loc,
                            "connect an out-port to it, or remove the element",
                        )
                    )
                else:
                    found.append(
                        warning(
                            f"push out-port '{el.name}.{port.name}' is not connected: its records "
                            "are discarded",
                            loc,
                            f"connect it, or publish it: feed NAME = {el.name}.{port.name}",
                        )
                    )
        return found

    def run(self) -> None:
        if not self.topo.elements:
            self.diags.append(
                warning(
                    f"topology '{self.topo.name}' has no elements: a run does nothing",
                    self.at(("topology",)),
                    "declare elements: element NAME = Class(...)",
                )
            )
        self.loaded = load_classes(self.topo, self.resolve)
        self.elements()
        edges = self.connections()
        self.cycles(edges)
        self.feeds()
        self.fuse()
        self.one_writer_per_file()
        self.callables()
        self.missing_inputs()
        self.diags.extend(self.unconnected())


def check(
    topology: ir.Topology,
    spans: ir.Spans,
    resolve: Resolver | None = None,
    group_names: Sequence[str] = (),
    path_base: str | None = None,
) -> tuple[ir.Topology, list[Diagnostic]]:
    """Check ``topology``; returns a copy with every endpoint's port filled in, and diagnostics.

    Pure apart from loading element classes to read their declared ports and
    parameters: through ``resolve`` when given, else built-ins in-process and
    user classes in a child process (dsl.classes); importing the functions
    elements name, the same way (dsl.calls); and looking for the files elements
    read (a missing one is a warning). ``group_names`` improve
    did-you-mean hints. With ``path_base``, relative values of ``path``
    parameters in the copy are made absolute against that folder.
    """
    diags, topology = uncarried(topology, spans)
    topo = copy.deepcopy(topology)
    checker = _Checker(topo, spans, resolve, group_names)
    checker.path_base = path_base
    checker.run()
    return topo, unique(diags + checker.diags)
