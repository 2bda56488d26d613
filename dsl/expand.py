"""Expanding groups: from the syntax tree to the flat IR and its span table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datablox.dsl import ast, ir
from datablox.dsl.diagnostics import Diagnostic, Span, error
from datablox.dsl.loader import Program
from datablox.dsl.shardcheck import key_paths
from datablox.dsl.values import did_you_mean, find_ref, to_python

#: Values a group instance gives its parameters; None marks one already reported.
Env = dict[str, ast.Value | None]


@dataclass
class _Local:
    """A name declared in one body: an element, or an instance of ``group``."""

    full: str
    stmt: ast.ElementStmt
    group: ast.GroupDef | None


@dataclass
class _Scope:
    prefix: str
    names: dict[str, _Local]
    exposes: dict[str, ast.ExposeStmt]
    #: Groups enclosing this body, outermost first; guards against a group containing itself.
    stack: tuple[str, ...]


class _Expander:
    def __init__(self, program: Program, search_path: list[str]) -> None:
        assert program.main is not None and program.main.topologies
        self.groups = program.groups
        self.topo = program.main.topologies[0]
        self.ir = ir.Topology(self.topo.name.text, list(search_path))
        self.spans = ir.Spans()
        self.diags: list[Diagnostic] = []
        self.members: dict[str, list[str]] = {}
        self.scopes: dict[str, _Scope] = {}
        self.feed_names: dict[str, Span] = {}

    def err(self, message: str, span: Span, hint: str | None = None) -> None:
        self.diags.append(error(message, span, hint))

    # ---- scopes -------------------------------------------------------------
    def scope(self, body: list[ast.Stmt], prefix: str, stack: tuple[str, ...]) -> _Scope:
        cached = self.scopes.get(prefix)
        if cached is not None:
            return cached
        scope = _Scope(prefix, {}, {}, stack)
        for stmt in body:
            if isinstance(stmt, ast.ElementStmt):
                first = scope.names.get(stmt.name.text)
                if first is not None:
                    self.err(
                        f"duplicate element name '{stmt.name.text}'",
                        stmt.name.span,
                        f"first declared at {first.stmt.name.span}",
                    )
                    continue
                ref = stmt.class_ref.text
                scope.names[stmt.name.text] = _Local(
                    prefix + stmt.name.text, stmt, self.groups.get(ref)
                )
            elif isinstance(stmt, ast.ExposeStmt):
                if stmt.name.text in scope.exposes:
                    first_span = scope.exposes[stmt.name.text].name.span
                    self.err(
                        f"duplicate exposed port '{stmt.name.text}'",
                        stmt.name.span,
                        f"first exposed at {first_span}",
                    )
                    continue
                scope.exposes[stmt.name.text] = stmt
        self.scopes[prefix] = scope
        return scope

    def inner_scope(self, local: _Local, outer: _Scope) -> _Scope:
        assert local.group is not None
        stack = (*outer.stack, local.group.name.text)
        return self.scope(local.group.body, local.full + "/", stack)

    # ---- endpoints ----------------------------------------------------------
    def resolve(self, ep: ast.Endpoint, scope: _Scope) -> ir.Endpoint | None:
        local = scope.names.get(ep.element.text)
        if local is None:
            self.err(
                f"unknown element '{ep.element.text}'",
                ep.element.span,
                did_you_mean(ep.element.text, list(scope.names), "elements declared here"),
            )
            return None
        if local.group is None:
            return ir.Endpoint(local.full, ep.port.text if ep.port else None)
        if local.group.name.text in scope.stack:
            return None  # a group containing itself; reported where it is instantiated
        inner = self.inner_scope(local, scope)
        if ep.port is None:
            choices = []
            for name, expose in inner.exposes.items():
                target = self.resolve(expose.target, inner)
                if target is not None and target.port is not None:
                    choices.append((name, target.element, target.port))
            return ir.Endpoint(local.full, None, choices)
        exposed = inner.exposes.get(ep.port.text)
        if exposed is None:
            gname = local.group.name.text
            self.err(
                f"group instance '{local.full}' ({gname}) exposes no port '{ep.port.text}'",
                ep.port.span,
                did_you_mean(ep.port.text, list(inner.exposes), f"{gname} exposes"),
            )
            return None
        return self.resolve(exposed.target, inner)

    # ---- values -------------------------------------------------------------
    def subst(self, value: ast.Value, env: Env | None, owner: str) -> ast.Value | None:
        """``value`` with group parameter references replaced; None after an error."""
        if isinstance(value, ast.Ref):
            if env is None:
                self.err(
                    f"'{value.name}' is not a value",
                    value.span,
                    f'strings need quotes: write "{value.name}"; bare names refer to '
                    "group parameters, and this is not inside a group",
                )
                return None
            if value.name not in env:
                self.err(
                    f"group {owner} has no parameter '{value.name}'",
                    value.span,
                    did_you_mean(value.name, list(env), f"{owner} takes"),
                )
                return None
            return env[value.name]
        if isinstance(value, ast.ListV):
            items = [self.subst(v, env, owner) for v in value.items]
            if any(i is None for i in items):
                return None
            return ast.ListV([i for i in items if i is not None], value.span)
        if isinstance(value, ast.MapV):
            pairs = [(k, self.subst(v, env, owner)) for k, v in value.items]
            if any(v is None for _, v in pairs):
                return None
            return ast.MapV([(k, v) for k, v in pairs if v is not None], value.span)
        return value

    def args(
        self, args: list[ast.Arg], env: Env | None, owner: str
    ) -> dict[str, tuple[ast.Arg, ast.Value | None]]:
        """Arguments by name, substituted; repeats are reported and dropped."""
        out: dict[str, tuple[ast.Arg, ast.Value | None]] = {}
        for arg in args:
            first = out.get(arg.name.text)
            if first is not None:
                self.err(
                    f"parameter '{arg.name.text}' given twice",
                    arg.name.span,
                    f"first given at {first[0].name.span}",
                )
                continue
            out[arg.name.text] = (arg, self.subst(arg.value, env, owner))
        return out

    # ---- statements ---------------------------------------------------------
    def body(
        self,
        body: list[ast.Stmt],
        scope: _Scope,
        env: Env | None,
        owner: str,
        node: ast.Name | None,
    ) -> None:
        in_group = env is not None
        fuses = []
        for stmt in body:
            if isinstance(stmt, ast.ElementStmt):
                local = scope.names.get(stmt.name.text)
                if local is None or local.stmt is not stmt:
                    continue  # a duplicate, already reported
                if local.group is None:
                    self.element(local, env, owner, node)
                else:
                    self.instantiate(local, scope, env, owner, node)
            elif isinstance(stmt, ast.ConnectStmt):
                self.connect(stmt, scope)
            elif isinstance(stmt, ast.ExposeStmt):
                if not in_group:
                    self.err(
                        "'expose' is only allowed inside a group",
                        stmt.name.span,
                        "a topology's ports are its feeds: `feed NAME = element.port`",
                    )
                else:
                    self.resolve(stmt.target, scope)
            elif isinstance(stmt, ast.FeedStmt):
                if in_group:
                    self.err(
                        "'feed' is only allowed in a topology",
                        stmt.name.span,
                        "expose the port from the group and name the feed in the topology",
                    )
                else:
                    self.feed(stmt, scope)
            else:
                fuses.append(stmt)
        # Fuse after the loop: it may name group instances declared after it.
        for fuse in fuses:
            self.fuse(fuse, scope)

    def element(self, local: _Local, env: Env | None, owner: str, node: ast.Name | None) -> None:
        stmt = local.stmt
        idx = len(self.ir.elements)
        params: dict[str, Any] = {}
        unchecked = set()
        for name, (arg, value) in self.args(stmt.args, env, owner).items():
            if value is None:
                unchecked.add(name)
                continue
            params[name] = to_python(value)
            self.spans[("arg", idx, name)] = arg.name.span
            self.spans[("value", idx, name)] = value.span
            if isinstance(value, ast.MapV):
                # one level in, so a check_params hook can point at a map entry
                for key, item in value.items:
                    self.spans[("value", idx, name, key)] = item.span
        placed = node or stmt.node
        if placed is not None:
            self.spans[("node", idx)] = placed.span
        self.spans[("element", idx)] = stmt.name.span
        self.spans[("class", idx)] = stmt.class_ref.span
        element = ir.Element(
            local.full, stmt.class_ref.text, params, placed.text if placed else None
        )
        element.unchecked = unchecked
        element.shard = self.shard(stmt, element, idx, env, owner)
        self.ir.elements.append(element)

    def shard(
        self, stmt: ast.ElementStmt, element: ir.Element, idx: int, env: Env | None, owner: str
    ) -> dict[str, Any] | None:
        if stmt.shard is None or stmt.shard_span is None:
            return None
        self.spans[("shard", idx)] = stmt.shard_span
        shard: dict[str, Any] = {"min": 1, "max": None}
        key_span = stmt.shard_span
        for name, (arg, value) in self.args(stmt.shard, env, owner).items():
            if name not in ("min", "max", "key"):
                self.err(
                    f"shard(...) takes min, max and key, not '{name}'",
                    arg.name.span,
                    'write shard(min=1, max=8), or shard(min=1, max=8, key="field")',
                )
                continue
            if value is None:
                element.unchecked.add(f"shard.{name}")
            else:
                shard[name] = to_python(value)
                self.spans[(f"shard.{name}", idx)] = value.span
                if name == "key":
                    key_span = value.span
        if "max" not in {a.name.text for a in stmt.shard}:
            element.unchecked.add("shard.max")
            self.err(
                "shard(...) needs max, the largest number of members",
                stmt.shard_span,
                "write shard(min=1, max=8); min defaults to 1",
            )
        if "key" in shard:
            paths = key_paths(shard["key"])
            if paths is None:
                element.unchecked.add("shard.key")
                self.err(
                    f"shard key must be a field name or a list of field names, got "
                    f"{shard['key']!r}",
                    key_span,
                    'write key="objectId", key="candidate.ra" or key=["src", "dst"]',
                )
                del shard["key"]
            else:
                shard["key"] = paths
        return shard

    def instantiate(
        self, local: _Local, scope: _Scope, env: Env | None, owner: str, node: ast.Name | None
    ) -> None:
        stmt, group = local.stmt, local.group
        assert group is not None
        gname = group.name.text
        if stmt.shard_span is not None:
            self.err(
                f"group instance '{local.full}' cannot be sharded",
                stmt.shard_span,
                f"a group is several elements; put shard(...) on elements inside group {gname}",
            )
        if gname in scope.stack:
            chain = " -> ".join([*scope.stack[scope.stack.index(gname) :], gname])
            self.err(
                f"group {gname} contains itself: {chain}",
                stmt.class_ref.span,
                "a group may use other groups, but not itself",
            )
            return
        given = self.args(stmt.args, env, owner)
        declared = list(dict.fromkeys(p.name.text for p in group.params))
        inner_env: Env = {}
        for name, (arg, _) in given.items():
            if name not in declared:
                self.err(
                    f"group {gname} has no parameter '{name}'",
                    arg.name.span,
                    did_you_mean(name, declared, f"{gname} takes"),
                )
        for param in group.params:
            pname = param.name.text
            if pname in given:
                inner_env[pname] = given[pname][1]
            elif param.default is not None and find_ref(param.default) is None:
                inner_env[pname] = param.default
            else:
                if param.default is None:
                    self.err(
                        f"group {gname} needs parameter '{pname}'",
                        stmt.class_ref.span,
                        f"give it a value: {gname}({pname}=...), or a default in the group",
                    )
                inner_env[pname] = None
        inner = self.inner_scope(local, scope)
        start = len(self.ir.elements)
        self.body(group.body, inner, inner_env, gname, stmt.node or node)
        self.members[local.full] = [e.name for e in self.ir.elements[start:]]

    def connect(self, stmt: ast.ConnectStmt, scope: _Scope) -> None:
        for i, op in enumerate(stmt.ops):
            left, right = stmt.endpoints[i], stmt.endpoints[i + 1]
            src, dst = self.resolve(left, scope), self.resolve(right, scope)
            if src is None or dst is None:
                continue
            c = len(self.ir.connections)
            kind = "push" if op.text == "->" else "query"
            self.ir.connections.append(ir.Connection(kind, src, dst))
            self.spans[("from", c)] = (left.port or left.element).span
            self.spans[("to", c)] = (right.port or right.element).span
            a, b = left.span, right.span
            whole = a.line == b.line and a.file == b.file
            self.spans[("conn", c)] = Span(a.file, a.line, a.col, b.end_col) if whole else op.span

    def feed(self, stmt: ast.FeedStmt, scope: _Scope) -> None:
        name = stmt.name.text
        if name in self.feed_names:
            self.err(
                f"duplicate feed name '{name}'",
                stmt.name.span,
                f"first named at {self.feed_names[name]}",
            )
            return
        self.feed_names[name] = stmt.name.span
        target = self.resolve(stmt.target, scope)
        if target is None:
            return
        f = len(self.ir.feeds)
        self.ir.feeds.append(ir.Feed(name, target))
        self.spans[("feed", f)] = stmt.name.span
        self.spans[("feed.target", f)] = (stmt.target.port or stmt.target.element).span

    def fuse(self, stmt: ast.FuseStmt, scope: _Scope) -> None:
        g = len(self.ir.fuse)
        names: list[str] = []
        for member in stmt.members:
            local = scope.names.get(member.text)
            if local is None:
                self.err(
                    f"unknown element '{member.text}' in fuse",
                    member.span,
                    did_you_mean(member.text, list(scope.names), "elements declared here"),
                )
                continue
            for full in self.members.get(local.full, [local.full]):
                self.spans[("fuse", g, len(names))] = member.span
                names.append(full)
        if names:
            self.ir.fuse.append(names)

    # ---- groups -------------------------------------------------------------
    def check_group_defs(self) -> None:
        """Problems in a group's header, reported once however often it is used."""
        for group in self.groups.values():
            seen: dict[str, Span] = {}
            for param in group.params:
                pname = param.name.text
                if pname in seen:
                    self.err(
                        f"duplicate parameter '{pname}' in group {group.name.text}",
                        param.name.span,
                        f"first declared at {seen[pname]}",
                    )
                seen.setdefault(pname, param.name.span)
                ref = find_ref(param.default) if param.default is not None else None
                if ref is not None:
                    self.err(
                        f"the default of group parameter '{pname}' must be a literal value",
                        ref.span,
                        f'write a string in quotes ("{ref.name}"), a number, true/false/null, '
                        "a list or a map",
                    )

    def run(self) -> None:
        self.spans[("topology",)] = self.topo.name.span
        self.check_group_defs()
        scope = self.scope(self.topo.body, "", ())
        self.body(self.topo.body, scope, None, "", None)


def expand(
    program: Program, search_path: list[str]
) -> tuple[ir.Topology, ir.Spans, list[Diagnostic], list[str]]:
    """Flatten the program's topology: returns (IR, spans, diagnostics, group names)."""
    expander = _Expander(program, search_path)
    expander.run()
    return expander.ir, expander.spans, expander.diags, list(program.groups)
