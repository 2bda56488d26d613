"""``datablox-caretaker``: serve masters from this node."""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
import zmq

from datablox.errors import DatabloxError
from datablox.security import DEFAULT_KEYS

app = typer.Typer(
    help="Run element processes on this node for datablox masters.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: The port a care-taker listens on unless told otherwise.
DEFAULT_PORT = 7301


@app.command()
def serve(
    node: Annotated[
        str, typer.Option(help="This node's name, as used by 'on NODE' in .topo files.")
    ] = "local",
    bind: Annotated[
        str,
        typer.Option(
            help="Address the control socket and the elements' data sockets bind on "
            "(0.0.0.0: every interface, then --advertise is needed)."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the control socket.")] = DEFAULT_PORT,
    advertise: Annotated[
        str | None,
        typer.Option(help="Address masters and other nodes reach this node at (default: --bind)."),
    ] = None,
    slots: Annotated[
        int | None,
        typer.Option(
            help="Element processes this node takes before the planner fuses chains "
            "(default: --cpus, else the CPU count)."
        ),
    ] = None,
    cpus: Annotated[
        int | None,
        typer.Option(help="CPU budget: element processes run on this many cores (default: all)."),
    ] = None,
    keys: Annotated[
        Path,
        typer.Option(
            help="Key folder: node.key_secret, and authorized/*.key (the clients let in)."
        ),
    ] = DEFAULT_KEYS,
    root: Annotated[
        Path | None,
        typer.Option(help="Folder for run logs and dead letters (default ~/.datablox/runs)."),
    ] = None,
) -> None:
    """Serve masters: launch, watch and stop the element processes of their runs."""
    from datablox.caretaker.agent import CareTaker
    from datablox.security import KeyPair, allowed_keys

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        agent = CareTaker(
            node,
            KeyPair.load(keys / "node.key_secret"),
            allowed_keys(keys),
            bind=bind,
            port=port,
            advertise=advertise,
            slots=slots,
            cpus=cpus,
            root=root,
        )
    except DatabloxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    except (OSError, zmq.ZMQError) as exc:
        print(f"error: cannot listen on {bind}:{port}: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    logging.getLogger("datablox.caretaker").info(
        "care-taker %r serving at %s (pid %d)", node, agent.endpoint, os.getpid()
    )
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
