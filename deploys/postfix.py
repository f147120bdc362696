"""Postfix: postscreen on 25, submission on 587 and 465, delivery to Dovecot over LMTP."""

from pyinfra.api import deploy
from pyinfra.operations import apt, server, systemd

from deploys.common import component_files

MAPS = ["/etc/postfix/virtual_mailboxes", "/etc/postfix/virtual_aliases", "/etc/postfix/sender_logins"]


@deploy("Postfix")
def postfix():
    apt.packages(name="Install Postfix", packages=["postfix"])
    files = component_files(name="Configure Postfix", component_name="postfix")
    server.shell(name="Index Postfix maps", commands=["postmap " + " ".join(MAPS)], _if=files.did_change)
    systemd.service(name="Run Postfix", service="postfix", running=True, enabled=True)
    systemd.service(name="Reload Postfix", service="postfix", reloaded=True, _if=files.did_change)
