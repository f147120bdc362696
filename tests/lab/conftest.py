"""What the end-to-end tests share: mail clients that trust pebble, and when a module began."""

import pytest

from mailstack.lab import mailcheck
from tests.support import ssh


@pytest.fixture(scope="session")
def pebble_root(lab) -> str:
    return mailcheck.pebble_root(lab)


@pytest.fixture(scope="session")
def mail_host(lab, pebble_root):
    """A client's view of one mx host, by name."""
    return lambda name: mailcheck.mail_host(lab, name, pebble_root)


@pytest.fixture(scope="module")
def started(lab) -> str:
    """When this module's tests began, for reading the journal of this run only."""
    return ssh(lab, "mx1", "date '+%Y-%m-%d %H:%M:%S'").strip()
