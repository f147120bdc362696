"""BIND as an authoritative server for the mail domain, updatable over RFC 2136 (TSIG).

In the lab it is the zone's authority on ns1; pebble validates DNS-01 challenges against it,
and ``mailstack dns push`` publishes the cluster's records to it.
"""

from pyinfra.api import deploy

from deploys.common import configured_service
from mailstack.component import Component, ManagedFile, Target


@deploy("Authoritative DNS (BIND)")
def bind():
    configured_service(BIND, "named", "BIND", packages=["bind9"])


def values(target: Target) -> dict:
    return {"tsig_secret": target.named_secret(target.config.dns.tsig_secret_file)}


BIND = Component(
    bind,
    frozenset({"ns"}),
    files=(
        ManagedFile("/etc/bind/named.conf.options"),
        ManagedFile("/etc/bind/named.conf.local", mode="640", group="bind"),
        ManagedFile("/var/lib/bind/mail-domain.zone", user="bind", group="bind", create_only=True),
    ),
    check=(
        "mkdir -p {root}/var/cache/bind"  # named-checkconf changes into the options' directory
        " && named-checkconf -t {root} /etc/bind/named.conf.options"
        " && named-checkconf -t {root} /etc/bind/named.conf.local"
        " && zone={root}/var/lib/bind/mail-domain.zone"
        ' && named-checkzone -q "$(sed -n "s/^\\$ORIGIN //p" $zone)" $zone'
    ),
    values=values,
)
