"""What the end-to-end tests share: commands on lab hosts and mail clients that trust pebble."""

import ssl
import urllib.request

import pytest

from tests.lab.mail import Mx
from tests.support import ssh


@pytest.fixture(scope="session")
def pebble_root(lab) -> str:
    """pebble's current root (it makes a new one at each start), fetched over HTTPS from the lab CA."""
    ns = lab.config.hosts[lab.config.hosts_in("ns")[0]].address
    context = ssl.create_default_context(cafile=str(lab.ca[0]))
    context.check_hostname = False  # addressed by IP; the chain is still verified
    return urllib.request.urlopen(f"https://{ns}:15000/roots/0", context=context, timeout=10).read().decode()


@pytest.fixture(scope="session")
def mail_host(lab, pebble_root):
    """A client's view of one mx host, by name."""
    config = lab.config

    def make(name: str) -> Mx:
        return Mx(str(config.hosts[name].address), config.host_fqdn(name), pebble_root, config.domains[0].name)

    return make


@pytest.fixture(scope="module")
def started(lab) -> str:
    """When this module's tests began, for reading the journal of this run only."""
    return ssh(lab, "mx1", "date '+%Y-%m-%d %H:%M:%S'").strip()
