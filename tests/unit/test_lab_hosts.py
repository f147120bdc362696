"""The lab's hosts without a lab: what it says of a host that does not come up (the last
lines of its console, readable), a host stopped with nothing of it left running, and the
image each guest is made from."""

import subprocess
from pathlib import Path
from types import SimpleNamespace

from mailstack.inventory import load_for
from mailstack.lab import Lab, images
from mailstack.lab.hosts import LabHost, console_tail
from tests.support import LAB_INVENTORY, lab_variant


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


def test_only_a_guest_whose_storage_is_a_pool_is_made_from_the_image_with_zfs(monkeypatch, tmp_path):
    """DKMS takes minutes to build ZFS's module: the lab's store1, on an array, goes without."""
    monkeypatch.setattr(images, "_image", lambda name, suite, make: Path(f"{name}-{suite}"))
    pool = lab_variant(tmp_path, {"mdraid: {devices: [/dev/vdb, /dev/vdc, /dev/vdd, /dev/vde]}":
                                  "zfs: {vdevs: [{devices: [/dev/vdb, /dev/vdc]}]}"})
    assert Lab(load_for(LAB_INVENTORY)).host("store1").image() == Path("vm-trixie")
    assert Lab(load_for(pool)).host("store1").image() == Path("vm-zfs-trixie")
