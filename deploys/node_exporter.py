"""Prometheus's node exporter on every host, for the mon hosts: CPU, memory, file systems,
md arrays (its md collector), ZFS pools, and text files in its textfile folder: Keepalived's
VRRP state (written by Keepalived's notify script), and what ``mailstack-metrics.timer``
asks the host's services for where no exporter serves it: the certificate on disk (mx and
lb hosts), Dovecot's replication state per user (a Debian 12 pair) or Pacemaker's quorum and
failed actions (a Debian 13 pair, whose DRBD state the exporter reads itself), Rspamd's own
metrics (mx hosts), and a ZFS pool's error counts (storage hosts with ZFS).
Installed only where a mon host will scrape it.
"""

from pyinfra.api import deploy

from deploys.common import configured_service
from mailstack import certificates, services
from mailstack.component import EVERY_HOST, Component, ManagedFile, Target, verify_units

TEXTFILES = services.TEXTFILES
TIMER = "mailstack-metrics.timer"
RSPAMD_CONTROLLER_PORT = 11334  # Rspamd's default, on localhost


@deploy("Node exporter")
def node_exporter():
    configured_service(NODE_EXPORTER, ("prometheus-node-exporter", TIMER), "the node exporter", restarted=True)


def values(target: Target) -> dict:
    serves_tls = {"mx", "lb"} & set(target.settings.groups)
    return {
        "port": services.NODE_EXPORTER_PORT,
        "textfiles": TEXTFILES,
        "certificate": certificates.paths(target.config)["certificate"] if serves_tls else None,
        "rspamd_controller_port": RSPAMD_CONTROLLER_PORT,
        "on_drbd": target.config.mailboxes_on_drbd(target.name),
    }


def monitored(config) -> bool:
    return bool(config.hosts_in("mon"))


NODE_EXPORTER = Component(
    node_exporter,
    EVERY_HOST,
    files=(
        ManagedFile("/etc/default/prometheus-node-exporter"),
        ManagedFile("/usr/local/sbin/mailstack-metrics", mode="755"),
        ManagedFile("/etc/systemd/system/mailstack-metrics.service"),
        ManagedFile(f"/etc/systemd/system/{TIMER}"),
    ),
    check=(
        "sh -n {root}/etc/default/prometheus-node-exporter && sh -n {root}/usr/local/sbin/mailstack-metrics && "
        + verify_units("/usr/local/sbin/mailstack-metrics", "mailstack-metrics")
    ),
    values=values,
    when=monitored,
    packages=("prometheus-node-exporter", "curl"),
)
