"""The Debian 13 mx pair end to end: /var/vmail on DRBD, the mail run by Pacemaker on one host
at a time (docs/ha.md). Only on a lab whose mx pair is on DRBD:

    pytest tests/lab/test_drbd.py --inventory inventories/lab-drbd.py

The lab's own inventory keeps its pair on Debian 12 (dsync), so CI skips this module.
"""

import json
import shlex
import subprocess
import time
from collections import Counter
from xml.etree import ElementTree

import pytest

from deploys.drbd import DEVICE, RESOURCE
from mailstack import backup as backups
from mailstack import mailboxes, services
from mailstack.cli import main
from mailstack.lab.mailcheck import message
from tests.lab import clients, faults
from tests.lab.test_backup import FOLDER, MESSAGES, appended, bob, contents, fill
from tests.lab.test_ha import all_readable
from tests.lab.test_monitoring import firing, status_all_well, status_of
from tests.support import changes, deploy, ssh

pytestmark = pytest.mark.lab
TAKEOVER_BOUND = 120  # seconds, under TCG: Pacemaker's agents are shell scripts (docs/ha.md)
ASIDE = "/root/vmail.drill"  # the disaster drill's lost mailboxes, kept in case the restore fails


@pytest.fixture(scope="module", autouse=True)
def drbd_pair(lab):
    if lab.config.mailbox_replication != "drbd":
        pytest.skip("the lab's mx pair replicates with dsync (run with --inventory inventories/lab-drbd.py)")


def answers(lab, name: str, command: str) -> str:
    """What ``command`` prints on ``name``; nothing while the host does not answer (being reset)."""
    try:
        return lab.run(name, command, timeout=10).stdout
    except subprocess.TimeoutExpired:
        return ""


def mail_holder(lab) -> str | None:
    """The mx host Pacemaker runs the mail on (its last service, Postfix, placed there), as the
    first host that answers says."""
    for name in lab.config.hosts_in("mx"):
        said = answers(lab, name, f"crm_resource --locate --resource {services.CLUSTERED[-1]}")
        if "is running on:" in said:
            return said.split()[-1]
    return None


def pair(lab) -> tuple[str, str]:
    faults.wait_for(lambda: mail_holder(lab), 300, "Pacemaker runs the mail")
    holder = mail_holder(lab)
    (other,) = [name for name in lab.config.hosts_in("mx") if name != holder]
    return holder, other


def replicated(lab, name: str) -> bool:
    return ssh(lab, name, f"drbdadm dstate {RESOURCE}").strip() == "UpToDate/UpToDate"


def test_the_mail_runs_on_one_host_with_the_mailboxes_mounted(lab):
    holder, other = pair(lab)
    faults.wait_for(lambda: replicated(lab, holder), 600, "both disks up to date")
    assert ssh(lab, holder, f"drbdadm role {RESOURCE}").strip() == "Primary/Secondary"
    assert ssh(lab, holder, "findmnt -n -o SOURCE /var/vmail").strip() == DEVICE
    running = "systemctl is-active dovecot postfix"
    faults.wait_for(lambda: lab.run(holder, running).stdout.split() == ["active", "active"], TAKEOVER_BOUND,
                    f"Dovecot and Postfix running on {holder}")
    assert ssh(lab, other, f"drbdadm role {RESOURCE}").strip() == "Secondary/Primary"
    assert lab.run(other, "mountpoint -q /var/vmail").returncode != 0
    assert "active" not in lab.run(other, "systemctl is-active dovecot postfix").stdout.split()  # or failed before
    for lb in lab.config.hosts_in("lb"):
        faults.wait_for(lambda: faults.backends_up(lab, lb) == {holder}, 60, f"{lb} sends clients to {holder} only")


def test_a_second_deploy_changes_nothing(lab):
    assert changes(deploy(lab.inventory)) == {}


def test_the_monitoring_knows_the_standby_runs_no_mail(lab, capsys):
    """The standby runs no Dovecot, its backends are DOWN and its queue is not mounted, by
    design: none of it is an alert, and ``mailstack status`` is all well, naming the holder."""
    holder, other = pair(lab)
    faults.wait_for(lambda: replicated(lab, holder), 600, "both disks up to date")
    status_all_well(lab, capsys, limit=300)
    _, said = status_of(lab, capsys)
    assert f"ok   {holder}: holds the mailboxes (DRBD Primary), mirrored" in said
    assert f"ok   {other}: the standby (DRBD Secondary), mirrored" in said
    time.sleep(70)  # longer than the `for` of each alert the standby used to fire
    assert [labels for labels in firing(lab) if labels.get("severity") != "info"] == []


def test_the_host_with_the_mailboxes_backs_them_up_and_a_deleted_folder_comes_back(lab, vip):
    """Only the holder has the mailboxes to read (the standby's DRBD device is not mounted):
    ``mailstack backup run`` and ``restore`` go there, whichever host Pacemaker chose."""
    holder, other = pair(lab)
    assert "mounted on the other mx host" in ssh(lab, other, f"{backups.SCRIPT} run")
    fill(vip, [FOLDER])
    wanted = contents(lab, vip, holder)
    assert sum(wanted.values()) == len(MESSAGES)
    try:
        assert main(["backup", "run", "-i", str(lab.inventory)]) == 0
        assert backups.archives(lab.config, holder)[-1].host == holder
        before_deletion = ssh(lab, holder, "date '+%Y-%m-%dT%H:%M:%S'").strip()
        with vip.imap("bob") as imap:
            assert imap.delete(FOLDER)[0] == "OK"
        assert main(["backup", "restore", "--user", bob(vip), "--folder", FOLDER, "--at", before_deletion,
                     "-i", str(lab.inventory)]) == 0
        assert contents(lab, vip, holder) == wanted
    finally:
        ssh(lab, holder, f"doveadm mailbox delete -r -s -u {bob(vip)} {FOLDER} 2>/dev/null; true")


def test_disaster_drill_every_mailbox_comes_back_on_the_host_with_the_mailboxes(lab, vip, capsys):
    """The pair lost its mailboxes and was rebuilt, its mail held out until the restore:
    ``restore --cluster`` unpacks the last backup where Pacemaker mounted /var/vmail, DRBD
    carries it to the other host, and Pacemaker runs the mail again. A UID that mail lost with
    the disaster had is never given again. (The lost mail is kept aside and put back should the
    restore fail, so the lab stays whole for the tests after this one.)"""
    holder, other = pair(lab)
    users = [user.address for user in lab.config.users]

    def held() -> dict:
        return {user: mailboxes.digests(lab.config, holder, user) for user in users}

    appended(vip, "drill: in the last backup")  # bob's INBOX, in the archive with its UIDVALIDITY
    before = held()
    assert main(["backup", "run", "-i", str(lab.inventory)]) == 0
    validity, lost_uid = appended(vip, "drill: after the last backup, lost with the pair")
    mailboxes_only = f"-mindepth 1 -maxdepth 1 ! -name {services.QUEUE_FOLDER}"
    postfix = services.postfix_units(lab.config.release_of(holder))
    backups.left_alone_by_pacemaker(lab.config, holder, True)
    ssh(lab, holder, f"systemctl stop {postfix} dovecot && mkdir {ASIDE}"
                     f" && find /var/vmail {mailboxes_only} -exec mv -t {ASIDE} {{}} +")
    waiting = "drill: waited in the queue during the disaster"
    ssh(lab, holder, f"/usr/sbin/sendmail {vip.user('alice')}",
        input=message(bob(vip), vip.user("alice"), waiting).as_string())
    restored = False
    try:
        assert main(["backup", "restore", "--cluster", "--json", "-i", str(lab.inventory)]) == 0
        restored = True
    finally:
        if not restored:
            ssh(lab, holder, f"systemctl stop {postfix} dovecot"
                             f" && find /var/vmail {mailboxes_only} -exec rm -rf {{}} +"
                             f" && find {ASIDE} -mindepth 1 -maxdepth 1 -exec mv -t /var/vmail {{}} +"
                             f" && systemctl start dovecot {postfix}")
            backups.left_alone_by_pacemaker(lab.config, holder, False)
        ssh(lab, holder, f"rm -rf {ASIDE}")
    report = json.loads(capsys.readouterr().out.splitlines()[-1])
    print(f"disaster drill on the pair: {report['users']} mailboxes, {report['messages']} messages,"
          f" {report['bytes']} bytes restored on {holder} in {report['seconds']} s")
    now = held()  # each message as often as before; mail may have arrived since (alerts to the postmaster)
    assert {user: Counter({m: now[user][m] for m in found}) for user, found in before.items()} == before
    faults.wait_for(lambda: mailboxes.fetch(lab.config, holder, vip.user("alice"), "uid",
                                            f"mailbox INBOX header subject {shlex.quote(waiting)}"), 60,
                    "the mail that waited in the queue delivered")
    after = appended(vip, "drill: after the restore")
    assert after[0] == validity and after[1] > lost_uid
    status = ElementTree.fromstring(ssh(lab, holder, "crm_mon -1 --output-as=xml"))
    for service in services.CLUSTERED:  # Pacemaker runs them again
        found = status.find(f".//resource[@id='{service}']")
        assert (found.get("role"), found.get("managed"), found.get("maintenance")) == ("Started", "true", "false")
    assert mail_holder(lab) == holder
    faults.wait_for(lambda: replicated(lab, holder), 600, f"{other} holds the restored mailboxes too")


def test_a_crash_of_the_host_with_the_mail_loses_no_accepted_message(lab, vip):
    holder, other = pair(lab)
    faults.wait_for(lambda: replicated(lab, holder), 600, "both disks up to date")
    with clients.SubmitLoop(vip) as loop:
        faults.wait_for(lambda: len(loop.accepted) >= 5, 60, "messages before the crash", 0.1)
        crashed = time.monotonic()
        faults.crash(lab, holder)
        faults.wait_for(lambda: loop.accepted and loop.accepted[-1][1] > crashed + 1, TAKEOVER_BOUND, "mail again")
        time.sleep(5)
    print(f"client outage after {holder} crashed: {loop.outage(crashed):.2f} s; "
          f"{len(loop.accepted)} accepted, {len(loop.errors)} errors")
    assert mail_holder(lab) == other
    for lb in lab.config.hosts_in("lb"):
        faults.wait_for(lambda: faults.backends_up(lab, lb, "imaps") == {other}, 60, f"{lb} sends IMAP to {other}")
    # Every message accepted was on both disks when accepted (protocol C), queue included. One
    # may wait in the queue: the crash can tear the end of Dovecot's index log, which Dovecot
    # repairs at the first delivery, after failing it (451); the queue retries 5 minutes on.
    ssh(lab, other, "postqueue -f")
    assert all_readable(vip, [subject for subject, _ in loop.accepted], limit=60) == []
    lab.start(holder)
    faults.wait_for(lambda: replicated(lab, other), 600, f"{holder} back and caught up")
    assert mail_holder(lab) == other, "the mail stays where it is when the crashed host returns"


def cut_from(lab, name: str, peer: str, cut: bool) -> None:
    """Drop (or let through again) everything between ``name`` and ``peer``, on ``name``'s side:
    the pair's own link fails while both still reach the lb hosts and the quorum host. Rules
    put in by hand go with a reset, so letting through again may find nothing to remove."""
    address = lab.config.hosts[peer].address
    rules = [f"INPUT -s {address} -j DROP", f"OUTPUT -d {address} -j DROP"]
    if cut:
        ssh(lab, name, " && ".join(f"iptables -I {rule}" for rule in rules))
    else:
        lab.run(name, "; ".join(f"iptables -D {rule}" for rule in rules), timeout=20)


BOOT_ID = "cat /proc/sys/kernel/random/boot_id"


def runs_the_mail(lab, name: str) -> bool:
    said = answers(lab, name, "mountpoint -q /var/vmail && echo mounted; systemctl -q is-active postfix && echo up")
    return bool(said.strip())


def test_a_pair_cut_in_two_keeps_the_mail_on_one_side_only(lab, vip):
    """The split brain the third vote and SBD prevent: the pair loses its own link while each
    host still reaches everything else. The host with the mail keeps it (qnetd's vote); the
    other loses quorum, never promotes DRBD nor runs the mail, and its watchdog resets it, so
    no accepted message exists on one side only."""
    holder, other = pair(lab)
    faults.wait_for(lambda: replicated(lab, holder), 600, "both disks up to date")
    booted = ssh(lab, other, BOOT_ID)
    with clients.SubmitLoop(vip) as loop:
        faults.wait_for(lambda: len(loop.accepted) >= 5, 60, "messages before the cut", 0.1)
        cut = time.monotonic()
        cut_from(lab, other, holder, cut=True)
        try:
            reset = faults.wait_for(lambda: answers(lab, other, BOOT_ID) not in ("", booted), 300,
                                    f"{other} reset by its watchdog", interval=1)
            for _ in range(10):  # the first minute after the cut: the mail stays on one host
                assert not runs_the_mail(lab, other)
                assert mail_holder(lab) == holder
                time.sleep(3)
        finally:
            cut_from(lab, other, holder, cut=False)
    print(f"{other} reset {reset:.1f} s after the cut; {len(loop.accepted)} accepted, {len(loop.errors)} errors;"
          f" the client's outage after the cut {loop.outage(cut):.2f} s")
    for lb in lab.config.hosts_in("lb"):
        faults.wait_for(lambda: faults.backends_up(lab, lb, "imaps") == {holder}, 60, f"{lb} sends IMAP to {holder}")
    assert all_readable(vip, [subject for subject, _ in loop.accepted], limit=60) == []
    faults.wait_for(lambda: replicated(lab, holder), 600, f"{other} back and caught up")
    assert mail_holder(lab) == holder


def test_the_peer_ports_are_open_to_the_pair_only(lab):
    rules = ssh(lab, lab.config.hosts_in("mx")[0], "iptables-save")
    assert f"--dport {services.DRBD_PORT}" in rules and f"--dport {services.COROSYNC_PORT}" in rules
