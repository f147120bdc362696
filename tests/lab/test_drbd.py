"""The Debian 13 mx pair end to end: /var/vmail on DRBD, the mail run by Pacemaker on one host
at a time (docs/ha.md). Only on a lab whose mx pair is on DRBD:

    pytest tests/lab/test_drbd.py --inventory inventories/lab-drbd.py

The lab's own inventory keeps its pair on Debian 12 (dsync), so CI skips this module.
"""

import time

import pytest

from deploys.drbd import DEVICE, RESOURCE
from mailstack import services
from tests.lab import clients, faults
from tests.lab.test_ha import all_readable
from tests.support import changes, deploy, ssh

pytestmark = pytest.mark.lab
TAKEOVER_BOUND = 120  # seconds, under TCG: Pacemaker's agents are shell scripts (docs/ha.md)


@pytest.fixture(scope="module", autouse=True)
def drbd_pair(lab):
    if lab.config.mailbox_replication != "drbd":
        pytest.skip("the lab's mx pair replicates with dsync (run with --inventory inventories/lab-drbd.py)")


def mail_holder(lab) -> str | None:
    """The mx host Pacemaker runs the mail on (its last service, Postfix, placed there), as the
    first host that answers says."""
    for name in lab.config.hosts_in("mx"):
        result = lab.run(name, f"crm_resource --locate --resource {services.CLUSTERED[-1]}", timeout=20)
        if result.returncode == 0 and "is running on:" in result.stdout:
            return result.stdout.split()[-1]
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


def test_the_peer_ports_are_open_to_the_pair_only(lab):
    rules = ssh(lab, lab.config.hosts_in("mx")[0], "iptables-save")
    assert f"--dport {services.DRBD_PORT}" in rules and f"--dport {services.COROSYNC_PORT}" in rules
