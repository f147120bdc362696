"""testinfra against any inventory: ``pytest tests/infra --inventory inventories/prod.py``.

Each test module names the groups it checks in ``GROUPS`` (none: every host); the
``host`` fixture is then parametrised with those hosts of the inventory (of those named in
``--limit``, when given: ``mailstack verify --host``). Without ``--inventory`` the tier is
skipped, with that reason. With a lab's inventory (``inventories/lab.py``, ``lab-drbd.py``),
that lab is brought up and deployed first (and torn down afterwards if this run started it).
"""

import functools
import tempfile
from pathlib import Path

import pytest
import testinfra

from mailstack import backup, certificates
from mailstack.inventory import load_for
from mailstack.ssh import config_file


@functools.cache
def _control_sockets() -> str:
    """A private folder (0700) with a path short enough for SSH's control sockets."""
    return tempfile.mkdtemp(prefix="mailstack-ssh-")


def _inventory(config) -> Path | None:
    inventory = config.getoption("--inventory")
    return Path(inventory).resolve() if inventory else None


@pytest.fixture(scope="session")
def cluster(request):
    inventory = _inventory(request.config)
    if not inventory:
        pytest.skip("no --inventory given: tests/infra checks deployed hosts")
    config = load_for(inventory)
    if config.lab:
        request.getfixturevalue("lab")
    return config


@pytest.fixture(autouse=True)
def deployed(request):
    """Every check runs on deployed hosts, also one that asks only for ``host``: with a
    lab's inventory that lab is brought up and deployed first."""
    if _inventory(request.config):
        request.getfixturevalue("cluster")


def pytest_generate_tests(metafunc):
    if "host" not in metafunc.fixturenames:
        return
    inventory = _inventory(metafunc.config)
    if not inventory:
        metafunc.parametrize("host", [pytest.param(None, marks=pytest.mark.skip("no --inventory given"))])
        return
    config = load_for(inventory)
    groups = getattr(metafunc.module, "GROUPS", None)
    chosen = metafunc.config.getoption("--limit")
    names = [name for name, host in config.hosts.items()
             if (not groups or set(groups) & set(host.groups)) and (not chosen or name in chosen.split(","))]
    options = {
        "ssh_config": str(config_file(config)),
        # As the deploy does: a login other than root becomes root with sudo.
        "sudo": config.ssh.user != "root",
    }
    # One connection per host for all its checks (a new one per command costs a second on a TCG guest).
    hosts = [testinfra.get_host(f"ssh://{name}", controlpath=f"{_control_sockets()}/{name}", **options)
             for name in names]
    metafunc.parametrize("host", hosts, ids=names, scope="module")


@pytest.fixture
def mail_runs_here(host, cluster):
    """For a check of the running mail: skipped on the standby of a Debian 13 pair, where
    Pacemaker runs neither Postfix nor Dovecot and the mailboxes are not mounted
    (tests/infra/test_quorum.py checks that standby)."""
    if cluster.mailboxes_on_drbd(host.backend.hostname) and not host.mount_point("/var/vmail").exists:
        pytest.skip("the standby of a Debian 13 pair: its peer runs the mail")


@pytest.fixture(scope="session")
def mail_hosts(cluster) -> list[str]:
    """The mx hosts that run the mail: both, or of a Debian 13 pair the one with the mailboxes."""
    if cluster.mailbox_replication == "drbd":
        return [backup.mailbox_host(cluster, cluster.hosts_in("mx"))]
    return cluster.hosts_in("mx")


@pytest.fixture
def postfix_unit(host, cluster) -> str:
    """The unit that runs Postfix's instance: postfix@- on Debian 12, postfix itself on Debian 13."""
    return "postfix@-" if cluster.release_of(host.backend.hostname) == "bookworm" else "postfix"


@pytest.fixture(scope="session")
def trusted_roots(cluster) -> str:
    """Roots a client trusts beyond the system's: the cluster's own CA, or the ACME CA's configured roots."""
    return certificates.extra_roots(cluster)
