"""Pacemaker and Corosync on a Debian 13 mx pair (docs/ha.md): Corosync keeps the two hosts'
membership (knet, encrypted and authenticated with the cluster's ``corosync.key``), and
Pacemaker runs the mail on one host at a time: DRBD's ``vmail`` resource promoted there
(``deploys/drbd.py``), then /var/vmail mounted, then Dovecot and Postfix started. The other
host holds the replica and runs neither, so HAProxy's health checks send every client to the
host with the mail.

Pacemaker's configuration is shared by the pair: each host puts the rendered resources and
constraints in whenever they changed (the same text twice changes nothing), and sets each
cluster property that differs from its own (one changed by hand is set back). The constraints
are merged by their IDs, so the one DRBD's fencing handler adds while a replica is outdated
stays; a constraint dropped from the template stays too, until removed by hand.

A host that loses its peer keeps quorum only with the third vote of corosync-qnetd on the
quorum host (``deploys/qnetd.py``), which answers one half of a split pair: the other half
stops the mail, so the two never both run it. Fencing is SBD's: each host feeds its watchdog
only while it has quorum and Pacemaker is sound, so a host cut off, hung, or unable to stop
the mail is reset, and its peer takes over once that must have happened. DRBD's
resource-level fencing keeps an outdated replica from being promoted.
"""

import shlex

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.server import Command
from pyinfra.operations import server, systemd

from deploys.common import configured_service
from deploys.drbd import DEVICE, RESOURCE, on_drbd
from deploys.qnetd import nss_database, pem_check, pem_files, pem_values
from facts.pacemaker import ClusterProperties
from mailstack import secrets, services
from mailstack.component import MAIL, Component, ManagedFile, Target
from operations.components import cluster_config

CIB = "/etc/mailstack/pacemaker"
QDEVICE = "/etc/corosync/qdevice/net"
# Cluster-wide settings, by section. Fencing is SBD's watchdog, with no device (and
# stonith-watchdog-timeout, below); a host without quorum stops the mail.
PROPERTIES = {
    "crm_config": {"stonith-enabled": "true", "no-quorum-policy": "stop"},
    "rsc_defaults": {"resource-stickiness": "100"},
}
# What Pacemaker's controller adds once SBD runs; without it crm_verify refuses fencing with no device.
AS_LIVE = {**PROPERTIES, "crm_config": {**PROPERTIES["crm_config"], "have-watchdog": "true"}}
SETS = {"crm_config": "cluster_property_set", "rsc_defaults": "meta_attributes"}
CIB_READY = "timeout 120 sh -c 'until cibadmin --query --scope nodes >/dev/null 2>&1; do sleep 1; done'"


def property_sections(properties: dict[str, dict[str, str]]) -> str:
    """``properties`` as XML sections of the CIB (the deploy sets them with crm_attribute)."""
    return "".join(
        f'<{section}><{SETS[section]} id="mailstack-{section}">'
        + "".join(f'<nvpair id="mailstack-{name}" name="{name}" value="{value}"/>' for name, value in values.items())
        + f"</{SETS[section]}></{section}>"
        for section, values in properties.items()
    )


# A CIB of Pacemaker 3.0's schema around the rendered sections, for crm_verify's check.
VERIFY = (
    "(printf '<cib validate-with=\"pacemaker-4.0\" admin_epoch=\"0\" epoch=\"1\" num_updates=\"0\">"
    f"<configuration>{property_sections(AS_LIVE)}<nodes/>'"
    f" && cat {{root}}{CIB}/resources.xml {{root}}{CIB}/constraints.xml"
    " && printf '</configuration><status/></cib>') | crm_verify --xml-pipe"
)


@deploy("Pacemaker")
def pacemaker():
    settings = configured_service(PACEMAKER, (), "Corosync and Pacemaker")
    settings_of_cluster = cluster_config().cluster
    cluster, watchdog = settings_of_cluster.name, settings_of_cluster.watchdog
    server.shell(name="Put the quorum link's certificate in corosync-qdevice's NSS database",
                 commands=[nss_database(QDEVICE, "Cluster Cert")], _if=settings.did_change)
    server.modprobe(name="Load the watchdog's driver", module=watchdog.module)
    systemd.service(name="Start SBD with Corosync", service="sbd", running=None, enabled=True)
    # Where the host is not in the pair's cluster yet (new, or a deploy stopped half-way), it
    # joins and takes the resources whatever changed.
    joined = host.get_fact(Command, in_the_cluster(cluster)) == "yes"
    again = settings.did_change if joined else None
    server.shell(name="Join the pair's cluster", commands=[join(cluster)], _if=again)
    for service in ("corosync", "pacemaker", "corosync-qdevice"):
        systemd.service(name=f"Run {service}", service=service, running=True, enabled=True)
    systemd.service(name="Restart corosync-qdevice", service="corosync-qdevice", restarted=True,
                    _if=settings.did_change)
    # As they were before this deploy began; a host that joins now starts afresh.
    live = host.get_fact(ClusterProperties) if joined else {}
    if drifted := [(section, name, value) for section, values in properties(watchdog.seconds).items()
                   for name, value in values.items() if live.get(section, {}).get(name) != value]:
        server.shell(
            name="Set the pair's cluster properties",
            commands=[CIB_READY, *(f"crm_attribute --type {section} --name {name} --update {value}"
                                   for section, name, value in drifted)],
        )
    server.shell(
        name="Put the mail's resources in Pacemaker's configuration",
        commands=[
            CIB_READY,
            f"cibadmin --replace --scope resources --xml-file {CIB}/resources.xml",
            # merged, not replaced: DRBD's fencing handler adds a constraint of its own there
            f"cibadmin --modify --allow-create --scope constraints --xml-file {CIB}/constraints.xml",
        ],
        _if=again,
    )


def properties(watchdog_seconds: int) -> dict[str, dict[str, str]]:
    """The cluster's settings as the deploy keeps them: Pacemaker takes the mail over from a
    host it lost after twice the watchdog's timeout, by when that host, if it still runs, has
    reset itself."""
    timeout = {"stonith-watchdog-timeout": f"{2 * watchdog_seconds}s"}
    return {**PROPERTIES, "crm_config": {**PROPERTIES["crm_config"], **timeout}}


def in_the_cluster(cluster: str) -> str:
    """A command that prints "yes" where this host runs the pair's cluster, SBD with it, and
    Pacemaker has the mail's resources."""
    ours = shlex.quote(f"totem.cluster_name (str) = {cluster}")
    return (
        f"[ \"$(corosync-cmapctl -g totem.cluster_name 2>/dev/null)\" = {ours} ] && systemctl -q is-active sbd"
        " && cibadmin --query --scope resources 2>/dev/null | grep -q '<primitive' && echo yes || echo no"
    )


def join(cluster: str) -> str:
    """Corosync reads its new settings. Where Debian's packages started it as a cluster of their
    own (one node, named "debian"), it and Pacemaker start afresh in this one, without that
    cluster's configuration; where SBD does not run yet (it starts only with Corosync, and
    Pacemaker refuses to run without it once fencing relies on it), they restart with it."""
    ours = shlex.quote(f"totem.cluster_name (str) = {cluster}")
    return (
        f"if [ \"$(corosync-cmapctl -g totem.cluster_name 2>/dev/null)\" != {ours} ]; then"
        " systemctl stop pacemaker corosync && rm -f /var/lib/pacemaker/cib/cib*; fi;"
        " if systemctl -q is-active corosync && systemctl -q is-active sbd; then corosync-cfgtool -R;"
        " else systemctl stop pacemaker corosync && systemctl start corosync pacemaker; fi"
    )


def values(target: Target) -> dict:
    config = target.config
    pair = config.hosts_in("mx")
    raid = config.hosts[pair[0]].storage.mdraid
    return {
        **pem_values(target, "qdevice"),
        "pair": [(number, name, config.hosts[name].address) for number, name in enumerate(pair, 1)],
        "quorum_host": config.hosts[config.hosts_in("quorum")[0]].address,
        "quorum_port": services.QNETD_PORT,
        "corosync_key": target.named_secret(secrets.COROSYNC_KEY),
        "resource": RESOURCE,
        "device": DEVICE,
        "filesystem": raid,
        "services": services.CLUSTERED,
        "queue_folder": services.QUEUE_FOLDER,
    }


PACEMAKER = Component(
    pacemaker,
    MAIL,
    files=(
        ManagedFile("/etc/corosync/corosync.conf"),
        ManagedFile("/etc/corosync/authkey", mode="400"),
        ManagedFile(f"{CIB}/resources.xml"),
        ManagedFile(f"{CIB}/constraints.xml"),
        *pem_files(QDEVICE),
        ManagedFile("/etc/default/sbd"),
        ManagedFile("/etc/modules-load.d/mailstack-watchdog.conf"),
    ),
    # corosync -t reads /etc/corosync/corosync.conf and its key (here the staged ones, in a
    # mount namespace of the check's own) and needs this host's address.
    check=f"unshare --mount sh -ec 'mount --bind {{root}}/etc/corosync /etc/corosync && corosync -t' && {VERIFY}"
    f" && {pem_check(QDEVICE)} && sh -n {{root}}/etc/default/sbd",
    values=values,
    when=on_drbd,
    packages=("corosync", "corosync-qdevice", "pacemaker", "pacemaker-cli-utils", "resource-agents", "sbd"),
)
