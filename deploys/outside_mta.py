"""A mail server elsewhere on the Internet, for the lab: it sends to the cluster as other
providers do, through a validating resolver and with DANE (``smtp_tls_security_level = dane``),
so the lab proves that the published TLSA records protect mail coming in.

Only for the lab, on ``outside`` hosts. Its resolver (Unbound) learns the zone from the lab's
authority and trusts the zone's signing key as a parent zone's DS record would vouch for it.
"""

from pyinfra.api import deploy

from deploys.common import configured_service
from mailstack import secrets
from mailstack.component import Component, ManagedFile, Target


@deploy("A mail server outside the cluster")
def outside_mta():
    configured_service(OUTSIDE_MTA, ("unbound", "postfix"), "the outside mail server", restarted=True)


def trust_anchor(target: Target) -> str:
    """The zone's public signing key (its DNSKEY record), from ``mailstack secrets``."""
    public = [path for path in secrets.zone_key_files(target.config) if path.suffix == ".key"]
    text = target.secret(public[0] if public else secrets.zone_keys(target.config) / "K*.key")
    return next(line for line in text.splitlines() if not line.startswith(";"))


def values(target: Target) -> dict:
    config = target.config
    return {
        "zone": config.domains[0].name,
        "trust_anchor": trust_anchor(target),
        "authorities": [config.hosts[name].address for name in config.hosts_in("ns")],
        "clients": [config.lab.address.network] if config.lab else [],
    }


OUTSIDE_MTA = Component(
    outside_mta,
    frozenset({"outside"}),
    files=(
        ManagedFile("/etc/unbound/unbound.conf.d/mailstack.conf"),
        ManagedFile("/etc/resolv.conf"),
        ManagedFile("/etc/postfix/main.cf", template_path="/etc/postfix/outside-main.cf"),
    ),
    check=(
        "unbound-checkconf {root}/etc/unbound/unbound.conf.d/mailstack.conf >/dev/null"
        # main.cf beside the package's own master.cf, which stays as Debian ships it
        " && cp /etc/postfix/master.cf {root}/etc/postfix/"
        " && postconf -c {root}/etc/postfix -n >/dev/null && postfix -c {root}/etc/postfix check"
    ),
    values=values,
    packages=("unbound", "dns-root-data", "postfix"),
)
