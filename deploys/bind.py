"""BIND as an authoritative server for the mail domain, updatable over RFC 2136 (TSIG).

In the lab it is the zone's authority on ns1; pebble validates DNS-01 challenges against it,
and ``mailstack dns push`` publishes the cluster's records to it.
"""

from pyinfra.api import deploy
from pyinfra.operations import apt, systemd

from deploys.common import component_files


@deploy("Authoritative DNS (BIND)")
def bind():
    apt.packages(name="Install BIND", packages=["bind9"])
    files = component_files(name="Configure BIND", component_name="bind")
    systemd.service(name="Run BIND", service="named", running=True, enabled=True)
    systemd.service(name="Reload BIND", service="named", reloaded=True, _if=files.did_change)
