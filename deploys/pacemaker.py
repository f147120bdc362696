"""Pacemaker and Corosync on a Debian 13 mx pair (docs/ha.md): Corosync keeps the two hosts'
membership (knet, encrypted and authenticated with the cluster's ``corosync.key``), and
Pacemaker runs the mail on one host at a time: DRBD's ``vmail`` resource promoted there
(``deploys/drbd.py``), then /var/vmail mounted, then Dovecot and Postfix started. The other
host holds the replica and runs neither, so HAProxy's health checks send every client to the
host with the mail.

Pacemaker's configuration is shared by the pair: each host puts the rendered resources and
constraints in whenever they changed (the same text twice changes nothing). The constraints
are merged by their IDs, so the one DRBD's fencing handler adds while a replica is outdated
stays; a constraint dropped from the template stays too, until removed by hand. No fencing device
is configured; DRBD's resource-level fencing keeps an outdated replica from being promoted.
"""

import shlex

from pyinfra.api import deploy
from pyinfra.operations import server, systemd

from deploys.common import configured_service
from deploys.drbd import DEVICE, QUEUE_FOLDER, RESOURCE, on_drbd
from mailstack import secrets, services
from mailstack.component import MAIL, Component, ManagedFile, Target
from operations.components import cluster_config

CIB = "/etc/mailstack/pacemaker"
# Cluster-wide settings, by section. Without a fencing device Pacemaker must not wait for one.
PROPERTIES = {"crm_config": {"stonith-enabled": "false"}, "rsc_defaults": {"resource-stickiness": "100"}}
SETS = {"crm_config": "cluster_property_set", "rsc_defaults": "meta_attributes"}


def property_sections() -> str:
    """PROPERTIES as XML sections of the CIB (the deploy sets them with crm_attribute)."""
    return "".join(
        f'<{section}><{SETS[section]} id="mailstack-{section}">'
        + "".join(f'<nvpair id="mailstack-{name}" name="{name}" value="{value}"/>' for name, value in values.items())
        + f"</{SETS[section]}></{section}>"
        for section, values in PROPERTIES.items()
    )


# A CIB of Pacemaker 3.0's schema around the rendered sections, for crm_verify's check.
VERIFY = (
    "(printf '<cib validate-with=\"pacemaker-4.0\" admin_epoch=\"0\" epoch=\"1\" num_updates=\"0\">"
    f"<configuration>{property_sections()}<nodes/>'"
    f" && cat {{root}}{CIB}/resources.xml {{root}}{CIB}/constraints.xml"
    " && printf '</configuration><status/></cib>') | crm_verify --xml-pipe"
)


@deploy("Pacemaker")
def pacemaker():
    settings = configured_service(PACEMAKER, (), "Corosync and Pacemaker")
    cluster = cluster_config().cluster.name
    server.shell(name="Join the pair's cluster", commands=[join(cluster)], _if=settings.did_change)
    for service in ("corosync", "pacemaker"):
        systemd.service(name=f"Run {service}", service=service, running=True, enabled=True)
    server.shell(
        name="Put the mail's resources in Pacemaker's configuration",
        commands=[
            "timeout 120 sh -c 'until cibadmin --query --scope nodes >/dev/null 2>&1; do sleep 1; done'",
            *(f"crm_attribute --type {section} --name {name} --update {value}"
              for section, values in PROPERTIES.items() for name, value in values.items()),
            f"cibadmin --replace --scope resources --xml-file {CIB}/resources.xml",
            # merged, not replaced: DRBD's fencing handler adds a constraint of its own there
            f"cibadmin --modify --allow-create --scope constraints --xml-file {CIB}/constraints.xml",
        ],
        _if=settings.did_change,
    )


def join(cluster: str) -> str:
    """Corosync reads its new settings; but where Debian's packages started it as a cluster of
    their own (one node, named "debian"), it and Pacemaker start afresh in this one, without
    that cluster's configuration."""
    ours = shlex.quote(f"totem.cluster_name (str) = {cluster}")
    return (
        f"if [ \"$(corosync-cmapctl -g totem.cluster_name 2>/dev/null)\" = {ours} ]; then corosync-cfgtool -R;"
        " else systemctl stop pacemaker corosync && rm -f /var/lib/pacemaker/cib/cib*"
        " && systemctl start corosync pacemaker; fi"
    )


def values(target: Target) -> dict:
    config = target.config
    pair = config.hosts_in("mx")
    raid = config.hosts[pair[0]].storage.mdraid
    return {
        "pair": [(number, name, config.hosts[name].address) for number, name in enumerate(pair, 1)],
        "corosync_key": target.named_secret(secrets.COROSYNC_KEY),
        "resource": RESOURCE,
        "device": DEVICE,
        "filesystem": raid,
        "services": services.CLUSTERED,
        "queue_folder": QUEUE_FOLDER,
    }


PACEMAKER = Component(
    pacemaker,
    MAIL,
    files=(
        ManagedFile("/etc/corosync/corosync.conf"),
        ManagedFile("/etc/corosync/authkey", mode="400"),
        ManagedFile(f"{CIB}/resources.xml"),
        ManagedFile(f"{CIB}/constraints.xml"),
    ),
    # corosync -t reads /etc/corosync/corosync.conf and its key (here the staged ones, in a
    # mount namespace of the check's own) and needs this host's address.
    check=f"unshare --mount sh -ec 'mount --bind {{root}}/etc/corosync /etc/corosync && corosync -t' && {VERIFY}",
    values=values,
    when=on_drbd,
    packages=("corosync", "pacemaker", "pacemaker-cli-utils", "resource-agents"),
)
