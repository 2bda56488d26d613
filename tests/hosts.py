"""Hosts for multi-node tests: network namespaces joined by veth pairs to a bridge, each
running its own OpenSSH server with throwaway keys.

Needs root (``ip netns``) and ``/usr/sbin/sshd`` (the test command installs
openssh-server). Everything made here — namespaces, the bridge, sshd and any
process started inside a namespace, the temporary folder — is removed by
``close()``, which a fixture calls even when its test fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SSHD = "/usr/sbin/sshd"


def can_make_hosts() -> str | None:
    """Why namespaces with sshd cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    if not Path(SSHD).exists():
        return "needs openssh-server (/usr/sbin/sshd)"
    if shutil.which("ip") is None:
        return "needs iproute2 (ip)"
    return None


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


def wait_for_port(address: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # polling a port with a deadline


@dataclass
class Host:
    name: str
    namespace: str
    address: str
    #: the bridge side of its veth pair: down = the host's link is cut
    link: str
    root: Path
    sshd: subprocess.Popen[bytes] | None = None


class Hosts:
    """``count`` hosts on 10.X.Y.0/24 (a subnet of its own per instance)."""

    def __init__(self, count: int = 3) -> None:
        self.tag = uuid.uuid4().hex[:5]
        self.tmp = Path(tempfile.mkdtemp(prefix=f"datablox-hosts-{self.tag}-"))
        number = int(self.tag, 16)
        self.subnet = f"10.{200 + number % 50}.{number // 50 % 250}"
        self.bridge = f"dbx{self.tag}br"
        self.hosts: list[Host] = []
        self.client_key = self.tmp / "client_ed25519"
        self.known_hosts = self.tmp / "known_hosts"
        self.hosts_file = self.tmp / "hosts.toml"
        try:
            self._make(count)
        except BaseException:
            self.close()
            raise

    def _make(self, count: int) -> None:
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.client_key))
        authorized = self.tmp / "authorized_keys"
        authorized.write_text(Path(f"{self.client_key}.pub").read_text())
        Path("/run/sshd").mkdir(exist_ok=True)
        known: list[str] = []
        for i in range(1, count + 1):
            ns, link = f"dbx{self.tag}n{i}", f"dbx{self.tag}v{i}"
            address = f"{self.subnet}.{10 + i}"
            host = Host(f"h{i}", ns, address, link, self.tmp / f"h{i}")
            self.hosts.append(host)
            host.root.mkdir()
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "link", "set", link, "master", self.bridge, "up")
            self.in_ns(host, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
            self.in_ns(host, "ip", "link", "set", "eth0", "up")
            self.in_ns(host, "ip", "link", "set", "lo", "up")
            key = host.root / "ssh_host_ed25519"
            sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
            config = host.root / "sshd_config"
            config.write_text(
                f"ListenAddress {address}\nPort 22\nHostKey {key}\n"
                f"PidFile {host.root / 'sshd.pid'}\nAuthorizedKeysFile {authorized}\n"
                "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
                "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
                "Subsystem sftp internal-sftp\n"
            )
            with open(host.root / "sshd.log", "wb") as log:
                host.sshd = subprocess.Popen(
                    ["ip", "netns", "exec", ns, SSHD, "-D", "-e", "-f", str(config)],
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            known.append(
                f"{address} {Path(f'{key}.pub').read_text().split(' ')[0]} "
                f"{Path(f'{key}.pub').read_text().split(' ')[1]}"
            )
        self.known_hosts.write_text("\n".join(known) + "\n")
        for host in self.hosts:
            wait_for_port(host.address, 22, timeout=20)

    def in_ns(self, host: Host, *args: str) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", host.namespace, *args)

    def write_hosts_file(self, **extra: Any) -> Path:
        """A hosts file for these hosts (each with its own install folder)."""
        lines = [
            "[defaults]",
            'user = "root"',
            f'ssh_key = "{self.client_key}"',
            f'known_hosts = "{self.known_hosts}"',
        ]
        lines += [f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in extra.items()]
        for host in self.hosts:
            lines += [
                "",
                "[[host]]",
                f'name = "{host.name}"',
                f'address = "{host.address}"',
                f'root = "{host.root / "node"}"',
            ]
        self.hosts_file.write_text("\n".join(lines).replace("'", '"') + "\n")
        return self.hosts_file

    def cut(self, host: Host) -> None:
        """Cut the host's network link (its processes go on, unreachable)."""
        sh("ip", "link", "set", host.link, "down")

    def heal(self, host: Host) -> None:
        sh("ip", "link", "set", host.link, "up")

    def pids(self, host: Host) -> list[int]:
        done = sh("ip", "netns", "pids", host.namespace, check=False)
        return [int(p) for p in done.stdout.split()]

    def close(self) -> None:
        """Remove everything; each step runs even when an earlier one failed."""
        for host in self.hosts:
            for pid in self.pids(host):
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
            if host.sshd is not None:
                host.sshd.kill()
                try:
                    host.sshd.wait(10)
                except subprocess.TimeoutExpired:
                    pass
        for host in self.hosts:
            deadline = time.monotonic() + 10
            while self.pids(host) and time.monotonic() < deadline:
                time.sleep(0.05)  # polling for killed processes to be reaped, with a deadline
            sh("ip", "netns", "del", host.namespace, check=False)
        sh("ip", "link", "del", self.bridge, check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)
