"""Postfix: postscreen on 25, submission on 587 and 465, delivery to Dovecot over LMTP."""

import re

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.server import Command
from pyinfra.operations import apt, server

from deploys.common import apply_settings, by_pacemaker, reload_units, run_service, system_account
from deploys.rspamd import MILTER_SOCKET
from mailstack import certificates, migration, services
from mailstack.component import MAIL, Component, ManagedFile, Target, after_the_network, verify_drop_ins
from operations.components import component_files

MAPS = ["/etc/postfix/virtual_mailboxes", "/etc/postfix/virtual_aliases", "/etc/postfix/sender_logins"]
# Where the queue moves between hosts (on DRBD, deploys/drbd.py), its owners have the same IDs
# on both: system IDs (Debian's package adds its users with --system, and accepts them only in
# 100-999), far from both ends of the range, where adduser and systemd-sysusers allocate.
POSTFIX_UID = 500
POSTDROP_GID = 501
PINNED = f"{POSTFIX_UID}:{POSTFIX_UID} {POSTDROP_GID}"


@deploy("Postfix")
def postfix():
    if by_pacemaker("postfix"):
        pin_ids()
    apt.packages(name="Install Postfix", packages=list(POSTFIX.packages))
    files = component_files(name="Configure Postfix", component=POSTFIX)
    server.shell(name="Index Postfix maps", commands=["postmap " + " ".join(MAPS)], _if=files.did_change)
    reload_units(POSTFIX, files)
    run_service("postfix", "Postfix")
    apply_settings("postfix", "Postfix", files)


def pin_ids():
    """Add Postfix's users before its package does, with the IDs the queue's files have; where
    the package came first (a host with Postfix installed), give its users those IDs instead."""
    ids = host.get_fact(Command, "echo $(id -u postfix):$(getent group postfix postdrop | cut -d: -f3)")
    if re.fullmatch(r"\d+:\d+ \d+", ids) and ids != PINNED:
        renumber(*map(int, re.split("[: ]", ids)))
    system_account("postfix", POSTFIX_UID, "/var/spool/postfix")  # its home, the queue, stays root's
    server.group(name="Add the postdrop group", group="postdrop", gid=POSTDROP_GID, system=True)


def renumber(user: int, group: int, postdrop: int) -> None:
    """Postfix's users and groups get the pinned IDs, and every file of theirs follows (the
    queue too, where it is mounted from the mailboxes' disk); chgrp drops the set-group-ID bit
    of postdrop's programs, which ``postfix set-permissions`` puts back."""
    server.shell(name="Give Postfix's users the pair's IDs", commands=[
        "systemctl stop postfix",
        f"groupmod -g {POSTFIX_UID} postfix && groupmod -g {POSTDROP_GID} postdrop"
        f" && usermod -u {POSTFIX_UID} -g {POSTFIX_UID} postfix",
        # one walk, each file judged by its IDs before any change (a VM under TCG took 136 s for three)
        f"find / /var/spool/postfix -xdev \\( -uid {user} -exec chown -h {POSTFIX_UID} {{}} + \\)"
        f" , \\( -gid {group} -exec chgrp -h {POSTFIX_UID} {{}} + \\)"
        f" , \\( -gid {postdrop} -exec chgrp -h {POSTDROP_GID} {{}} + \\)",
        "postfix set-permissions",
        # where Pacemaker had tried to start it with the old IDs and failed (none on a new pair,
        # whose Pacemaker does not run yet, its package perhaps installed)
        "if systemctl -q is-active pacemaker; then crm_resource --cleanup --resource postfix; fi",
    ])


def sender_logins(config) -> dict[str, list[str]]:
    """Who may send as which address: users as themselves, alias addresses by their local targets."""
    users = {user.address for user in config.users}
    logins = {address: [address] for address in sorted(users)}
    for alias in config.aliases:
        owners = [target for target in alias.to if target in users]
        if owners and not alias.address.startswith("@"):
            logins[alias.address] = owners
    return logins


def values(target: Target) -> dict:
    config = target.config
    return {
        "tls": certificates.paths(config),
        "mozilla_intermediate_ciphers": certificates.MOZILLA_INTERMEDIATE_CIPHERS,
        "lb_addresses": services.addresses(config, "lb"),
        "sender_logins": sender_logins(config),
        "migration_transport": migration.TRANSPORT if config.migration else None,
        "routes": migration.routes(config, {}) if config.migration else None,
        "milter_socket": MILTER_SOCKET,
    }


def managed_files(config) -> tuple[ManagedFile, ...]:
    """Postfix's own files, its start after the network, and the migration's routes file while
    there is one."""
    return FILES + migration.route_file(config, migration.TRANSPORT)


# The unit that runs Postfix's instance: postfix@- on Debian 12, postfix itself on Debian 13.
AFTER_THE_NETWORK = (after_the_network("postfix@-"), after_the_network("postfix"))
FILES = (
    ManagedFile("/etc/postfix/main.cf"),
    ManagedFile("/etc/postfix/master.cf"),
    ManagedFile("/etc/postfix/virtual_mailboxes"),
    ManagedFile("/etc/postfix/virtual_aliases"),
    ManagedFile("/etc/postfix/sender_logins"),
    ManagedFile("/etc/postfix/postscreen_access.cidr"),
    *AFTER_THE_NETWORK,
)

POSTFIX = Component(
    postfix,
    MAIL,
    files=managed_files,
    # postconf only warns about unknown parameters and malformed master.cf lines: treat warnings as errors.
    check=(
        "warnings=$(postconf -c {root}/etc/postfix -n 2>&1 >/dev/null;"
        " postconf -c {root}/etc/postfix -M 2>&1 >/dev/null)"
        ' && [ -z "$warnings" ] || (echo "$warnings" >&2; exit 1)'
        " && postfix -c {root}/etc/postfix check"
        " && " + verify_drop_ins(tuple(managed.path for managed in AFTER_THE_NETWORK))
    ),
    values=values,
    packages=("postfix",),
)
