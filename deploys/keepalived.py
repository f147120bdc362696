"""Keepalived on the lb hosts: VRRP moves the virtual IP to a healthy lb host."""

import shlex

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import server

from deploys import node_exporter
from deploys.common import configured_service
from mailstack.component import FRONT, Component, ManagedFile, Target
from operations.components import cluster_config

HAPROXY_STOPPED = "/run/mailstack-haproxy-stopped"
"""1 while HAProxy is stopped or dead, written by its systemd unit; Keepalived tracks it."""


@deploy("Keepalived")
def keepalived():
    files = configured_service(KEEPALIVED, "keepalived", "Keepalived")
    server.shell(
        name="Report whether this host holds the virtual IP",
        commands=[report_state(cluster_config(), host.name)],
        _if=files.did_change,
    )


def report_state(config, host_name: str) -> str:
    """The notify script's report of the current state, for a new script: Keepalived runs it
    only on a transition, and a reload keeps the state."""
    settings = config.hosts[host_name]
    holds = f"ip -o addr show dev {shlex.quote(settings.interface)} | grep -qF ' {config.cluster.virtual_ip}/'"
    return (f"state=$({holds} && echo MASTER || echo BACKUP);"
            f" /etc/keepalived/notify.sh INSTANCE {config.cluster.name} $state {settings.vrrp_priority}")


def values(target: Target) -> dict:
    return {
        "peers": [name for name in target.config.hosts_in("lb") if name != target.name],
        "haproxy_stopped": HAPROXY_STOPPED,
        "textfiles": node_exporter.TEXTFILES,
    }


KEEPALIVED = Component(
    keepalived,
    FRONT,
    files=(
        ManagedFile("/etc/keepalived/keepalived.conf", mode="600"),
        ManagedFile("/etc/keepalived/notify.sh", mode="755"),
        ManagedFile("/etc/keepalived/haproxy-healthy.sh", mode="755"),
        ManagedFile("/etc/systemd/system/keepalived.service.d/mailstack.conf"),
        ManagedFile("/etc/systemd/system/haproxy.service.d/mailstack.conf"),
    ),
    # keepalived --config-test fails on scripts that do not exist yet: the staged ones stand in.
    check=(
        "sh -n {root}/etc/keepalived/notify.sh && sh -n {root}/etc/keepalived/haproxy-healthy.sh"
        " && sed 's#/etc/keepalived/#{root}/etc/keepalived/#' {root}/etc/keepalived/keepalived.conf"
        " > {root}/keepalived-check.conf && keepalived --config-test --use-file {root}/keepalived-check.conf"
    ),
    values=values,
    packages=("keepalived",),
)
