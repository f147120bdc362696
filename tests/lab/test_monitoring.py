"""Alerts proven to fire on the lab, and ``mailstack status`` showing each fault while it
lasts: an mx host crashed (the alert mail reaches the postmaster through the cluster, and
so does its resolution), an array member failed, VRRP blocked between the lb hosts (both
hold the virtual IP), Keepalived stopped on both (none does); and the prober restarted when the
system's roots change."""

import email
import email.header
import time

import pytest

from mailstack import backup, status, storage_rules
from mailstack.cli import main
from tests.lab import faults
from tests.lab.test_storage import STORE, raid, wait_until_healthy
from tests.support import ssh

pytestmark = pytest.mark.lab


def firing(lab, alertname: str | None = None) -> list[dict]:
    """The labels of each firing alert (of those named ``alertname``)."""
    named = f'alertname="{alertname}",' if alertname else ""
    return [labels for labels, _ in status.prometheus(lab.config).query(f'ALERTS{{{named}alertstate="firing"}}')]


def wait_until_firing(lab, alertname: str, limit: float = 120) -> float:
    return faults.wait_for(lambda: firing(lab, alertname), limit, f"{alertname} firing", interval=2)


def status_of(lab, capsys, *options: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["status", "--inventory", str(lab.config.source.with_suffix(".py")), *options])
    return code, capsys.readouterr().out


def status_all_well(lab, capsys, limit: float = 180) -> None:
    said = {}

    def all_well() -> bool:
        code, said["last"] = status_of(lab, capsys)
        return code == 0

    try:
        faults.wait_for(all_well, limit, "mailstack status all well", interval=3)
    except TimeoutError as error:
        raise TimeoutError(f"{error}; it last said:\n{said['last']}") from None


@pytest.fixture(scope="module", autouse=True)
def a_backup_succeeded(lab):
    """`mailstack status` counts a pair with no good backup as a fault. In the whole suite,
    tests/lab/test_backup.py has taken one before this module runs."""
    if not status.prometheus(lab.config).query(backup.AGE):
        assert main(["backup", "run", "--inventory", str(lab.config.source.with_suffix(".py"))]) == 0


@pytest.fixture
def whole(lab, capsys):
    """The test starts with the whole cluster up and nothing wrong, and ends so."""
    faults.make_whole(lab)
    status_all_well(lab, capsys)
    yield
    faults.make_whole(lab)
    status_all_well(lab, capsys)


class Postmaster:
    """The postmaster's mailbox (an alias of alice's in the lab), read through the virtual IP."""

    def __init__(self, vip):
        self.vip = vip
        with vip.imap("alice") as client:
            client.select("INBOX", readonly=True)
            uids = client.uid("SEARCH", None, "ALL")[1][0].split()
            self.seen = int(uids[-1]) if uids else 0

    def subjects(self) -> list[str]:
        """Subjects of the mail that arrived since this object was made."""
        with self.vip.imap("alice") as client:
            client.select("INBOX", readonly=True)
            uids = client.uid("SEARCH", None, f"UID {self.seen + 1}:*")[1][0].split()
            found = []
            for uid in (uid for uid in uids if int(uid) > self.seen):
                header = client.uid("FETCH", uid, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1][0][1]
                subject = email.message_from_bytes(header)["Subject"] or ""
                found.append(str(email.header.make_header(email.header.decode_header(subject))))
            return found

    def wait_for(self, *words: str, limit: float = 240) -> float:
        return faults.wait_for(lambda: any(all(word in s for word in words) for s in self.subjects()), limit,
                               f"a mail about {' '.join(words)}", interval=3)


def test_status_is_all_well_on_a_healthy_cluster(lab, whole, capsys):
    code, out = status_of(lab, capsys)
    assert code == 0 and out.endswith("all well\n"), out
    code, out = status_of(lab, capsys, "--direct")  # read from the hosts, as without a mon host
    assert code == 0 and out.endswith("all well\n") and "ok   mx1 dovecot: active" in out, out


def test_new_system_roots_restart_the_blackbox_exporter(lab):
    """The blackbox exporter reads the system's roots once: when they change (a rotated internal
    CA, the lab's pebble after a restart), update-ca-certificates' hook restarts it, or every
    probe of a certificate from the new root would fail until someone did."""
    mon = lab.config.hosts_in("mon")[0]
    started = "systemctl show -p ActiveEnterTimestampMonotonic --value prometheus-blackbox-exporter"
    before = ssh(lab, mon, started)
    ssh(lab, mon, "update-ca-certificates >/dev/null")
    assert ssh(lab, mon, started) != before


def test_a_crashed_mx_host_mails_the_postmaster_and_mails_again_when_it_is_back(lab, vip, whole, capsys):
    postmaster = Postmaster(vip)
    crashed_host = lab.config.hosts_in("mx")[-1]
    crashed = time.monotonic()
    faults.crash(lab, crashed_host)
    alerted = postmaster.wait_for("FIRING", "BackendDown")
    code, out = status_of(lab, capsys)
    assert code == 1 and f"FAIL {crashed_host}: not answering" in out and f"/{crashed_host}: DOWN" in out, out
    code, out = status_of(lab, capsys, "--direct")
    assert code == 1 and f"FAIL {crashed_host}: not answering" in out and f"/{crashed_host}: DOWN" in out, out
    lab.start(crashed_host)
    back = time.monotonic()
    resolved = postmaster.wait_for("RESOLVED", "BackendDown")
    print(f"the alert mail reached the postmaster {alerted:.0f} s after {crashed_host} crashed; the resolution"
          f" mail {resolved:.0f} s after it was started again ({back - crashed:.0f} s after the crash)")


def test_a_failed_array_member_fires_the_raid_alert_naming_the_device(lab, whole, capsys):
    wait_until_healthy(lab)
    device, member = storage_rules.array_device(raid(lab)), raid(lab).devices[1]
    md = ssh(lab, STORE, f"basename $(readlink -f {device})").strip()
    ssh(lab, STORE, f"mdadm {device} --fail {member}")
    try:
        wait_until_firing(lab, "RaidDegraded")
        assert [alert["device"] for alert in firing(lab, "RaidDegraded")] == [md]
        code, out = status_of(lab, capsys)
        assert code == 1 and f"FAIL {STORE} {md}: lacks 1 disk(s)" in out, out
    finally:
        ssh(lab, STORE, f"mdadm {device} --remove {member} && mdadm {device} --add {member}")
        wait_until_healthy(lab)


def test_blocked_vrrp_fires_split_brain_and_stopped_keepalived_fires_no_holder(lab, whole, capsys):
    lbs = lab.config.hosts_in("lb")
    block = "iptables -I INPUT 1 -p vrrp -j DROP"
    for name in lbs:
        ssh(lab, name, block)
    try:
        wait_until_firing(lab, "VirtualIpSplitBrain")
        code, out = status_of(lab, capsys)
        assert code == 1 and "(split brain)" in out, out
    finally:
        for name in lbs:
            ssh(lab, name, block.replace("-I INPUT 1", "-D INPUT"))
    for name in lbs:
        ssh(lab, name, "systemctl stop keepalived")
    wait_until_firing(lab, "VirtualIpHeldByNone")
    code, out = status_of(lab, capsys)
    assert code == 1 and "held by no lb host" in out, out
