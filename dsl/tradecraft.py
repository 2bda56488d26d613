"""Tradecraft JSON: building it from the IR, and reading it back with structural checks."""

from __future__ import annotations

import re
from typing import Any

from datablox.declarations import RESERVED
from datablox.dsl import ir
from datablox.dsl.diagnostics import Diagnostic, JsonPath, error
from datablox.dsl.limits import value_problem
from datablox.dsl.shardcheck import key_paths

VERSION = 1
_TOP_KEYS = {"tradecraft", "name", "search_path", "elements", "connections", "feeds", "fuse"}
_ELEMENT_KEYS = {"id", "name", "class", "params", "node", "shard"}
_CONNECTION_KEYS = {"id", "kind", "from", "to"}
#: A name as a .topo file spells it; an element of a group is ``group/name``.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*")


def _endpoint(ep: ir.Endpoint) -> dict[str, Any]:
    return {"element": ep.element, "port": ep.port}


def to_dict(topo: ir.Topology) -> dict[str, Any]:
    """The canonical tradecraft form (docs/tradecraft.md) of a checked topology."""
    return {
        "tradecraft": VERSION,
        "name": topo.name,
        "search_path": list(topo.search_path),
        "elements": [
            {
                "id": i,
                "name": el.name,
                "class": el.cls,
                "params": el.params,
                "node": el.node,
                "shard": None
                if el.shard is None
                else {
                    "min": el.shard["min"],
                    "max": el.shard["max"],
                    **({"key": el.shard["key"]} if el.shard.get("key") else {}),
                },
            }
            for i, el in enumerate(topo.elements)
        ],
        "connections": [
            {"id": c, "kind": conn.kind, "from": _endpoint(conn.src), "to": _endpoint(conn.dst)}
            for c, conn in enumerate(topo.connections)
        ],
        "feeds": [
            {"name": f.name, "element": f.target.element, "port": f.target.port} for f in topo.feeds
        ],
        "fuse": [list(group) for group in topo.fuse],
    }


class _Reader:
    """Walks a tradecraft dict, collecting every structural problem with its JSON path."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.diags: list[Diagnostic] = []
        self.spans = ir.Spans()

    def loc(self, path: str) -> JsonPath:
        return JsonPath(self.file, path)

    def want(self, value: Any, types: tuple[type, ...], what: str, path: str) -> bool:
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok:
            self.diags.append(error(f"expected {what}, got {type(value).__name__}", self.loc(path)))
        return ok

    def keys(self, obj: dict[str, Any], allowed: set[str], required: set[str], path: str) -> None:
        for key in obj:
            if key not in allowed:
                self.diags.append(
                    error(
                        f"unknown key '{key}'",
                        self.loc(f"{path}.{key}" if path else key),
                        f"allowed keys: {', '.join(sorted(allowed))}",
                    )
                )
        for key in sorted(required - obj.keys()):
            self.diags.append(error(f"missing key '{key}'", self.loc(path or "(top level)")))

    def string(self, obj: dict[str, Any], key: str, path: str, default: Any = None) -> Any:
        if key not in obj:
            return default
        value = obj[key]
        return value if self.want(value, (str,), "a string", f"{path}.{key}") else default

    def spelled(self, name: Any, pattern: re.Pattern[str], what: str, path: str) -> None:
        """An error when ``name`` is not one a .topo file could spell."""
        if not isinstance(name, str) or not name:
            return
        reserved = [part for part in name.split("/") if part in RESERVED]
        if reserved:
            self.diags.append(
                error(
                    f"{what} {name!r} uses '{reserved[0]}', a reserved word of the .topo language",
                    self.loc(path),
                    "choose another name",
                )
            )
        elif not pattern.fullmatch(name):
            nested = " (in a group: group/name)" if pattern is _PATH else ""
            self.diags.append(
                error(
                    f"{what} {name!r} is not a name a .topo file can spell",
                    self.loc(path),
                    "use letters, digits and _, not starting with a digit" + nested,
                )
            )

    def items(self, data: dict[str, Any], key: str) -> list[Any]:
        value = data.get(key, [])
        return value if self.want(value, (list,), "a list", key) else []

    def element(self, i: int, raw: Any) -> ir.Element | None:
        path = f"elements[{i}]"
        if not self.want(raw, (dict,), "an object", path):
            return None
        self.keys(raw, _ELEMENT_KEYS, {"name", "class"}, path)
        if "id" in raw and raw["id"] != i:
            self.diags.append(
                error(
                    f"element id must be {i} (ids count from 0 in order), got {raw['id']!r}",
                    self.loc(f"{path}.id"),
                )
            )
        name = self.string(raw, "name", path, "")
        self.spelled(name, _PATH, "element name", f"{path}.name")
        cls = self.string(raw, "class", path, "")
        params = raw.get("params", {})
        if not self.want(params, (dict,), "an object", f"{path}.params"):
            params = {}
        node = raw.get("node")
        if node is not None and not self.want(node, (str,), "a string or null", f"{path}.node"):
            node = None
        shard = raw.get("shard")
        if shard is not None:
            if self.want(shard, (dict,), "an object or null", f"{path}.shard"):
                self.keys(shard, {"min", "max", "key"}, {"min", "max"}, f"{path}.shard")
                self.spans[("shard", i)] = self.loc(f"{path}.shard")
                if "key" in shard:
                    paths = key_paths(shard["key"])
                    if paths is None:
                        self.diags.append(
                            error(
                                "shard key must be a field name or a list of field names",
                                self.loc(f"{path}.shard.key"),
                            )
                        )
                        shard = {k: v for k, v in shard.items() if k != "key"}
                    else:
                        shard = {**shard, "key": paths}
                for key in ("min", "max", "key"):
                    self.spans[(f"shard.{key}", i)] = self.loc(f"{path}.shard.{key}")
            else:
                shard = None
        self.spans[("element", i)] = self.loc(f"{path}.name")
        self.spans[("class", i)] = self.loc(f"{path}.class")
        self.spans[("node", i)] = self.loc(f"{path}.node")
        params = dict(params)
        unchecked = set()
        for key in list(params):
            self.spans[("arg", i, key)] = self.loc(f"{path}.params.{key}")
            self.spans[("value", i, key)] = self.loc(f"{path}.params.{key}")
            if self.carried(name, key, params[key], f"{path}.params.{key}"):
                continue
            del params[key]
            unchecked.add(key)
        element = ir.Element(name, cls, params, node, dict(shard) if shard else None)
        element.unchecked = unchecked
        return element

    def carried(self, element: str, key: str, value: Any, path: str) -> bool:
        """Whether a parameter value can be carried; reports it when not."""
        found = value_problem(value)
        if found is None:
            return True
        message, hint, inside = found
        self.diags.append(
            error(
                f"parameter '{key}' of element '{element}': {message}",
                self.loc(path + inside),
                hint,
            )
        )
        return False

    def endpoint(self, raw: Any, path: str) -> ir.Endpoint | None:
        if not self.want(raw, (dict,), "an object", path):
            return None
        self.keys(raw, {"element", "port"}, {"element", "port"}, path)
        element = self.string(raw, "element", path)
        port = self.string(raw, "port", path)
        if element is None or port is None:
            return None
        return ir.Endpoint(element, port)

    def connection(self, c: int, raw: Any) -> ir.Connection | None:
        path = f"connections[{c}]"
        if not self.want(raw, (dict,), "an object", path):
            return None
        self.keys(raw, _CONNECTION_KEYS, {"kind", "from", "to"}, path)
        if "id" in raw and raw["id"] != c:
            self.diags.append(
                error(f"connection id must be {c}, got {raw['id']!r}", self.loc(f"{path}.id"))
            )
        kind = raw.get("kind")
        if kind not in ("push", "query"):
            self.diags.append(
                error(
                    f"connection kind must be 'push' or 'query', got {kind!r}",
                    self.loc(f"{path}.kind"),
                )
            )
            return None
        src = self.endpoint(raw.get("from"), f"{path}.from")
        dst = self.endpoint(raw.get("to"), f"{path}.to")
        self.spans[("from", c)] = self.loc(f"{path}.from")
        self.spans[("to", c)] = self.loc(f"{path}.to")
        self.spans[("conn", c)] = self.loc(path)
        return ir.Connection(kind, src, dst) if src and dst else None

    def feed(self, f: int, raw: Any) -> ir.Feed | None:
        path = f"feeds[{f}]"
        if not self.want(raw, (dict,), "an object", path):
            return None
        self.keys(raw, {"name", "element", "port"}, {"name", "element", "port"}, path)
        name = self.string(raw, "name", path)
        self.spelled(name, _NAME, "feed name", f"{path}.name")
        element = self.string(raw, "element", path)
        port = self.string(raw, "port", path)
        self.spans[("feed", f)] = self.loc(f"{path}.name")
        self.spans[("feed.target", f)] = self.loc(path)
        if name is None or element is None or port is None:
            return None
        return ir.Feed(name, ir.Endpoint(element, port))

    def fuse(self, g: int, raw: Any) -> list[str] | None:
        path = f"fuse[{g}]"
        if not self.want(raw, (list,), "a list of element names", path):
            return None
        names: list[str] = []
        for j, name in enumerate(raw):
            if self.want(name, (str,), "an element name", f"{path}[{j}]"):
                self.spans[("fuse", g, len(names))] = self.loc(f"{path}[{j}]")
                names.append(name)
        return names

    def read(self, data: Any) -> ir.Topology | None:
        if not self.want(data, (dict,), "a JSON object", ""):
            return None
        self.keys(data, _TOP_KEYS, {"tradecraft", "name", "elements"}, "")
        if "tradecraft" in data and data["tradecraft"] != VERSION:
            self.diags.append(
                error(
                    f"unsupported tradecraft version {data['tradecraft']!r}",
                    self.loc("tradecraft"),
                    f"this datablox reads version {VERSION}",
                )
            )
        topo = ir.Topology(self.string(data, "name", "", "") or "")
        self.spelled(topo.name, _NAME, "topology name", "name")
        search_path = self.items(data, "search_path")
        for k, folder in enumerate(search_path):
            if self.want(folder, (str,), "a folder name", f"search_path[{k}]"):
                topo.search_path.append(folder)
        for i, raw in enumerate(self.items(data, "elements")):
            el = self.element(i, raw)
            # Keep positions dense so ids and span keys stay aligned.
            topo.elements.append(el or ir.Element("", ""))
        for c, raw in enumerate(self.items(data, "connections")):
            conn = self.connection(c, raw)
            if conn is not None:
                topo.connections.append(conn)
        for f, raw in enumerate(self.items(data, "feeds")):
            feed = self.feed(f, raw)
            if feed is not None:
                topo.feeds.append(feed)
        for g, raw in enumerate(self.items(data, "fuse")):
            group = self.fuse(g, raw)
            if group:
                topo.fuse.append(group)
        return topo


def from_dict(data: Any, file: str) -> tuple[ir.Topology | None, ir.Spans, list[Diagnostic]]:
    """Read a tradecraft dict; structural problems are located by JSON path."""
    reader = _Reader(file)
    topo = reader.read(data)
    return topo, reader.spans, reader.diags
