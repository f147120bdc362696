"""pebble, Let's Encrypt's test CA, serving ACME over HTTPS with a certificate from the lab CA.

Only for the lab. pebble makes a new root at each start, so it restarts only when its
own files change.
"""

from pyinfra.api import deploy
from pyinfra.operations import apt, server, systemd

from deploys.common import component_files


@deploy("ACME test CA (pebble)")
def pebble():
    apt.packages(name="Install pebble", packages=["pebble"])
    files = component_files(name="Configure pebble", component_name="pebble")
    systemd.daemon_reload(name="Reload systemd units", _if=files.did_change)
    systemd.service(name="Run pebble", service="pebble", running=True, enabled=True)
    systemd.service(name="Restart pebble", service="pebble", restarted=True, _if=files.did_change)
    # Not server.wait: it needs netstat, which Debian no longer installs.
    server.shell(
        name="Wait for pebble's ACME port",
        commands=["timeout 30 bash -c 'until echo > /dev/tcp/127.0.0.1/14000; do sleep 0.2; done' 2>/dev/null"],
        _if=files.did_change,
    )
