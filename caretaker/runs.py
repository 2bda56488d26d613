"""One run as a care-taker sees it, and the files that travel with control messages.

Snapshots are written by element processes into their node's run folder. When
the master does not share that folder (another host), the care-taker sends
each snapshot's bytes with the element's acknowledgement, so the master's
checkpoint store always has every completed checkpoint; the master sends them
back to whichever node restores the element. Partition hand-overs between
shard members and the topology's own Python modules travel the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datablox.caretaker.supervisor import Supervisor
from datablox.errors import DatabloxError, ProtocolError
from datablox.security import KeyPair


@dataclass
class NodeRun:
    """A run with element processes on this node."""

    run_id: str
    #: routing identity of the master that speaks for the run (the latest one to)
    master: bytes
    run_dir: Path
    supervisor: Supervisor
    #: the key pair the run's element processes use on this node's element socket
    element_keys: KeyPair
    #: seconds without a word from the master after which the run's processes are
    #: stopped here (the master declares the node lost after a longer silence)
    lease: float
    #: send snapshot files to the master (it does not share this node's folders)
    ship: bool
    last_master: float
    #: when its master last spoke (``last_master`` restarts when a lease lapses)
    heard: float = 0.0
    specs: list[dict[str, Any]] = field(default_factory=list)
    #: files already sent to the master (a final snapshot is acknowledged again and again)
    shipped: set[str] = field(default_factory=set)
    #: the latest load report of each process, for ``status``
    loads: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def checkpoints(self) -> Path:
        return self.run_dir / "checkpoints"


def inside(base: Path, relative: str) -> Path:
    """``base / relative``, refusing a path that would leave ``base``."""
    path = (base / relative).resolve()
    if path == base.resolve() or not path.is_relative_to(base.resolve()):
        raise ProtocolError(f"file path {relative!r} leaves {base}")
    return path


def write_files(base: Path, names: list[str], blobs: list[bytes]) -> None:
    """Write the files that came with a control message under ``base``."""
    if len(names) != len(blobs):
        raise ProtocolError(f"{len(names)} file names for {len(blobs)} files")
    for name, data in zip(names, blobs, strict=True):
        path = inside(base, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)


def files_named(msg: dict[str, Any]) -> list[str]:
    """The snapshot or hand-over files (relative to the checkpoint store) a message names."""
    op = msg["op"]
    if op == "snapshotted":
        return [msg["file"]]
    if op in ("element_finished", "outputs_ended") and msg.get("final"):
        return [msg["final"]]
    if op == "moved_out":
        return list(msg.get("files", {}).values())
    return []


def package_files(names: list[str], index: int) -> dict[str, Path]:
    """The files of importable packages named ``names`` (``--ship``), to ship under folder
    number ``index``; a name that is a folder ships that folder's modules instead."""
    import importlib.util

    found: dict[str, Path] = {}
    for name in names:
        if Path(name).is_dir():
            continue  # shipped as a folder of its own (see module_files)
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None or spec.origin is None:
            raise DatabloxError(
                f"--ship {name}: no such folder or importable module",
                "name a folder, or a package importable here",
            )
        locations = list(spec.submodule_search_locations or [])
        if not locations:
            found[f"{index}/{Path(spec.origin).name}"] = Path(spec.origin)
            continue
        root = Path(locations[0])
        for path in sorted(root.rglob("*.py")):
            if "__pycache__" not in path.parts:
                found[f"{index}/{name.replace('.', '/')}/{path.relative_to(root)}"] = path
    return found


def module_files(folders: list[str]) -> dict[str, Path]:
    """The Python files of a topology's folders, to ship to other hosts: top-level
    ``*.py`` files and packages (folders with ``__init__.py``), by relative path."""
    found: dict[str, Path] = {}
    for index, folder in enumerate(folders):
        root = Path(folder)
        if not root.is_dir():
            continue
        for path in sorted(root.glob("*.py")):
            found[f"{index}/{path.name}"] = path
        for init in sorted(root.glob("*/__init__.py")):
            package = init.parent
            if package.name.startswith(".") or package.name in ("__pycache__", "tests", "datablox"):
                continue
            for path in sorted(package.rglob("*.py")):
                if "__pycache__" not in path.parts:
                    found[f"{index}/{path.relative_to(root)}"] = path
    return found
