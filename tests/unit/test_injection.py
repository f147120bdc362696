"""No value reaches a shell command in a form that changes its meaning.

Each operation's commands (and the storage deploy's) are run by a real shell for a hostile
value, with the system commands they call standing in as functions that record their
arguments, and /etc moved into a folder of the test. The value must arrive as one literal
argument (or line of a file), and nothing it tries to run may run.
"""

import shlex
import subprocess

import pytest
from pyinfra.context import ctx_host
from pyinfra.facts.files import FileContents
from pyinfra.facts.server import Mounts
from pyinfra.facts.systemd import SystemdEnabled

from facts.devices import DeviceContents
from facts.mdadm import MdConfig
from facts.zfs import ZfsProperties
from mailstack import storage_rules
from mailstack.config.model import MdRaid, Vdev, Zfs
from operations.mdadm import md_config
from operations.mounts import fstab_entry, mounted
from operations.shell_files import shell_variables
from operations.units import enabled_at_boot
from operations.zfs import zfs_dataset
from tests.support import PROJECT

STUBS = ["wipefs", "mdadm", "mkfs.ext4", "zpool", "zfs", "blkid", "systemctl", "mount", "mkdir", "update-initramfs"]
END = "\x01"  # ends the arguments of one recorded call


class FakeHost:
    """A host that answers only the facts it was given, as chatmail's and pyinfra's tests fake one."""

    def __init__(self, facts: dict):
        self.facts = facts

    def get_fact(self, fact, **arguments):
        return self.facts[fact]

    def noop(self, text: str) -> None:
        raise AssertionError(f"nothing to do for a hostile value: {text}")


def commands_of(operation, facts: dict, **arguments) -> list[str]:
    with ctx_host.use(FakeHost(facts)):
        return [str(command) for command in operation._inner(**arguments)]


@pytest.fixture
def shell(tmp_path):
    """Runs commands as a host would, and returns the calls of stubbed commands (argv lists)."""
    (tmp_path / "etc/mdadm").mkdir(parents=True)
    (tmp_path / "etc/fstab").write_text("proc /proc proc defaults 0 0\n")
    (tmp_path / "etc/mdadm/mdadm.conf").write_text("MAILADDR root\n")
    log = tmp_path / "calls"
    stubs = "\n".join(
        f"{name}() {{ printf '%s\\0' {name} \"$@\" {END} >> {log}; {answer(name)} }}" for name in STUBS
    )

    def run(commands: list[str]) -> list[list[str]]:
        log.unlink(missing_ok=True)
        script = "\n".join([stubs, *(command.replace("/etc/", f"{tmp_path}/etc/") for command in commands)])
        result = subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert not (tmp_path / "PWNED").exists(), "a hostile value ran a command"
        calls = log.read_text().split("\0") if log.exists() else []
        found, current = [], []
        for word in calls:
            if word == END:
                found.append(current)
                current = []
            elif word or current:
                current.append(word)
        return found

    run.root = tmp_path
    return run


def answer(stub: str) -> str:
    """What a stub prints: blkid a UUID, mdadm an ARRAY line; the others nothing."""
    return {"blkid": "echo 0000-UUID;", "mdadm": "echo 'ARRAY /dev/md127 metadata=1.2 UUID=1';"}.get(stub, "true;")


def hostile(kind: str = "/mnt/x") -> str:
    """A value that would run ``touch PWNED`` (in the test's folder) in any unquoted or
    double-quoted place of a shell command, or break a word, a line or a field."""
    return kind + " y'\"$(touch PWNED)`touch PWNED`;touch PWNED && touch PWNED|touch PWNED #:,=$HOME"


def test_mounted(shell):
    point = hostile()
    assert shell(commands_of(mounted, {Mounts: {}}, mount_point=point, options=["noatime"])) == [
        ["mkdir", "-p", point], ["mount", point],
    ]
    remount = commands_of(mounted, {Mounts: {point: {"options": []}}}, mount_point=point, options=["x"])
    assert shell(remount) == [["mount", "-o", "remount", point]]


def test_fstab_entry(shell):
    device, point, option = hostile("/dev/x"), hostile(), hostile("opt")
    facts = {DeviceContents: {device: None}, FileContents: []}
    commands = commands_of(fstab_entry, facts, device=device, mount_point=point, filesystem="ext4",
                           options=["noatime", option])
    calls = shell(commands)
    assert calls[0] == ["blkid", "-s", "UUID", "-o", "value", device]
    fstab = (shell.root / "etc/fstab").read_text().splitlines()
    assert fstab == ["proc /proc proc defaults 0 0", f"UUID=0000-UUID {point} ext4 noatime,{option} 0 2"]


def test_zfs_dataset_without_a_quota(shell):
    """``zfs get -p`` shows 0 for no quota; ``zfs create -o quota=0`` fails (the staging's mx2 did)."""
    properties = {"mountpoint": "/var/vmail", "quota": "0"}
    created = shell(commands_of(zfs_dataset, {ZfsProperties: {}}, dataset="tank/vmail", properties=properties))
    assert created == [["zfs", "create", "-o", "mountpoint=/var/vmail", "-o", "quota=none", "tank/vmail"]]
    found = {ZfsProperties: {"tank/vmail": {"mounted": "yes", "mountpoint": "/var/vmail", "quota": "104857600"}}}
    changed = shell(commands_of(zfs_dataset, found, dataset="tank/vmail", properties=properties))
    assert changed == [["zfs", "set", "quota=none", "tank/vmail"]]


def test_zfs_dataset(shell):
    dataset, value = hostile("tank/x"), hostile("note")
    properties = {"com.example:note": value, "quota": "1"}
    created = shell(commands_of(zfs_dataset, {ZfsProperties: {}}, dataset=dataset, properties=properties))
    assert created == [["zfs", "create", "-o", f"com.example:note={value}", "-o", "quota=1", dataset]]
    found = {ZfsProperties: {dataset: {"mounted": "no", "quota": "0"}}}
    changed = shell(commands_of(zfs_dataset, found, dataset=dataset, properties={"quota": value, "mountpoint": "/x"}))
    assert changed == [["zfs", "set", f"quota={value}", "mountpoint=/x", dataset], ["zfs", "mount", dataset]]


def test_md_config(shell):
    device, mail_to = hostile("/dev/md"), hostile("root@")
    facts = {MdConfig: {"configured": [], "running": None}}
    calls = shell(commands_of(md_config, facts, array_name=hostile("vmail"), device=device, mail_to=mail_to))
    assert calls == [["mdadm", "--detail", "--brief", device], ["update-initramfs", "-u"]]
    conf = (shell.root / "etc/mdadm/mdadm.conf").read_text().splitlines()
    assert conf[0] == f"MAILADDR {mail_to}"


def test_shell_variables(shell):
    path, value = "/etc/zed rc'$(touch PWNED)", hostile("v")
    (shell.root / path.replace("/etc/", "etc/")).write_text("ZED_EMAIL_ADDR=root\n")
    shell(commands_of(shell_variables, {FileContents: []}, path=path, values={"ZED_EMAIL_ADDR": value}))
    written = (shell.root / path.replace("/etc/", "etc/")).read_text()
    assert written == f"ZED_EMAIL_ADDR={shlex.quote(value)}\n"


def test_enabled_at_boot(shell):
    unit = hostile("a.service")
    calls = shell(commands_of(enabled_at_boot, {SystemdEnabled: {"zfs.target": True}}, units=[unit, "zfs.target"]))
    assert calls == [["systemctl", "enable", unit]]


def test_storage_commands(shell):
    device, other = hostile("/dev/a"), hostile("/dev/b")
    raid = MdRaid.model_construct(name=hostile("vmail"), level=10, devices=[device, other], filesystem="ext4")
    zfs = Zfs.model_construct(
        pool=hostile("tank"), ashift=12, properties={"compression": hostile("lz4")}, datasets=[],
        vdevs=[Vdev.model_construct(type="mirror", devices=[device, other])],
    )
    disks = {device: {"partitions": {f"{device}1": {}}}, other: None}
    commands = [
        *storage_rules.wipe_commands([device, other], [device, other], disks),
        storage_rules.mdadm_create(raid, device),
        storage_rules.mkfs(raid, device),
        storage_rules.zpool_create(zfs),
    ]
    assert shell(commands) == [
        ["wipefs", "--all", "--quiet", f"{device}1", device],
        ["wipefs", "--all", "--quiet", other],
        ["mdadm", "--create", device, f"--name={raid.name}", "--level=10", "--metadata=1.2", "--run",
         "--raid-devices=2", device, other],
        ["mkfs.ext4", "-q", device],
        ["zpool", "create", "-o", "ashift=12", "-O", f"compression={zfs.properties['compression']}",
         "-O", "mountpoint=none", "-O", "org.debian:periodic-scrub=disable", "-O", "com.sun:auto-snapshot=false",
         zfs.pool, "mirror", device, other],
    ]


def test_a_command_that_splices_a_value_fails_here(shell):
    """The harness itself: an unquoted value does run what it smuggles in."""
    with pytest.raises(AssertionError, match="ran a command"):
        shell(["mkdir -p /mnt/x;touch PWNED"])


def test_every_operation_is_covered():
    """A new operation module gets its hostile-value test here."""
    tested = {"mounts", "zfs", "mdadm", "shell_files", "components", "apt_sources", "units"}
    assert {path.stem for path in (PROJECT / "operations").glob("*.py")} - {"__init__"} <= tested
