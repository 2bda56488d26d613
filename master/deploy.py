"""Deploying care-takers over SSH (fabric): install, start, check, stop, remove.

``deploy`` builds a wheel of the running datablox and a wheelhouse of its
dependencies here, copies both to each host with the care-takers' keys,
installs them into a virtualenv under the host's ``root`` (no package index
needed on the host), and starts ``datablox-caretaker serve`` detached from
the SSH session. Deploying again upgrades in place: the care-taker is
stopped, the new wheel installed, and the care-taker started again.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from datablox.errors import RunError
from datablox.master.hosts import HostSpec

Say = Callable[[str], None]

#: Seconds a stopped care-taker gets to stop its element processes and exit.
STOP_WAIT = 10


def source_root() -> Path:
    """The source folder of the running datablox (a wheel is built from it)."""
    import datablox

    root = Path(datablox.__file__).resolve().parent.parent
    if not (root / "setup.cfg").exists():
        raise RunError(
            f"deploy builds a wheel of datablox from its source folder; {root} is not one",
            "install datablox from its source folder (pip install -e .) to deploy it",
        )
    return root


def build_wheels(out: Path, say: Say) -> tuple[Path, list[Path]]:
    """A wheel of the running datablox and of every dependency, in ``out``."""
    say("building a wheel of datablox and its dependencies")

    def pip_wheel(what: str, *args: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "-q", *args],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-8:])
            raise RunError(f"building the wheels of {what} failed:\n{tail}")

    pip_wheel("datablox", "--no-deps", "-w", str(out), str(source_root()))
    own = next(out.glob("datablox-*.whl"))
    pip_wheel("its dependencies", "-w", str(out / "deps"), str(own))
    deps = sorted(p for p in (out / "deps").glob("*.whl") if not p.name.startswith("datablox-"))
    return own, deps


def connect(host: HostSpec) -> Any:
    """A fabric connection to ``host``, checking its SSH host key unless told not to."""
    import fabric
    import paramiko

    kwargs: dict[str, Any] = {"timeout": 15, "allow_agent": host.ssh_key is None}
    if host.ssh_key:
        kwargs["key_filename"] = str(Path(host.ssh_key).expanduser())
        kwargs["look_for_keys"] = False
    conn = fabric.Connection(
        host.address, user=host.user, port=host.ssh_port, connect_kwargs=kwargs
    )
    if host.strict_host_keys:
        known = Path(host.known_hosts or "~/.ssh/known_hosts").expanduser()
        if known.exists():
            conn.client.load_host_keys(str(known))
        conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    return conn


def remote(conn: Any, host: HostSpec, command: str) -> str:
    """Run ``command`` on ``host``; RunError with its output when it fails."""
    import paramiko

    try:
        done = conn.run(command, hide=True, warn=True, pty=False, in_stream=False)
    except paramiko.SSHException as exc:
        hint = (
            f"add its host key to {host.known_hosts or '~/.ssh/known_hosts'} "
            "(ssh to it once), or set strict_host_keys = false"
            if "not found in known_hosts" in str(exc)
            else None
        )
        raise RunError(f"host '{host.name}' ({host.address}): SSH: {exc}", hint) from None
    except OSError as exc:
        raise RunError(f"host '{host.name}' ({host.address}): cannot connect: {exc}") from None
    if done.exited != 0:
        out = (done.stderr or done.stdout).strip().splitlines()[-8:]
        raise RunError(
            f"host '{host.name}': '{command.split()[0]} ...' failed (exit {done.exited}):\n"
            + "\n".join(out)
        )
    return str(done.stdout)


def home_of(conn: Any, host: HostSpec) -> str:
    """The host's ``root`` folder as an absolute path (a leading ``~/`` is the SSH user's
    home); never the home folder itself, one of its parents, or ``/``."""
    root = host.root
    if root.startswith("~/"):
        path = f'"$HOME"/{shlex.quote(root[2:])}'
    elif root.startswith("/"):
        path = shlex.quote(root)
    else:
        raise RunError(f"host '{host.name}': root must be absolute or start with ~/, got {root!r}")
    found, home = remote(conn, host, f'realpath -m {path}; realpath "$HOME"').split("\n")[:2]
    if found == "/" or (home + "/").startswith(found.rstrip("/") + "/"):
        raise RunError(f"host '{host.name}': root {found!r} is the home folder or a parent of it")
    return found


def serve_command(host: HostSpec, root: str) -> list[str]:
    q = shlex.quote
    args = [
        f"{q(root)}/venv/bin/datablox-caretaker",
        "serve",
        "--node",
        q(host.name),
        "--bind",
        q(host.bind or host.reach),
        "--port",
        str(host.port),
        "--advertise",
        q(host.reach),
        "--keys",
        f"{q(root)}/keys",
        "--root",
        f"{q(root)}/runs",
    ]
    if host.cpus:
        args += ["--cpus", str(host.cpus)]
    if host.slots:
        args += ["--slots", str(host.slots)]
    return args


def stop_command(root: str) -> str:
    """Stop the care-taker whose pid file is in ``root`` (TERM, then KILL after a wait)."""
    pid = f"{shlex.quote(root)}/caretaker.pid"
    return (
        f"if [ -f {pid} ]; then p=$(cat {pid}); kill $p 2>/dev/null; "
        f"for i in $(seq {STOP_WAIT * 10}); do kill -0 $p 2>/dev/null || break; sleep 0.1; done; "
        f"kill -9 $p 2>/dev/null; rm -f {pid}; fi; true"
    )


def install_host(host: HostSpec, own: Path, deps: Sequence[Path], keys: Path, say: Say) -> None:
    """Copy, install and (re)start the care-taker on one host."""
    q = shlex.quote
    with connect(host) as conn:
        root = home_of(conn, host)
        say(f"{host.name}: installing into {root}")
        # the key folder is private before the secret key is copied in
        remote(
            conn,
            host,
            f"umask 077 && mkdir -p {q(root)}/wheels {q(root)}/keys/authorized {q(root)}/runs "
            f"&& chmod 700 {q(root)}/keys",
        )
        present = set(remote(conn, host, f"ls {q(root)}/wheels").split())
        for wheel in [*deps, own]:
            if wheel.name not in present or wheel is own:
                conn.put(str(wheel), f"{root}/wheels/{wheel.name}")
        remote(conn, host, f"rm -f {q(root)}/keys/authorized/*.key")
        for name in ("node.key", "node.key_secret"):
            conn.put(str(keys / name), f"{root}/keys/{name}")
        for allowed in sorted((keys / "authorized").glob("*.key")):
            conn.put(str(allowed), f"{root}/keys/authorized/{allowed.name}")
        remote(conn, host, f"chmod 700 {q(root)}/keys && chmod 600 {q(root)}/keys/node.key_secret")
        venv = f"{q(root)}/venv"
        remote(conn, host, f"[ -x {venv}/bin/python ] || {q(host.python)} -m venv {venv}")
        pip = f"{venv}/bin/python -m pip install -q --disable-pip-version-check --no-index"
        remote(conn, host, f"{pip} --find-links {q(root)}/wheels {q(root)}/wheels/{own.name}")
        # the same version number with other code: the datablox wheel itself, always
        remote(conn, host, f"{pip} --no-deps --force-reinstall {q(root)}/wheels/{own.name}")
        remote(conn, host, stop_command(root))
        command = " ".join(serve_command(host, root))
        log, pid = f"{q(root)}/caretaker.log", f"{q(root)}/caretaker.pid"
        # its own session, stdio away from the SSH channel: it outlives the session
        remote(
            conn,
            host,
            f"cd {q(root)} && (setsid {command} >>{log} 2>&1 </dev/null & echo $! >{pid})",
        )
        say(f"{host.name}: care-taker started ({host.endpoint})")


def uninstall_host(host: HostSpec, say: Say) -> None:
    with connect(host) as conn:
        root = home_of(conn, host)
        remote(conn, host, stop_command(root))
        remote(conn, host, f"rm -rf {shlex.quote(root)}")
        say(f"{host.name}: care-taker stopped, {root} removed")


def each_host(hosts: Sequence[HostSpec], work: Callable[[HostSpec], None]) -> list[str]:
    """Run ``work`` for every host at once; the errors, one line per failed host."""
    errors: list[str] = []
    with ThreadPoolExecutor(max_workers=max(1, len(hosts))) as pool:
        futures = {pool.submit(work, h): h for h in hosts}
        for future, host in futures.items():
            exc = future.exception()
            if isinstance(exc, RunError):
                errors.append(str(exc))
            elif exc is not None:
                errors.append(f"host '{host.name}': {type(exc).__name__}: {exc}")
    return errors


def deploy(hosts: Sequence[HostSpec], keys: Path, say: Say) -> list[str]:
    """Install and start a care-taker on every host; the errors (empty: all went well)."""
    with tempfile.TemporaryDirectory(prefix="datablox-wheels-") as tmp:
        own, deps = build_wheels(Path(tmp), say)
        say(f"built {own.name} and {len(deps)} dependency wheels")
        return each_host(hosts, lambda h: install_host(h, own, deps, keys, say))


def undeploy(hosts: Sequence[HostSpec], say: Say) -> list[str]:
    return each_host(hosts, lambda h: uninstall_host(h, say))
