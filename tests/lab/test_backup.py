"""Backups end to end: bob's folder, with flags and keywords, is backed up by the standby mx
host into bak1's repository; deleted, it comes back as it was (every message's SHA-256 and
flags) on both mx hosts; restored beside, nothing of the live mailbox changes while mail
arrives; the backup key runs borg for this repository only; a wrong passphrase and a
damaged segment are named."""

import imaplib
import json
import re
import shlex
import time
from collections import Counter

import pytest

from deploys.backup import BACKUP_TIMER
from mailstack import backup as backups
from mailstack import mailboxes
from mailstack.cli import main
from mailstack.lab.mailcheck import message
from mailstack.services import postfix_units
from tests.lab.clients import SubmitLoop
from tests.lab.faults import cluster_whole, wait_for
from tests.support import ssh

pytestmark = pytest.mark.lab

FOLDER = "Projects"
# (subject, flags) of the messages in the folder, and one in a folder below it
MESSAGES = [("plan", r"\Seen"), ("budget", r"\Seen \Flagged $Forwarded"), ("draft", r"\Draft mailstack-kept"),
            ("unread", "")]


def inventory(lab) -> str:
    return str(lab.config.source.with_suffix(".py"))


def bob(vip) -> str:
    return vip.user("bob")


def contents(lab, vip, host: str = "mx1"):
    return mailboxes.digests(lab.config, host, bob(vip), mailboxes.search(FOLDER))


def replicated(lab, vip, wanted) -> bool:
    return contents(lab, vip, "mx2") == wanted


def remove_folders(lab, vip) -> None:
    """bob's test folders and restored copies, gone from both mx hosts."""
    ssh(lab, "mx1", f"doveadm mailbox delete -r -s -u {bob(vip)} {FOLDER} 'Restored *' 2>/dev/null; true")
    wait_for(lambda: replicated(lab, vip, Counter()), 60, "mx2 no longer holds bob's folders")


def fill(vip, folders: list[str]) -> None:
    """bob's ``folders`` made and ``MESSAGES`` put in them, each a day older than the one
    before: the first message in the last folder, the others in the first."""
    with vip.imap("bob") as imap:
        for folder in folders:
            imap.create(folder)
        for number, (subject, flags) in enumerate(MESSAGES):
            mail = message(vip.user("alice"), bob(vip), f"backup {subject}", body=f"{subject} {'x' * 200}\n")
            imap.append(folders[0] if number else folders[-1], f"({flags})",
                        imaplib.Time2Internaldate(time.time() - 86400 * number), mail.as_bytes())


@pytest.fixture(scope="module")
def no_scheduled_backups(lab):
    """The tests decide which backups exist: a scheduled one taken between a deletion and its
    restore (the standby's runs at the full hour) would be the latest, without the folder."""
    for host in lab.config.hosts_in("mx"):
        ssh(lab, host, f"systemctl stop {BACKUP_TIMER}")
    yield
    for host in lab.config.hosts_in("mx"):
        ssh(lab, host, f"systemctl start {BACKUP_TIMER}")


@pytest.fixture(scope="module")
def backed_up(lab, vip, no_scheduled_backups):
    """bob's Projects and Projects/2024, then a backup; what the folders held."""
    remove_folders(lab, vip)
    fill(vip, [FOLDER, f"{FOLDER}/2024"])
    wanted = contents(lab, vip)
    assert sum(wanted.values()) == len(MESSAGES)
    wait_for(lambda: replicated(lab, vip, wanted), 60, "mx2 holds bob's folders")
    assert main(["backup", "run", "-i", inventory(lab)]) == 0
    yield wanted
    remove_folders(lab, vip)


def test_the_standby_took_the_backup_and_status_shows_it(lab, backed_up, capsys):
    found = backups.archives(lab.config, "mx1")
    assert found and found[-1].host == backups.standby(lab.config)
    assert main(["status", "--direct", "-i", inventory(lab)]) in (0, 1)
    repository = f"{backups.backup_host(lab.config)}:{backups.repository_path(lab.config)}"
    line = next(line for line in capsys.readouterr().out.splitlines() if repository in line)
    assert "last good backup" in line and f"(from {backups.standby(lab.config)})" in line, line


def test_a_failure_on_the_active_host_is_over_once_its_next_run_finds_the_standbys_backup(lab, backed_up):
    """The active host backs up only when the standby has not (``--if-due``): its own failed
    run must not stay reported for as long as the standby's backups keep it from running."""
    active = next(host for host in lab.config.hosts_in("mx") if host != backups.standby(lab.config))
    ssh(lab, active, f"touch {backups.METRICS} && sed -i '/^mailstack_backup_success /d' {backups.METRICS}"
                     f" && echo 'mailstack_backup_success 0' >> {backups.METRICS}")
    said = ssh(lab, active, f"systemctl start {BACKUP_TIMER.replace('.timer', '.service')}"
                            " && journalctl -u mailstack-backup -n 5 --no-pager")
    assert "not due" in said
    assert "mailstack_backup_success 1" in ssh(lab, active, f"cat {backups.METRICS}")


def test_a_deleted_folder_comes_back_as_it_was_on_both_mx_hosts(lab, vip, backed_up):
    before_deletion = ssh(lab, "mx1", "date '+%Y-%m-%dT%H:%M:%S'").strip()
    with vip.imap("bob") as imap:
        for folder in (f"{FOLDER}/2024", FOLDER):
            assert imap.delete(folder)[0] == "OK"
    wait_for(lambda: replicated(lab, vip, Counter()), 60, "the deletion reaches mx2")

    assert main(["backup", "restore", "--user", bob(vip), "--folder", FOLDER, "--at", before_deletion,
                 "-i", inventory(lab)]) == 0
    assert contents(lab, vip) == backed_up
    wait_for(lambda: replicated(lab, vip, backed_up), 60, "the restored folder reaches mx2")


def test_a_restore_in_place_doubles_nothing_that_is_still_there(lab, vip, backed_up):
    assert main(["backup", "restore", "--user", bob(vip), "--folder", FOLDER, "-i", inventory(lab)]) == 0
    assert contents(lab, vip) == backed_up


def test_a_restore_beside_changes_nothing_of_the_live_mailbox_while_mail_arrives(lab, vip, backed_up, capsys):
    live = mailboxes.digests(lab.config, "mx1", bob(vip))
    with vip.imap("bob") as session, SubmitLoop(vip) as arriving:
        session.select("INBOX")
        assert main(["backup", "restore", "--user", bob(vip), "--folder", FOLDER, "--beside", "--json",
                     "-i", inventory(lab)]) == 0
        wait_for(lambda: len(arriving.accepted) >= 3, 60, "mail arrives during the restore")
    into = json.loads(capsys.readouterr().out.splitlines()[-1])["into"]
    after = mailboxes.digests(lab.config, "mx1", bob(vip))
    beside = Counter({m: n for m, n in after.items() if m.folder.startswith(f"{into}/")})
    assert not live - (after - beside), "a message of the live mailbox changed or went away"
    assert Counter(m._replace(folder=m.folder.removeprefix(f"{into}/")) for m in beside.elements()) \
        == backed_up


def test_the_backup_key_runs_borg_for_this_repository_only(lab):
    key = f"-i {backups.SETTINGS}/id_ed25519 -o UserKnownHostsFile={backups.SETTINGS}/known_hosts -o BatchMode=yes"
    address = lab.config.hosts[backups.backup_host(lab.config)].address
    shell = lab.run("mx1", f"ssh {key} borg@{address} 'echo SHELL; id'")
    assert "SHELL" not in shell.stdout and "uid=" not in shell.stdout
    other = lab.run("mx1", f"BORG_RSH='ssh {key}' borg list ssh://borg@{address}/srv/borg/other")
    assert other.returncode != 0 and "Repository path not allowed" in other.stderr, other.stderr


def test_a_wrong_passphrase_is_named(lab, capsys):
    host = backups.standby(lab.config)
    passphrase = f"{backups.SETTINGS}/passphrase"
    ssh(lab, host, f"cp -p {passphrase} {passphrase}.kept && echo wrong > {passphrase}")
    try:
        assert main(["backup", "list", "-i", inventory(lab)]) == 1
    finally:
        ssh(lab, host, f"mv {passphrase}.kept {passphrase}")
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "passphrase" in error and "incorrect" in error, error


def test_a_damaged_segment_fails_the_check_which_names_it(lab, backed_up, capfd):
    repository = backups.repository_path(lab.config)
    segment = ssh(lab, "bak1", f"ls -S {repository}/data/*/* | head -n 1").strip()  # the largest: it holds data
    ssh(lab, "bak1", f"cp -p {segment} /root/segment.kept && printf 'damaged' | dd of={segment} bs=1"
                     f" seek=$(( $(stat -c %s {segment}) / 2 )) conv=notrunc status=none")
    try:
        assert main(["backup", "check", "-i", inventory(lab)]) != 0
    finally:
        ssh(lab, "bak1", f"mv /root/segment.kept {segment}")
    said = capfd.readouterr()
    assert f"segment {segment.rpartition('/')[2]}" in said.out + said.err, said.err[-2000:]
    assert main(["backup", "check", "-i", inventory(lab)]) == 0


def appended(vip, subject: str) -> tuple[int, int]:
    """A new message in bob's INBOX: the folder's UIDVALIDITY and the message's UID (APPENDUID)."""
    mail = message(vip.user("alice"), bob(vip), subject)
    with vip.imap("bob") as imap:
        _, said = imap.append("INBOX", "", imaplib.Time2Internaldate(time.time()), mail.as_bytes())
    validity, uid = re.search(rb"APPENDUID (\d+) (\d+)", said[0]).groups()
    return int(validity), int(uid)


def test_disaster_drill_every_mailbox_comes_back_on_both_mx_hosts(lab, vip, backed_up, capsys):
    """Both mx hosts lose /var/vmail; restore --cluster brings every mailbox back from the last
    backup, the same on both, and replication carries on. A UID that mail lost with the disaster
    had is never given again. (Each host's mail is kept aside and put back should the restore
    fail, so the lab stays whole for the tests after this one.)"""
    users = [user.address for user in lab.config.users]
    hosts = lab.config.hosts_in("mx")

    def held(host: str) -> dict:
        return {user: mailboxes.digests(lab.config, host, user) for user in users}

    def folders(host: str) -> dict:
        return {user: sorted((f["mailbox"], f["guid"], f["uidvalidity"], f["uidnext"]) for f in found)
                for user, found in mailboxes.states(lab.config, host, users).items()}

    # The backup reads the standby, which replication may not have brought level yet
    wait_for(lambda: held(hosts[0]) == held(hosts[1]), 60, "both mx hosts hold the same mail")
    before = held(hosts[0])
    assert main(["backup", "run", "-i", inventory(lab)]) == 0
    validity, lost_uid = appended(vip, "drill: after the last backup, lost with the cluster")
    # The hosts rebuilt and deployed, Postfix held stopped until the restore (docs/backups.md)
    postfix = postfix_units(lab.config.release_of(hosts[0]))
    for command in (f"systemctl stop {postfix} dovecot",
                    "mv /var/vmail /var/vmail.drill && install -d -o vmail -g vmail -m 750 /var/vmail",
                    "systemctl start dovecot"):
        for host in hosts:
            ssh(lab, host, command)
    # Mail waits for the cluster, as the alerts about the outage do: Postfix delivers it as soon
    # as it starts, and the restore must compare the hosts before that.
    waiting = "drill: waited in the queue during the disaster"
    ssh(lab, hosts[0], f"/usr/sbin/sendmail {vip.user('alice')}",
        input=message(bob(vip), vip.user("alice"), waiting).as_string())
    restored = False
    try:
        assert main(["backup", "restore", "--cluster", "--json", "-i", inventory(lab)]) == 0
        restored = True
    finally:
        undo = "" if restored else (f"systemctl stop {postfix} dovecot && rm -rf /var/vmail && mv"
                                    f" /var/vmail.drill /var/vmail && systemctl start dovecot {postfix} && ")
        for host in hosts:
            ssh(lab, host, undo + "rm -rf /var/vmail.drill")
    # With both mx hosts down, both lb hosts' Keepalived went to FAULT; coming back, the second
    # took the address and the first takes it back after its preempt delay, cutting the
    # connections made meanwhile: through the virtual IP only once the first holds it again.
    wait_for(lambda: cluster_whole(lab), 180, "the cluster whole again after the restore")
    report = json.loads(capsys.readouterr().out.splitlines()[-1])
    print(f"disaster drill: {report['users']} mailboxes, {report['messages']} messages, {report['bytes']} bytes"
          f" restored on {len(hosts)} mx hosts in {report['seconds']} s")
    for host in hosts:  # each message as often as before; mail may have arrived since (alerts to the postmaster)
        now = held(host)
        assert {user: Counter({m: now[user][m] for m in found}) for user, found in before.items()} == before, host
    for host in hosts:
        wait_for(lambda: mailboxes.fetch(lab.config, host, vip.user("alice"), "uid",
                                         f"mailbox INBOX header subject {shlex.quote(waiting)}"), 60,
                 f"{host} holds the mail that waited in the queue")
    after = appended(vip, "drill: after the restore")
    assert after[0] == validity and after[1] > lost_uid
    wait_for(lambda: mailboxes.fetch(lab.config, hosts[1], bob(vip), "uid", f"mailbox INBOX uid {after[1]}"), 60,
             f"{hosts[1]} holds the message delivered after the restore")
    wait_for(lambda: folders(hosts[0]) == folders(hosts[1]), 60,
             "both mx hosts' folders have the same GUID, UIDVALIDITY and next UID after the restore")
    wait_for(lambda: "\ty" not in ssh(lab, "mx1", "doveadm -f tab replicator status '*'"), 60,
             "replication works for every user after the restore")


def test_the_configuration_and_secrets_are_kept_and_the_key_exported_for_offline(lab, backed_up, tmp_path, capsys):
    newest = ssh(lab, "mx1", f"{backups.SCRIPT} borg list --short --glob-archives '{backups.STATE_ARCHIVES}*'"
                             " --last 1").strip()
    kept = ssh(lab, "mx1", f"{backups.SCRIPT} borg extract --stdout ::{newest} | tar -t").split()
    assert {"lab.yml", "secrets/lab/doveadm.pass", f"secrets/lab/{backups.PASSPHRASE}"} <= set(kept), kept

    out = tmp_path / "offline" / "lab-borg-key"
    assert main(["backup", "export-key", "--out", str(out), "-i", inventory(lab)]) == 0
    passphrase = (lab.config.secrets_dir / backups.PASSPHRASE).read_text().strip()
    exported = out.read_text()
    assert out.stat().st_mode & 0o777 == 0o600
    assert "BORG_KEY " in exported and f"passphrase: {passphrase}" in exported
    assert passphrase not in capsys.readouterr().out
