"""Keepalived on the lb hosts: VRRP moves the virtual IP to a healthy lb host."""

from pyinfra.api import deploy
from pyinfra.operations import apt, systemd

from deploys.common import component_files


@deploy("Keepalived")
def keepalived():
    apt.packages(name="Install Keepalived", packages=["keepalived"])
    files = component_files(name="Configure Keepalived", component_name="keepalived")
    systemd.service(name="Run Keepalived", service="keepalived", running=True, enabled=True)
    systemd.service(name="Reload Keepalived", service="keepalived", reloaded=True, _if=files.did_change)
