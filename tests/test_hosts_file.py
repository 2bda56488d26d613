"""The hosts file: parsed into host specs, every mistake named with its file and host."""

from __future__ import annotations

from pathlib import Path

import pytest

from datablox.errors import RunError
from datablox.master.hosts import HostSpec, load_hosts, parse_hosts

GOOD = """
[defaults]
user = "deploy"
cpus = 2

[[host]]
name = "node1"
address = "10.0.0.11"

[[host]]
name = "node2"
address = "node2.example.org"
advertise = "10.0.0.12"
bind = "0.0.0.0"
cpus = 4
"""


def test_defaults_apply_to_every_host_and_a_host_overrides_them() -> None:
    one, two = parse_hosts(GOOD, "hosts.toml")
    assert one == HostSpec("node1", "10.0.0.11", user="deploy", cpus=2)
    assert one.endpoint == "tcp://10.0.0.11:7301"
    assert (two.cpus, two.bind, two.endpoint) == (4, "0.0.0.0", "tcp://10.0.0.12:7301")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[host]]\nname = 'a'\n", "hosts.toml: host a: 'address' is missing"),
        ("[[host]]\nname = 'a'\naddress = 'x'\nport = 'high'\n", "host a: 'port' must be a int"),
        ("[[host]]\nname = 'a'\naddress = 'x'\ncpu = 2\n", "host a: unknown field 'cpu'"),
        ("[defaults]\nuser = 'x'\n", "hosts.toml: no [[host]] entries"),
        (
            "[[host]]\nname = 'a'\naddress = 'x'\n[[host]]\nname = 'a'\naddress = 'y'\n",
            "two hosts are named 'a'",
        ),
        ("[[host]\n", "hosts.toml: "),
        ("[nodes]\n", "unknown section(s) nodes"),
    ],
)
def test_mistakes_name_the_file_and_the_host(text: str, message: str) -> None:
    with pytest.raises(RunError) as info:
        parse_hosts(text, "hosts.toml")
    assert message in str(info.value)


def test_a_missing_hosts_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RunError, match=r"cannot read the hosts file .*nope\.toml"):
        load_hosts(tmp_path / "nope.toml")


def test_cli_mistakes_with_nodes_are_errors_without_tracebacks(tmp_path: Path) -> None:
    import subprocess

    from datablox.security import make_keys
    from tests.conftest import TRACEBACK, console_script

    master = console_script("datablox-master")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([master, *args], capture_output=True, text=True, timeout=60)
        assert not TRACEBACK.search(done.stderr + done.stdout)
        return done

    topo = tmp_path / "t.topo"
    topo.write_text(
        "topology t {\n element s = Generate(count=3)\n element c = Count()\n s -> c\n}\n"
    )
    done = cli("run", str(topo), "--nodes", str(tmp_path / "nope.toml"))
    assert done.returncode == 2
    assert "error: cannot read the hosts file" in done.stderr
    make_keys(tmp_path / "keys")
    hosts = tmp_path / "hosts.toml"
    # nothing listens on this loopback port
    hosts.write_text('[[host]]\nname = "n1"\naddress = "127.0.0.1"\nport = 9\n')
    done = cli("status", "--nodes", str(hosts), "--keys", str(tmp_path / "keys"))
    assert done.returncode == 1
    assert "no answer" in done.stdout
    done = cli("run", str(topo), "--nodes", str(hosts), "--keys", str(tmp_path / "keys"))
    assert done.returncode == 1
    assert "only 0 of 1 care-taker(s) answered" in done.stderr
