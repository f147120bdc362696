"""pebble, Let's Encrypt's test CA, serving ACME over HTTPS with a certificate from the lab CA.

Only for the lab. pebble makes a new root at each start, so it restarts only when its
own files change.
"""

from pyinfra.api import deploy
from pyinfra.operations import server

from deploys.common import configured_service
from mailstack.component import Component, ManagedFile, Target


@deploy("ACME test CA (pebble)")
def pebble():
    files = configured_service(PEBBLE, "pebble", "pebble", restarted=True)
    # Not server.wait: it needs netstat, which Debian no longer installs.
    server.shell(
        name="Wait for pebble's ACME port",
        commands=["timeout 30 bash -c 'until echo > /dev/tcp/127.0.0.1/14000; do sleep 0.2; done' 2>/dev/null"],
        _if=files.did_change,
    )


def values(target: Target) -> dict:
    """pebble's HTTPS certificate, from the lab CA (``mailstack lab up`` makes it)."""
    return {"certificate": target.named_secret(f"{target.name}.pem"), "key": target.named_secret(f"{target.name}.key")}


PEBBLE = Component(
    pebble,
    frozenset({"ns"}),
    files=(
        ManagedFile("/etc/pebble/pebble-config.json"),
        ManagedFile("/etc/pebble/cert.pem"),
        ManagedFile("/etc/pebble/key.pem", mode="600"),
        ManagedFile("/etc/systemd/system/pebble.service"),
    ),
    check="python3 -m json.tool {root}/etc/pebble/pebble-config.json >/dev/null",
    values=values,
    packages=("pebble",),
)
