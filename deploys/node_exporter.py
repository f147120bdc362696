"""Prometheus's node exporter on every host, for the mon hosts: CPU, memory, file systems,
md arrays (its md collector), ZFS pools, and the text files other components write into
its textfile folder (Keepalived's VRRP state). Installed only where a mon host will scrape it.
"""

from pyinfra.api import deploy

from deploys.common import configured_service
from mailstack import services
from mailstack.component import EVERY_HOST, Component, ManagedFile, Target

TEXTFILES = "/var/lib/prometheus/node-exporter"


@deploy("Node exporter")
def node_exporter():
    configured_service(NODE_EXPORTER, "prometheus-node-exporter", "the node exporter",
                       packages=["prometheus-node-exporter"], restarted=True)


def values(target: Target) -> dict:
    return {"port": services.NODE_EXPORTER_PORT, "textfiles": TEXTFILES}


def monitored(config) -> bool:
    return bool(config.hosts_in("mon"))


NODE_EXPORTER = Component(
    node_exporter,
    EVERY_HOST,
    files=(ManagedFile("/etc/default/prometheus-node-exporter"),),
    check="sh -n {root}/etc/default/prometheus-node-exporter",
    values=values,
    when=monitored,
)
