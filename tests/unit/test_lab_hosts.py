"""The lab's hosts without a lab: what it says of a host that does not come up (the last
lines of its console, readable), and a host stopped with nothing of it left running."""

import subprocess
from types import SimpleNamespace

from mailstack.lab.hosts import LabHost, console_tail


def test_the_consoles_tail_is_without_the_terminals_control_sequences(tmp_path):
    console = tmp_path / "console.log"
    console.write_bytes(b"[\x1b[0;32m  OK  \x1b[0m] Reached target multi-user.target\r\n"
                        b"\x1b]104\x07\x1b[?7h\x1b[6n\x1b[32766;32766H\r\nstore1 login: ")
    tail = console_tail(SimpleNamespace(console=console), lines=2)
    assert tail == "[  OK  ] Reached target multi-user.target / store1 login:"


def test_a_host_that_wrote_nothing_says_so(tmp_path):
    assert console_tail(SimpleNamespace(console=tmp_path / "console.log")) == "(nothing)"


class Orphaned(LabHost):
    """A container whose nspawn is gone while a process inside still runs, as a killed nspawn
    leaves its container's processes."""

    def __init__(self, inside: subprocess.Popen):
        self.inside = inside

    def pids(self) -> list[int]:
        return []

    def all_pids(self) -> list[int]:
        return [self.inside.pid] if self.inside.poll() is None else []


def test_a_stopped_host_leaves_no_process_of_it_running():
    inside = subprocess.Popen(["sleep", "600"])
    try:
        Orphaned(inside).stop_processes(grace=0)
        assert inside.poll() is not None
    finally:
        inside.kill()
