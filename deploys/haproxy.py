"""HAProxy on the lb hosts: the mail services of the virtual IP, balanced over the mx hosts."""

from pyinfra.api import deploy
from pyinfra.operations import apt, files, server, systemd

from deploys.common import cluster_config, component_files
from mailstack import tls
from mailstack.components import HAPROXY_TLS

# systemd reports a reload as done even when HAProxy could not load the new file (it keeps
# the old workers and logs "Loading failure!"): a worker newer than the file proves the load.
LOADED = (
    "for attempt in $(seq 20); do"
    " worker=$(pgrep -n -x haproxy)"
    ' && [ "$(stat -c %Y /proc/$worker)" -ge "$(stat -c %Y /etc/haproxy/haproxy.cfg)" ] && exit 0;'
    " sleep 0.5; done;"
    " echo 'HAProxy did not load /etc/haproxy/haproxy.cfg; see journalctl -u haproxy' >&2; exit 1"
)


@deploy("HAProxy")
def haproxy():
    # socat talks to HAProxy's admin socket: draining a backend (docs/ha.md).
    apt.packages(name="Install HAProxy", packages=["haproxy", "socat"])
    certificate = tls.paths(cluster_config())
    files.link(name="Link the certificate for HAProxy", path=HAPROXY_TLS, target=certificate["certificate"])
    files.link(name="Link the key for HAProxy", path=f"{HAPROXY_TLS}.key", target=certificate["key"])
    configured = component_files(name="Configure HAProxy", component_name="haproxy")
    server.shell(
        name="Allow binding the virtual IP before holding it",
        commands=["sysctl -q -p /etc/sysctl.d/60-mailstack-lb.conf"],
        _if=configured.did_change,
    )
    systemd.service(name="Run HAProxy", service="haproxy", running=True, enabled=True)
    # A reload hands the listening sockets to new workers: open sessions keep going.
    reload = systemd.service(name="Reload HAProxy", service="haproxy", reloaded=True, _if=configured.did_change)
    server.shell(name="Check HAProxy took the configuration", commands=[LOADED], _if=reload.did_change)
