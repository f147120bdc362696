"""fail2ban on every host: sshd everywhere; on mx hosts Postfix SASL and Dovecot logins (and
during a migration the logins the old server refuses), banned by the client's own address
from the PROXY header (``action.d/mailstack-proxy.conf``)."""

from pyinfra.api import deploy

from deploys.common import configured_service
from mailstack import services
from mailstack.component import EVERY_HOST, Component, ManagedFile, Target
from mailstack.config import Config


@deploy("fail2ban")
def fail2ban():
    # python3-systemd: the jails read the journal; Debian 12 logs nowhere else by default.
    # Just installed, fail2ban-server takes seconds to open its socket (longer on a slow guest).
    configured_service(FAIL2BAN, "fail2ban", "fail2ban", ready="fail2ban-client ping")


def values(target: Target) -> dict:
    return {"deployer": target.deployer, "services": services.SERVICES}


def managed_files(config: Config) -> tuple[ManagedFile, ...]:
    """During a migration, a filter of its own for the logins the old server refuses."""
    migrating = (ManagedFile("/etc/fail2ban/filter.d/mailstack-old-server.conf"),) if config.migration else ()
    return (
        ManagedFile("/etc/fail2ban/jail.d/mailstack.local"),
        ManagedFile("/etc/fail2ban/action.d/mailstack-proxy.conf"),
        *migrating,
    )


FAIL2BAN = Component(
    fail2ban,
    EVERY_HOST,
    files=managed_files,
    # fail2ban-client tests a whole configuration folder: the shipped one with the staged files over it.
    check=(
        "cp -a /etc/fail2ban {root}/fail2ban-check && cp -a {root}/etc/fail2ban/. {root}/fail2ban-check/"
        " && fail2ban-client -c {root}/fail2ban-check --test >/dev/null"
    ),
    values=values,
    packages=("fail2ban", "python3-systemd"),
)
