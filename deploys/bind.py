"""BIND as an authoritative server for the mail domain, updatable over RFC 2136 (TSIG) and
signed with DNSSEC (BIND's own ``dnssec-policy``), so that senders can trust its TLSA records.

In the lab it is the zone's authority on ns1; pebble validates DNS-01 challenges against it,
and ``mailstack dns push`` publishes the cluster's records to it.
"""

from pyinfra.api import deploy
from pyinfra.operations import apt, files

from deploys.common import configured_service
from mailstack import secrets
from mailstack.component import Component, ManagedFile, Target

KEYS = "/var/lib/bind/keys"


@deploy("Authoritative DNS (BIND)")
def bind():
    apt.packages(name="Install BIND", packages=list(BIND.packages))
    files.directory(name="Create the zone key folder", path=KEYS, user="bind", group="bind", mode="750")
    configured_service(BIND, "named", "BIND", installed=True)


def managed_files(config) -> tuple[ManagedFile, ...]:
    """The settings, the zone file and the zone's signing key (made by ``mailstack secrets``).
    BIND keeps its own state in the zone and key files, so those are written once: a new ns
    host signs with the same key, and the trust placed in it stays valid."""
    return (
        ManagedFile("/etc/bind/named.conf.options"),
        ManagedFile("/etc/bind/named.conf.local", mode="640", group="bind"),
        ManagedFile("/var/lib/bind/mail-domain.zone", user="bind", group="bind", create_only=True),
    ) + tuple(
        ManagedFile(
            f"{KEYS}/{path.name}", mode="600", user="bind", group="bind", create_only=True,
            template_path=f"{KEYS}/zone-key", values=(("key_file", path),),
        )
        for path in secrets.zone_key_files(config)
    )


def values(target: Target) -> dict:
    return {"tsig_secret": target.named_secret(target.config.dns.tsig_secret_file), "zone_key": target.secret}


BIND = Component(
    bind,
    frozenset({"ns"}),
    files=managed_files,
    check=(
        "mkdir -p {root}/var/cache/bind {root}" + KEYS  # named-checkconf changes into the options' directory
        + " && named-checkconf -t {root} /etc/bind/named.conf.options"
        " && named-checkconf -t {root} /etc/bind/named.conf.local"
        " && zone={root}/var/lib/bind/mail-domain.zone"
        ' && named-checkzone -q "$(sed -n "s/^\\$ORIGIN //p" $zone)" $zone'
    ),
    values=values,
    packages=("bind9",),
)
