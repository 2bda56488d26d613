"""``datablox-master keys | deploy | undeploy | status``: the commands for many nodes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from datablox.errors import DatabloxError
from datablox.security import DEFAULT_KEYS

HostsArg = Annotated[
    Path, typer.Argument(help="The hosts file (TOML; see docs/nodes.md).", show_default=False)
]
KeysOption = Annotated[
    Path,
    typer.Option(help="Key folder (made by 'datablox-master keys')."),
]


def _fail(exc: DatabloxError, code: int = 2) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code)


def _report(errors: list[str]) -> None:
    """Print one error per failed host; exit 1 when there is any."""
    for error in errors:
        typer.echo(f"error: {error}", err=True)
    if errors:
        raise typer.Exit(1)


def keys(
    folder: Annotated[Path, typer.Option("--dir", help="Where to write the keys.")] = DEFAULT_KEYS,
    force: Annotated[
        bool, typer.Option(help="Replace existing keys (deployed care-takers then refuse them).")
    ] = False,
) -> None:
    """Make the CURVE keys of the control plane: this client's and the care-takers'.

    Another client is let in by copying its client.key into authorized/ and deploying again.
    """
    from datablox.security import make_keys

    written = make_keys(folder, force)
    for path in written:
        typer.echo(f"wrote {path}")
    if not written:
        typer.echo(f"keys in {folder} kept (--force makes new ones)")


def deploy(hosts_file: HostsArg, keys: KeysOption = DEFAULT_KEYS) -> None:
    """Install datablox on every host of HOSTS_FILE over SSH, start its care-taker, check it
    answers. Deploying again upgrades in place."""
    from datablox.master import deploy as d
    from datablox.master.hosts import load_hosts
    from datablox.master.nodes import check_registered
    from datablox.security import make_keys

    try:
        hosts = load_hosts(hosts_file)
        if not (keys / "node.key_secret").exists():
            make_keys(keys)
            typer.echo(f"made keys in {keys}")
        errors = d.deploy(hosts, keys, typer.echo)
        if not errors:
            errors = check_registered(hosts, keys)
    except DatabloxError as exc:
        _fail(exc, 1)
    _report(errors)
    typer.echo(f"{len(hosts)} care-taker(s) deployed and answering")


def undeploy(hosts_file: HostsArg) -> None:
    """Stop the care-taker on every host of HOSTS_FILE and remove its install folder."""
    from datablox.master import deploy as d
    from datablox.master.hosts import load_hosts

    try:
        errors = d.undeploy(load_hosts(hosts_file), typer.echo)
    except DatabloxError as exc:
        _fail(exc, 1)
    _report(errors)


def status(
    nodes: Annotated[Path, typer.Option(help="The hosts file of the care-takers to ask.")],
    keys: KeysOption = DEFAULT_KEYS,
    json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Show the nodes (up or not, CPU, memory, load) and the element processes they run."""
    from datablox.master.hosts import load_hosts
    from datablox.master.nodes import node_status

    try:
        results = node_status(load_hosts(nodes), keys)
    except DatabloxError as exc:
        _fail(exc, 1)
    if json:
        typer.echo(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    else:
        show_status(results, Console())
    if not all(r["up"] for r in results):
        raise typer.Exit(1)


def show_status(results: list[dict], console: Console) -> None:  # type: ignore[type-arg]
    table = Table(title="nodes")
    for col in ("node", "endpoint", "state", "cpus", "cpu used", "memory", "load avg", "runs"):
        table.add_column(col)
    for r in results:
        if not r["up"]:
            table.add_row(r["name"], r["endpoint"], "no answer", "", "", "", "", "")
            continue
        mem = f"{(r['mem_used'] or 0) / 2**30:.1f}/{(r['mem_total'] or 0) / 2**30:.1f} GiB"
        table.add_row(
            r["name"],
            r["endpoint"],
            "up",
            str(r["cpus"]),
            f"{r['cpu_used'] or 0:.2f}",
            mem,
            f"{r['loadavg'] or 0:.2f}",
            str(len(r["runs"])),
        )
    console.print(table)
    procs = Table(title="element processes")
    for col in ("node", "run", "process", "elements", "cpu %", "rss MiB", "busy"):
        procs.add_column(col)
    for r in results:
        for run_id, run in (r.get("runs") or {}).items():
            for name, p in run["processes"].items():
                busy = ", ".join(
                    f"{e} {v.get('busy', 0):.0%}" for e, v in (p.get("load") or {}).items()
                )
                procs.add_row(
                    r["name"],
                    run_id,
                    name,
                    ", ".join(p["elements"]),
                    f"{p['cpu'] or 0:.0f}",
                    f"{(p['rss'] or 0) / 2**20:.0f}",
                    busy,
                )
    console.print(procs)
    for r in results:
        if not r["up"]:
            console.print(f"{r['name']}: {r['error']}")
