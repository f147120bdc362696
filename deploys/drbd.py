"""DRBD under /var/vmail on a Debian 13 mx pair, whose Dovecot 2.4 has no replicator
(docs/ha.md): each host's mdadm array is the backing disk of one DRBD resource, ``vmail``, in
protocol C, so a write returns once it is on both hosts' disks. Pacemaker
(``deploys/pacemaker.py``) brings the resource up, promotes it on one host at a time and
mounts the filesystem there; ``drbd.service`` stays off.

Debian 13's kernel carries DRBD 8.4, so the resource is written in 8.4's language and checked
by drbd-utils' parser for it. On a new pair, the first deploy writes DRBD's metadata at the
end of both arrays and brings both up; the first mx host then waits for its peer, declares the
two empty disks alike (no initial copy), makes the filesystem and steps down. A host whose
peer already holds the mail (a replaced disk, a rebuilt host) only connects, and DRBD copies
the mail to it. That first deploy therefore needs both mx hosts in one run, not ``--serial``.
"""

import shlex

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import server, systemd

from deploys.common import configured_service
from deploys.dovecot import VMAIL_UID
from deploys.postfix import POSTFIX_UID
from facts.drbd import DrbdMetadata
from mailstack import services, storage_rules
from mailstack.component import MAIL, Component, ManagedFile, Target, verify_drop_ins
from mailstack.config import Config
from operations.components import cluster_config

RESOURCE = "vmail"
DEVICE = "/dev/drbd0"
PORT = 7789
CHECKER = "/usr/lib/drbd/drbdadm-84"  # drbd-utils' parser for the kernel's DRBD 8.4
PEER_WAIT = 60  # seconds the first host waits for its peer's resource on a new pair


@deploy("DRBD")
def drbd():
    config = cluster_config()
    settings = configured_service(DRBD, (), "DRBD")
    server.shell(  # a resource that is up takes its new settings; one that is down waits for Pacemaker
        name=f"Apply the settings to {RESOURCE} where it is up",
        commands=[f"if drbdadm dstate {RESOURCE} 2>/dev/null | grep -q /; then drbdadm adjust {RESOURCE}; fi"],
        _if=settings.did_change,
    )
    server.modprobe(name="Load DRBD's module (Pacemaker's agent loads it at boot)", module="drbd")
    systemd.service(name="Leave the resource to Pacemaker", service="drbd", running=None, enabled=False)
    if host.get_fact(DrbdMetadata, resource=RESOURCE):
        return
    server.shell(
        name=f"Write DRBD's metadata on {backing_disk(config, host.name)} and bring {RESOURCE} up",
        commands=[f"drbdadm -- --force create-md {RESOURCE}", f"drbdadm up {RESOURCE}"],
    )
    if host.name == config.hosts_in("mx")[0]:
        server.shell(name="Start the pair's data on this host", commands=[first_start(config)])


def first_start(config: Config) -> str:
    """Once the peer connected: if it holds data, nothing (DRBD copies it here); if its disk is
    as new as this one, both are declared alike and this host makes the filesystem, with the
    queue's ``private`` folder, where Dovecot, which starts before Postfix, puts its sockets."""
    raid = config.hosts[host.name].storage.mdraid
    queue = f"$root/{services.QUEUE_FOLDER}"
    wait = f"until drbdadm cstate {RESOURCE} | grep -qx Connected; do sleep 1; done"
    return " && ".join([
        f"timeout {PEER_WAIT} sh -c {shlex.quote(wait)}"
        f" || {{ echo 'the peer did not connect within {PEER_WAIT} s: deploy both mx hosts in one run' >&2; exit 1; }}",
        f"if drbdadm dstate {RESOURCE} | grep -q '/UpToDate$'; then exit 0; fi",
        f"drbdadm -- --clear-bitmap new-current-uuid {RESOURCE}",
        f"drbdadm primary {RESOURCE}",
        storage_rules.mkfs(raid, DEVICE),
        f"root=$(mktemp -d) && mount {DEVICE} $root && chown {VMAIL_UID}:{VMAIL_UID} $root && chmod 750 $root"
        f" && mkdir -m 755 {queue} && install -d -m 700 -o {POSTFIX_UID} -g 0 {queue}/private"
        " && umount $root && rmdir $root",
        f"drbdadm secondary {RESOURCE}",
    ])


def backing_disk(config: Config, name: str) -> str:
    return storage_rules.array_device(config.hosts[name].storage.mdraid)


def values(target: Target) -> dict:
    config = target.config
    pair = [(name, config.hosts[name].address, backing_disk(config, name)) for name in config.hosts_in("mx")]
    return {"resource": RESOURCE, "device": DEVICE, "port": PORT, "pair": pair,
            "mailboxes": config.hosts[target.name].storage.mdraid.mount_point}


def on_drbd(config: Config) -> bool:
    return config.mailbox_replication == "drbd"


# Dovecot and Postfix start only where the mailboxes are mounted: never on the bare folder
# beneath (when Debian's packages start them on installation, or by hand on the other host).
ONLY_WITH_MAILBOXES = tuple(f"/etc/systemd/system/{service}.service.d/mailstack-drbd.conf"
                            for service in services.CLUSTERED)

DRBD = Component(
    drbd,
    MAIL,
    files=(ManagedFile(f"/etc/drbd.d/{RESOURCE}.res"),
           *(ManagedFile(path, template_path="/etc/systemd/system/mailboxes-mounted.conf")
             for path in ONLY_WITH_MAILBOXES)),
    check=f"{CHECKER} -c {{root}}/etc/drbd.d/{RESOURCE}.res dump >/dev/null && " + verify_drop_ins(ONLY_WITH_MAILBOXES),
    values=values,
    when=on_drbd,
    packages=("drbd-utils",),
)
