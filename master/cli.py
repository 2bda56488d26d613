"""``datablox-master``: check, compile and run topologies."""

from __future__ import annotations

import os
import re
import signal
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import orjson
import typer
from rich.console import Console

from datablox.codec import get_codec
from datablox.errors import DatabloxError, TopologyError
from datablox.master import nodecli
from datablox.master.words import counted
from datablox.security import DEFAULT_KEYS

app = typer.Typer(
    help="Check, compile and run datablox topologies (.topo files or tradecraft JSON).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help text is shown as written: "[list]" is not markup
)
err = Console(stderr=True)
if not err.is_terminal:
    # logs and CI: do not squeeze the summary table into 80 columns
    err = Console(stderr=True, width=150)

SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        metavar="ELEMENT.PARAM=VALUE",
        help="Override an element parameter; VALUE is a .topo literal "
        '(number, true/false, null, "string", [list], {map}) or a bare string. '
        "Repeatable.",
    ),
]
FileArg = Annotated[Path, typer.Argument(help="A .topo file, or a compiled tradecraft .json file.")]


class Fusion(StrEnum):
    auto = "auto"
    off = "off"
    max = "max"


class DisplayMode(StrEnum):
    auto = "auto"
    live = "live"
    plain = "plain"
    quiet = "quiet"


def _say(text: str) -> None:
    """Write diagnostics as they are: never wrapped, so carets stay under their column."""
    err.file.write(text + "\n")
    err.file.flush()


def _load(path: Path, overrides: list[str] | None) -> Any:
    from datablox import dsl

    result = dsl.load_any(str(path), list(overrides or []))
    warnings = result.rendered_warnings()
    if warnings:
        _say(warnings)
    return result


def _fail(exc: DatabloxError, code: int = 2) -> NoReturn:
    if isinstance(exc, TopologyError):
        _say(str(exc))
    else:
        _say(f"error: {exc}")
    raise typer.Exit(code)


def _cannot_write(path: Path, exc: OSError, what: str, code: int) -> NoReturn:
    reason = exc.strerror or str(exc)
    if isinstance(exc, (FileExistsError, NotADirectoryError)):
        reason = "a part of the path is a file, not a folder"
    _say(f"error: cannot write {what} to '{path}': {reason}")
    raise typer.Exit(code)


def _writable(path: Path) -> OSError | None:
    """Why ``path`` cannot be written (its folder made if missing), or None if it can."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return exc
    if path.is_dir():
        return IsADirectoryError(21, "it is a folder")
    folder = path.parent if str(path.parent) else Path(".")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return PermissionError(13, "permission denied")
    return None


@app.command()
def check(file: FileArg, set_: SetOption = None) -> None:
    """Check a topology without running it: classes, ports, parameters, record fields, cycles.

    Exit code 0 when it is valid, 2 when it has errors (each shown with file:line:col).
    """
    try:
        result = _load(file, set_)
    except DatabloxError as exc:
        _fail(exc)
    tc = result.tradecraft
    print(
        f"ok: {file}: topology '{tc['name']}', {counted(len(tc['elements']), 'element')}, "
        f"{counted(len(tc['connections']), 'connection')}"
    )


@app.command("compile")
def compile_(
    file: FileArg,
    set_: SetOption = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write the tradecraft JSON here instead of standard output."
        ),
    ] = None,
) -> None:
    """Compile a topology to canonical tradecraft JSON (see docs/tradecraft.md)."""
    try:
        result = _load(file, set_)
    except DatabloxError as exc:
        _fail(exc)
    text = orjson.dumps(result.tradecraft, option=orjson.OPT_INDENT_2).decode() + "\n"
    if output:
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            _cannot_write(output, exc, "the tradecraft JSON", 2)
    else:
        sys.stdout.write(text)


@app.command()
def run(
    file: FileArg,
    set_: SetOption = None,
    fusion: Annotated[
        Fusion,
        typer.Option(
            case_sensitive=False,
            help="Which elements share a process: 'auto' = the topology's fuse statements plus "
            "chains into cheap elements (and more chains while a node has more processes "
            "than slots); 'off' = one process per element; 'max' = fuse every chain.",
        ),
    ] = Fusion.auto,
    slots: Annotated[
        int | None,
        typer.Option(
            help="Element processes per node before 'auto' fusion packs chains "
            "(default: the node's CPU count)."
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Records per pushed batch.")] = 1024,
    flush_ms: Annotated[
        float, typer.Option(help="A partly filled batch is sent after this many milliseconds.")
    ] = 2.0,
    codec: Annotated[
        str | None,
        typer.Option(help="Batch codec: orjson, ujson or msgpack (default: the measured fastest)."),
    ] = None,
    hwm: Annotated[
        int,
        typer.Option(
            help="Batches a connection queues at each end before its sender blocks "
            "(backpressure; nothing is dropped)."
        ),
    ] = 8,
    startup_timeout: Annotated[
        float,
        typer.Option(help="Seconds every element gets to bind, wire and run on_start."),
    ] = 60.0,
    drain_timeout: Annotated[
        float,
        typer.Option(
            help="Seconds a stop (Ctrl-C, SIGTERM) may take to drain the queues; then every "
            "element process is killed (an element stuck in its own code cannot hold it up)."
        ),
    ] = 30.0,
    max_restarts: Annotated[
        int,
        typer.Option(
            help="How often one element process may crash (each crash restores every element "
            "from the last checkpoint) before the run fails."
        ),
    ] = 3,
    max_dead_letters: Annotated[
        int | None,
        typer.Option(
            help="The most records the run may send to dead letters (over every element); "
            "one more stops the run, which then fails (exit 1). Default: no limit."
        ),
    ] = None,
    snapshot_every: Annotated[
        float,
        typer.Option(
            help="Seconds between checkpoints (consistent snapshots of every element); 0 keeps "
            "only the state at start, so a crash replays everything."
        ),
    ] = 1.0,
    autoscale: Annotated[
        bool,
        typer.Option(
            help="Let the scaling policy add shard members on congestion and remove them when "
            "idle (within each shard's min and max)."
        ),
    ] = True,
    reshard: Annotated[
        list[str] | None,
        typer.Option(
            help="Force a shard change once the shard has received RECORDS records: "
            "SHARD:members=N@RECORDS, SHARD:move=N@RECORDS (N partitions from the member "
            "with most to the one with fewest) or SHARD:rebalance@RECORDS. Repeatable."
        ),
    ] = None,
    max_processes: Annotated[
        int | None,
        typer.Option(
            help="The most element processes a node runs, shard members included (bounds "
            "memory; given, a topology that needs more is refused before it starts; "
            "default: 4 per core, at least 16, for shard members)."
        ),
    ] = None,
    run_dir: Annotated[
        Path | None,
        typer.Option(help="Folder for logs and dead letters (default: .datablox/runs/NAME-TIME)."),
    ] = None,
    display: Annotated[
        DisplayMode,
        typer.Option(
            case_sensitive=False,
            help="live = table redrawn in place; plain = a status line every 5 s; quiet = only "
            "warnings; auto = live on a terminal, else plain.",
        ),
    ] = DisplayMode.auto,
    summary_json: Annotated[
        Path | None,
        typer.Option(help="Also write the final per-element figures as JSON to this file."),
    ] = None,
    nodes: Annotated[
        Path | None,
        typer.Option(
            help="Run on the care-takers of this hosts file (deployed with 'datablox-master "
            "deploy') instead of an embedded one."
        ),
    ] = None,
    keys: Annotated[
        Path, typer.Option(help="Key folder of this client (with --nodes).")
    ] = DEFAULT_KEYS,
    ship: Annotated[
        list[str] | None,
        typer.Option(
            help="With --nodes: also send this folder's Python modules, or this importable "
            "package, to the nodes (the .topo file's folder is always sent). Repeatable."
        ),
    ] = None,
    encrypt_data: Annotated[
        bool,
        typer.Option(
            help="Encrypt the data plane too (CURVE on every push and query connection; "
            "see the benchmark for its cost). The control plane always is."
        ),
    ] = False,
    heartbeat_timeout: Annotated[
        float,
        typer.Option(
            help="Seconds a care-taker may stay silent before its node is declared lost and its "
            "elements are restored on the other nodes."
        ),
    ] = 5.0,
) -> None:
    """Run a topology: on this machine (an embedded care-taker starts every element process),
    or on deployed care-takers (--nodes HOSTS_FILE).

    Shows a live table (records/s, backlog, busy %, restarts) and exits when the
    topology finishes: 0 on success, 1 when an element failed, 2 for a topology
    error, 130 after Ctrl-C (the first Ctrl-C stops sources and lets queues drain;
    a second kills every element process).
    """
    from datablox.master.display import LiveDisplay, PlainDisplay, QuietDisplay
    from datablox.master.embedded import run_embedded
    from datablox.master.service import RunOptions
    from datablox.master.summary import print_summary

    try:
        from datablox.registry import add_search_path

        for folder in ship or []:
            if Path(folder).is_dir():
                add_search_path(str(Path(folder).resolve()))  # its modules are importable here too
        result = _load(file, set_)
        codec = codec.strip().lower() if codec else codec
        get_codec(codec)
        hosts = None
        if nodes is not None:
            from datablox.master.hosts import load_hosts

            hosts = load_hosts(nodes)
    except DatabloxError as exc:
        _fail(exc)
    if summary_json:
        # Found out before the run, not after it has done its work.
        problem = _writable(summary_json)
        if problem is not None:
            _cannot_write(summary_json, problem, "the summary", 2)
    mode = display.value
    if mode == "auto":
        mode = "live" if err.is_terminal else "plain"
    shown = {"live": LiveDisplay, "plain": PlainDisplay, "quiet": QuietDisplay}[mode]()
    interrupts = [0]

    def on_sigint(signum: int, frame: Any) -> None:
        interrupts[0] += 1

    signal.signal(signal.SIGINT, on_sigint)
    signal.signal(signal.SIGTERM, on_sigint)
    options = RunOptions(
        fusion=fusion.value,  # type: ignore[arg-type]
        slots=slots,
        batch_size=batch_size,
        flush_ms=flush_ms,
        codec=codec,
        hwm=hwm,
        startup_timeout=startup_timeout,
        drain_timeout=drain_timeout,
        max_restarts=max_restarts,
        max_dead_letters=max_dead_letters,
        snapshot_every=snapshot_every,
        autoscale=autoscale,
        reshard=list(reshard or []),
        max_processes=max_processes,
        run_dir=run_dir,
        heartbeat_timeout=heartbeat_timeout,
        encrypt_data=encrypt_data,
        ship=list(ship or []),
    )
    try:
        if hosts is not None:
            from datablox.master.nodes import run_on_nodes

            outcome = run_on_nodes(
                result.tradecraft, options, shown, hosts, keys, lambda: interrupts[0]
            )
        else:
            outcome = run_embedded(result.tradecraft, options, shown, lambda: interrupts[0])
    except DatabloxError as exc:
        _fail(exc, 1)
    print_summary(outcome, err, table=mode != "quiet")
    if summary_json:
        try:
            summary_json.parent.mkdir(parents=True, exist_ok=True)
            summary_json.write_bytes(orjson.dumps(outcome.summary(), option=orjson.OPT_INDENT_2))
        except OSError as exc:
            _cannot_write(summary_json, exc, "the summary", outcome.exit_code or 1)
    raise typer.Exit(outcome.exit_code)


@app.command()
def classes() -> None:
    """List the registered element classes and the built-in groups with their ports."""
    from datablox.dsl.loader import builtin_groups
    from datablox.registry import registered, resolve

    for name, target in sorted(registered().items()):
        try:
            cls = resolve(name)
        except DatabloxError as exc:
            print(f"{name:16} {target}  (cannot load: {exc.message})")
            continue
        ports = ", ".join(f"{p.name}:{p.direction}/{p.kind}" for p in cls.ports)
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        print(f"{name:16} {doc}\n{'':16} ports: {ports}")
    print("\nbuilt-in groups (`datablox-master describe NAME` shows one):")
    for name, text in sorted(builtin_groups().items()):
        exposed = re.findall(r"^\s*expose (\w+)", text, re.MULTILINE)
        print(f"{name:16} ports: {', '.join(exposed)}")


@app.command()
def describe(
    name: Annotated[str, typer.Argument(help="A registered class name or package.module:Class.")],
) -> None:
    """Show an element class's (or a built-in group's) documentation, ports and parameters."""
    from datablox.dsl.loader import builtin_groups
    from datablox.ports import REQUIRED
    from datablox.registry import add_search_path, resolve

    group = builtin_groups().get(name)
    if group is not None:
        print(f"{name}  (built-in group, <datablox>/join.topo)\n")
        print(group)
        return
    # A class in a module next to where the user stands, as a .topo file's folder is for run.
    add_search_path(os.getcwd())
    try:
        cls = resolve(name)
    except DatabloxError as exc:
        _fail(exc)
    print(f"{name}  ({cls.__module__}:{cls.__qualname__})\n")
    print((cls.__doc__ or "(no documentation)").strip() + "\n")
    print("ports:")
    for p in cls.ports:
        print(f"  {p.describe()}" + (f" — {p.doc}" if p.doc else ""))
    print("parameters:")
    for prm in cls.params:
        default = "required" if prm.default is REQUIRED else f"default {prm.default!r}"
        print(f"  {prm.name}: {prm.type} ({default})" + (f" — {prm.doc}" if prm.doc else ""))


for command in (nodecli.keys, nodecli.deploy, nodecli.undeploy, nodecli.status):
    app.command()(command)


def main() -> None:
    app()
