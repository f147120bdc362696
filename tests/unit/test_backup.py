"""The parts of ``mailstack backup`` that need no host: which archive a time chooses, which
messages a restore puts back, and what the command refuses before touching any host."""

import subprocess
from collections import Counter
from datetime import datetime

import pytest

from deploys.backup import BORG_SSH
from mailstack import backup as backups
from mailstack import secrets
from mailstack.cli import main
from mailstack.config import ConfigError
from mailstack.inventory import load_for
from mailstack.mailboxes import Message
from mailstack.render import render_host
from mailstack.services import TEXTFILES
from tests.support import LAB_INVENTORY, PROJECT

ARCHIVES = [backups.Archive(f"mail-2026-12-02T{hour:02}:00:00-mx2", datetime(2026, 12, 2, hour)) for hour in (8, 9, 10)]


def test_the_newest_archive_before_the_time_is_chosen():
    assert backups.archive_at(ARCHIVES, datetime(2026, 12, 2, 9, 30)).name == "mail-2026-12-02T09:00:00-mx2"
    assert backups.archive_at(ARCHIVES, None) == ARCHIVES[-1]
    assert ARCHIVES[0].host == "mx2"


def test_a_time_before_every_archive_is_refused_with_the_oldest():
    with pytest.raises(backups.BackupError, match="no backup before 2026-12-02 07:00 .*oldest: 2026-12-02 08:00"):
        backups.archive_at(ARCHIVES, datetime(2026, 12, 2, 7))


def test_only_messages_no_longer_there_come_back_and_a_copy_counts_once():
    kept, lost, twice = (Message("Projects", "\\Seen", digest) for digest in ("a", "b", "c"))
    backed_up = [(kept, 1), (lost, 2), (twice, 3), (twice, 4)]
    live = Counter({kept._replace(flags=""): 1, twice: 1})  # flags changed since: still there
    assert backups._missing(backed_up, live) == [(lost, 2), (twice, 4)]
    assert backups._by_folder([(lost, 2), (twice, 4), (Message("Other", "", "d"), 9)]) == {"Projects": "2,4",
                                                                                           "Other": "9"}


def test_a_cluster_restore_moves_every_folder_past_the_archive_whatever_its_name():
    odd = "-x'; touch /tmp/owned; echo \"$(id)\" `id`"
    states = {"bob@mailstack.test": [{"mailbox": "INBOX", "uidnext": "9", "highestmodseq": "14"},
                                     {"mailbox": odd, "uidnext": "1", "highestmodseq": "1"}]}
    doveadm = "doveadm() { printf '%s|' \"$@\"; echo; }\n"  # each argument as doveadm would get it
    said = subprocess.run(["sh", "-es"], input=doveadm + backups.past_the_archive(states), capture_output=True,
                          text=True, check=True).stdout.splitlines()
    margin = backups.UID_MARGIN
    assert said == [f"mailbox|update|-u|bob@mailstack.test|--min-next-uid|{9 + margin}|--min-highest-modseq|"
                    f"{14 + margin}|--|INBOX|",
                    f"mailbox|update|-u|bob@mailstack.test|--min-next-uid|{1 + margin}|--min-highest-modseq|"
                    f"{1 + margin}|--|{odd}|"]


@pytest.mark.parametrize("arguments, says", [
    (["restore"], "give --user (or --cluster)"),
    (["restore", "--cluster", "--user", "bob@mailstack.test"], "leave out --user, --folder and --beside"),
    (["export-key"], "give --out FILE"),
    (["list", "--host", "lb1"], "--host lb1: no mx host of that name"),
])
def test_wrong_arguments_get_one_line_before_any_host(arguments, says, capsys):
    assert main(["backup", *arguments, "-i", str(LAB_INVENTORY)]) == 2
    error = capsys.readouterr().err
    assert says in error and error.count("\n") == 1, error


def test_an_unknown_user_is_refused_before_any_host():
    with pytest.raises(backups.BackupError, match="nobody@mailstack.test: no such user in .*lab.yml"):
        backups.restore(load_for(LAB_INVENTORY), "nobody@mailstack.test")


def test_on_a_debian_13_pair_backups_and_restores_go_where_the_mailboxes_are_mounted(monkeypatch):
    pair = load_for(LAB_INVENTORY.with_name("lab-drbd.py"))
    asked = []

    def run(config, host, command, **options):  # mx1 holds the mailboxes (with mail), the standby mx2 none
        asked.append((host, command.split()[0]))
        mounted = host == "mx1" or "mountpoint" not in command
        return subprocess.CompletedProcess(command, int(not mounted), b"/var/vmail/bob/cur/1" if mounted else b"", b"")
    monkeypatch.setattr(backups.ssh, "run", run)
    assert backups.standby(pair) == "mx2" and backups.answering_mx(pair) == "mx1"
    assert asked == [("mx2", "mountpoint"), ("mx1", "mountpoint")]
    with pytest.raises(backups.BackupError, match=r"no mx host has the mailboxes mounted \(mx2\)"):
        backups.take(pair, "mx2")
    with pytest.raises(backups.BackupError, match="mx1: /var/vmail still holds mail"):
        backups.restore_cluster(pair)
    assert asked[2:] == [("mx2", "mountpoint"), ("mx1", "mountpoint"), ("mx1", "find")]


def test_the_backup_hosts_key_must_be_known(tmp_path):
    config = load_for(LAB_INVENTORY)
    object.__setattr__(config.ssh, "known_hosts", str(tmp_path / "empty"))
    (tmp_path / "empty").write_text("")
    with pytest.raises(ConfigError, match="SSH host key of backup host bak1 .* is not in"):
        backups.known_host_lines(config)
    assert backups.known_host_lines(config, review=True).startswith("# MISSING")


STUBS = {  # each logs its arguments; zfs and mount keep their state in marker files
    "zfs": 'case "$1" in snapshot) touch "$STATE/snap" ;; list) [ -e "$STATE/snap" ] ;;'
           ' destroy) rm "$STATE/snap" ;; esac',
    "mount": 'touch "$STATE/mounted"',
    "umount": 'rm "$STATE/mounted"',
    "mountpoint": '[ -e "$STATE/mounted" ]',
    "borg": 'case "$1" in create) echo "in $PWD" >> "$STATE/log"; echo {}; exit "$BORG_STATUS" ;; esac',
}


@pytest.mark.parametrize("borg_status", [0, 2])
def test_a_zfs_host_backs_up_a_snapshot_and_always_lets_it_go(borg_status, tmp_path):
    """mx2 of the staging keeps /var/vmail on ZFS: borg reads a read-only snapshot mounted
    where the archive still names it var/vmail, and the snapshot goes whether borg succeeded."""
    config = load_for(PROJECT / "inventories" / "staging.py")
    secrets.make(config)
    assert render_host(config, "mx2", tmp_path / "mx2")
    script = (tmp_path / "mx2" / backups.SCRIPT.lstrip("/")).read_text()
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    for folder in (bin_dir, state, tmp_path / "settings", tmp_path / "metrics"):
        folder.mkdir()
    (tmp_path / "settings" / "borg.env").write_text("")
    for name, body in STUBS.items():
        (bin_dir / name).write_text(f'#!/bin/sh\necho "{name} $*" >> "$STATE/log"\n{body}\n')
        (bin_dir / name).chmod(0o755)
    script = (script.replace(backups.SETTINGS, str(tmp_path / "settings"))
              .replace(TEXTFILES, str(tmp_path / "metrics")).replace("/run/mailstack-backup", str(tmp_path / "run")))
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "STATE": str(state), "BORG_STATUS": str(borg_status)}
    subprocess.run(["bash", "-s", "run"], input=script, text=True, env=env, capture_output=True)
    log = (state / "log").read_text().splitlines()
    snapshot, mounted = "tank/vmail@mailstack-backup", str(tmp_path / "run" / "var" / "vmail")
    steps = [line for line in log if not line.startswith("borg ") or line.startswith("borg create ")]
    create = next(line for line in steps if line.startswith("borg create "))
    assert steps[steps.index(f"zfs snapshot {snapshot}"):] == [
        f"zfs snapshot {snapshot}", f"mount -t zfs -o ro {snapshot} {mounted}", create, f"in {tmp_path / 'run'}",
        f"mountpoint -q {mounted}", f"umount {mounted}", f"zfs list -H -o name {snapshot}", f"zfs destroy {snapshot}",
    ]
    assert " var/vmail " in create
    assert not (state / "snap").exists() and not (state / "mounted").exists()


def test_borgs_ssh_can_say_a_lot_to_a_borg_that_no_longer_listens(tmp_path):
    """borg closes a repository by waiting for ssh while no longer reading its stderr (borg issue
    #10165): a server with more than a pipe's 64 KiB still to say must not leave them both
    waiting. The fake ssh says 1 MiB, as borg 1.4's check of a damaged segment does."""
    config = load_for(LAB_INVENTORY)
    secrets.make(config)
    assert render_host(config, "mx1", tmp_path / "mx1")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text("#!/bin/sh\nhead -c 1048576 /dev/zero | tr '\\0' x >&2\n")
    (bin_dir / "ssh").chmod(0o755)
    wrapper = tmp_path / "mx1" / BORG_SSH.lstrip("/")
    remote = subprocess.Popen(["python3", wrapper, "borg@bak1", "borg", "serve"], stdin=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    try:
        assert remote.wait(timeout=30) == 0  # the stderr pipe left unread, as borg leaves it
    finally:
        remote.kill()
    assert len(remote.stderr.read()) == 1 << 20
