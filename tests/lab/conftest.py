"""What the end-to-end tests share: mail clients that trust pebble, when a module began, and
the mx hosts' Dovecot log in the report of a test that failed."""

import subprocess

import pytest

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


HEALTH_CHECKS = "'Aborted login by logging out (no auth attempts'"
"""Each lb's protocol checks: a Dovecot log line every second per port."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed lab test's report carries the mx hosts' Dovecot log of its last minutes, so a
    failure seen once (in CI, where nothing else is kept) comes with what replication did."""
    report = (yield).get_result()
    lab = item.funcargs.get("lab")
    if report.failed and lab is not None:
        for host in lab.config.hosts_in("mx"):
            report.sections.append((f"{host}: Dovecot's journal", dovecot_journal(lab, host)))


def dovecot_journal(lab, host: str) -> str:
    """The last 15 minutes of it, or why not: a failed test may have left the host down."""
    try:
        log = lab.run(host, f"journalctl -u dovecot --since -15min --no-pager | grep -v {HEALTH_CHECKS}"
                            " | tail -n 150", timeout=30)
    except subprocess.TimeoutExpired:
        return f"{host} did not answer within 30 s"
    return log.stdout or log.stderr
