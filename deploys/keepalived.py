"""Keepalived on the lb hosts: VRRP moves the virtual IP to a healthy lb host."""

from pyinfra.api import deploy

from deploys.common import configured_service
from mailstack.component import FRONT, Component, ManagedFile, Target


@deploy("Keepalived")
def keepalived():
    configured_service(KEEPALIVED, "keepalived", "Keepalived", packages=["keepalived"])


def values(target: Target) -> dict:
    return {
        "peers": [name for name in target.config.hosts_in("lb") if name != target.name],
        "vrrp_password": target.named_secret("vrrp.pass"),
    }


KEEPALIVED = Component(
    keepalived,
    FRONT,
    files=(
        ManagedFile("/etc/keepalived/keepalived.conf", mode="600"),
        ManagedFile("/etc/keepalived/notify.sh", mode="755"),
        ManagedFile("/etc/keepalived/haproxy-healthy.sh", mode="755"),
    ),
    # keepalived --config-test fails on scripts that do not exist yet: the staged ones stand in.
    check=(
        "sh -n {root}/etc/keepalived/notify.sh && sh -n {root}/etc/keepalived/haproxy-healthy.sh"
        " && sed 's#/etc/keepalived/#{root}/etc/keepalived/#' {root}/etc/keepalived/keepalived.conf"
        " > {root}/keepalived-check.conf && keepalived --config-test --use-file {root}/keepalived-check.conf"
    ),
    values=values,
)
