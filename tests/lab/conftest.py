"""What the end-to-end tests share: mail clients that trust pebble, and when a module began."""

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
