"""``datablox-caretaker``: serve a master from this node."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Run element processes on this node for a datablox master.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def serve(
    master: Annotated[
        str, typer.Option(help="The master's control endpoint, e.g. tcp://10.0.0.5:7300.")
    ],
    node: Annotated[
        str, typer.Option(help="This node's name, as used by 'on NODE' in .topo files.")
    ] = "local",
    host: Annotated[
        str,
        typer.Option(
            help="Address element processes bind their data sockets on (must be reachable from "
            "the other nodes)."
        ),
    ] = "127.0.0.1",
    slots: Annotated[
        int | None,
        typer.Option(
            help="Element processes this node takes before the planner fuses chains "
            "(default: CPU count)."
        ),
    ] = None,
    root: Annotated[
        Path | None,
        typer.Option(help="Folder for run logs and dead letters (default ~/.datablox/runs)."),
    ] = None,
) -> None:
    """Connect to a master and run the element processes it assigns to this node."""
    from datablox.caretaker.agent import CareTaker

    agent = CareTaker(master, node=node, host=host, slots=slots, root=root)
    signal.signal(signal.SIGTERM, lambda *_: agent.stop_event.set())
    try:
        agent.serve()
    except KeyboardInterrupt:
        agent.stop_event.set()


@app.command()
def version() -> None:
    """Print the datablox version."""
    from importlib.metadata import version as v

    print(v("datablox"))


def main() -> None:
    app()
