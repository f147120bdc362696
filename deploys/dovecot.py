"""Dovecot: IMAP, LMTP, SASL for Postfix, quotas with quota-status, Sieve and ManageSieve."""

from pyinfra.api import deploy
from pyinfra.operations import apt, files, server, systemd

from deploys.common import component_files
from mailstack.render import VMAIL_UID

PACKAGES = ["dovecot-core", "dovecot-imapd", "dovecot-lmtpd", "dovecot-sieve", "dovecot-managesieved"]


@deploy("Dovecot")
def dovecot():
    apt.packages(name="Install Dovecot", packages=PACKAGES)
    server.group(name="Add the vmail group", group="vmail", gid=VMAIL_UID, system=True)
    server.user(
        name="Add the vmail user", user="vmail", uid=VMAIL_UID, group="vmail",
        home="/var/vmail", shell="/usr/sbin/nologin", system=True, create_home=False,
    )
    files.directory(name="Create /var/vmail", path="/var/vmail", user="vmail", group="vmail", mode="750")
    changed = component_files(name="Configure Dovecot", component_name="dovecot")
    systemd.daemon_reload(name="Reload systemd units", _if=changed.did_change)
    systemd.service(name="Run Dovecot", service="dovecot", running=True, enabled=True)
    systemd.service(name="Reload Dovecot", service="dovecot", reloaded=True, _if=changed.did_change)
