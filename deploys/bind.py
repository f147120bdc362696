"""BIND as an authoritative server for the mail domain, updatable over RFC 2136 (TSIG).

In the lab it is the zone's authority on ns1; pebble validates DNS-01 challenges against it.
"""

from pyinfra import host
from pyinfra.api import FunctionCommand, deploy, operation
from pyinfra.operations import apt, systemd

from deploys.common import cluster_config, component_files
from mailstack import dkim, dns
from mailstack.config import load


@operation()
def dkim_records():
    """
    Publish each mail domain's DKIM record on the authoritative server, where it differs.

    The update goes from the deploying machine over RFC 2136, signed with the TSIG key.
    """
    config = cluster_config()
    stale = [
        (dkim.record_name(domain), dkim.record(config, domain))
        for domain in config.domains
        if dns.query_txt(config, dkim.record_name(domain)) != dkim.record(config, domain)
    ]
    if not stale:
        host.noop("DKIM records are published")
    for name, value in stale:
        # By file name: a command's arguments may be logged, and the configuration holds hashes.
        yield FunctionCommand(_publish_txt, (str(config.source), name, value), {})


def _publish_txt(config_file: str, name: str, value: str) -> None:
    dns.replace_txt(load(config_file), name, value)


@deploy("Authoritative DNS (BIND)")
def bind():
    apt.packages(name="Install BIND", packages=["bind9"])
    files = component_files(name="Configure BIND", component_name="bind")
    systemd.service(name="Run BIND", service="named", running=True, enabled=True)
    systemd.service(name="Reload BIND", service="named", reloaded=True, _if=files.did_change)
    dkim_records(name="Publish DKIM records")
