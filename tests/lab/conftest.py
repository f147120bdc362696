"""What the end-to-end tests share: mail clients that trust pebble, when a module began, and
the mx hosts' replication state and Dovecot log in the report of a test that failed."""

import shlex
import subprocess

import pytest

from deploys.replication_watchdog import UNIT as WATCHDOG
from mailstack.lab import mailcheck
from tests.support import ssh


@pytest.fixture(scope="session")
def pebble_root(lab) -> str:
    return mailcheck.pebble_root(lab)


@pytest.fixture(scope="session")
def vip(lab, pebble_root) -> mailcheck.Mx:
    """The cluster as a client sees it: the virtual IP, whichever backend serves."""
    return mailcheck.cluster(lab, pebble_root)


@pytest.fixture(scope="module", params=["mx1", "mx2"])
def mx(request, lab, pebble_root) -> mailcheck.Mx:
    """The cluster through the virtual IP, pinned to one backend for the whole module."""
    with mailcheck.pinned(lab, request.param):
        yield mailcheck.cluster(lab, pebble_root, request.param)


@pytest.fixture(scope="module")
def started(lab) -> str:
    """When this module's tests began, for reading the journal of this run only."""
    return ssh(lab, "mx1", "date '+%Y-%m-%d %H:%M:%S'").strip()


ROUTINE = ("Aborted login by logging out (no auth attempts", "Connection closed (no auth attempts",
           "Connect from local", "Disconnect from local", "saved mail to")
"""Dovecot's log lines that say nothing of a failure: each lb's protocol checks (a line every
second per port), the lab's own TLS probes and every delivery."""

REPLICATION = {
    "dsync": "doveadm replicator status '*'; doveadm replicator dsync-status;"
             " ps -eo pid,etimes,args | grep '[d]oveadm'",
    "drbd": "cat /proc/drbd; crm_mon -1 --include=failcounts",
}
"""By how the pair replicates: who waits to be replicated, what each dsync connection does and
how long the doveadm processes have run (a replication that stalls is named by these); or
DRBD's connection and disks, and where Pacemaker runs what, with what failed."""

JOURNALS = {"dsync": f"-u dovecot -u {WATCHDOG}", "drbd": "-u dovecot -u pacemaker -u corosync"}

BUSIEST = "top -b -c -w 150 -d 2 -n 2 | awk '/^top -/ { n++ } n == 2' | head -n 20"
"""This machine's load and what takes its CPU: a lab starved by a runaway process is slow everywhere."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed lab test's report carries this machine's load and the mx hosts' replication
    state and Dovecot log of their last minutes, so a failure seen once (in CI, where nothing
    else is kept) comes with what replication did."""
    report = (yield).get_result()
    lab = item.funcargs.get("lab")
    if report.failed and lab is not None:
        busiest = subprocess.run(BUSIEST, shell=True, capture_output=True, text=True)
        report.sections.append(("this machine: load and busiest processes", busiest.stdout))
        skip_routine = " ".join(f"-e {shlex.quote(line)}" for line in ROUTINE)
        replication = lab.config.mailbox_replication or "dsync"
        for host in lab.config.hosts_in("mx"):
            report.sections.append((f"{host}: replication", said(lab, host, REPLICATION[replication])))
            report.sections.append((f"{host}: journal ({JOURNALS[replication]})", said(
                lab, host, f"journalctl {JOURNALS[replication]} --since -15min --no-pager"
                           f" | grep -v {skip_routine} | tail -n 60")))


def said(lab, host: str, command: str) -> str:
    """What ``command`` printed on ``host``, or why not: a failed test may have left it down."""
    try:
        answer = lab.run(host, command, timeout=30)
    except subprocess.TimeoutExpired:
        return f"{host} did not answer within 30 s"
    return answer.stdout + answer.stderr
