"""HAProxy on the lb hosts: the mail services of the virtual IP, balanced over the mx hosts,
and each domain's MTA-STS policy over HTTPS."""

from pyinfra.api import deploy
from pyinfra.operations import apt, files, server, systemd

from mailstack import capacity, certificates, records, services
from mailstack.component import FRONT, Component, ManagedFile, Target
from operations.components import cluster_config, component_files

TLS = "/etc/haproxy/tls/mailstack.pem"
"""Links to the host's chain, and as ``.pem.key`` to its key, where HAProxy looks for both."""

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
    apt.packages(name="Install HAProxy", packages=list(HAPROXY.packages))
    certificate = certificates.paths(cluster_config())
    files.link(name="Link the certificate for HAProxy", path=TLS, target=certificate["certificate"])
    files.link(name="Link the key for HAProxy", path=f"{TLS}.key", target=certificate["key"])
    configured = component_files(name="Configure HAProxy", component=HAPROXY)
    server.shell(
        name="Allow binding the virtual IP before holding it",
        commands=["sysctl -q -p /etc/sysctl.d/60-mailstack-lb.conf"],
        _if=configured.did_change,
    )
    systemd.service(name="Run HAProxy", service="haproxy", running=True, enabled=True)
    # A reload hands the listening sockets to new workers: open sessions keep going.
    reload = systemd.service(name="Reload HAProxy", service="haproxy", reloaded=True, _if=configured.did_change)
    server.shell(name="Check HAProxy took the configuration", commands=[LOADED], _if=reload.did_change)


def managed_files(config) -> tuple[ManagedFile, ...]:
    """The configuration, and each domain's MTA-STS policy, which HAProxy serves itself."""
    policies = tuple(
        ManagedFile(f"/etc/haproxy/mta-sts/{domain.name}.txt", template_path="/etc/haproxy/mta-sts/policy.txt",
                    values=(("domain", domain),))
        for domain in config.domains if domain.mta_sts != "none"
    )
    return (ManagedFile("/etc/haproxy/haproxy.cfg"), ManagedFile("/etc/sysctl.d/60-mailstack-lb.conf")) + policies


def values(target: Target) -> dict:
    return {
        "services": services.SERVICES,
        "max_connections": capacity.haproxy_connections(target.config),
        "stats_port": services.STATS_PORT,
        "haproxy_peers_port": services.HAPROXY_PEERS_PORT,
        "haproxy_tls": TLS,
        # HAProxy enforces its own order unless told prefer-client-ciphers.
        "mozilla_intermediate_ciphers": certificates.MOZILLA_INTERMEDIATE_CIPHERS,
        "mta_sts_port": services.MTA_STS_PORT,
        "mta_sts_policy": lambda domain: records.mta_sts_policy(target.config, domain),
    }


HAPROXY = Component(
    haproxy,
    FRONT,
    files=managed_files,
    # HAProxy reads the policies and the certificate while it parses: the check points the
    # configuration at the staged policies and at a throwaway certificate, so it tests the
    # configuration alone (the certificate is the tls component's).
    check=(
        "mkdir -p {root}/etc/haproxy/tls"
        " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=check"
        f" -keyout {{root}}{TLS}.key -out {{root}}{TLS} 2>/dev/null"
        " && sed 's#/etc/haproxy/#{root}/etc/haproxy/#g' {root}/etc/haproxy/haproxy.cfg > {root}/haproxy-check.cfg"
        " && haproxy -c -q -f {root}/haproxy-check.cfg"
    ),
    values=values,
    packages=("haproxy", "socat"),
)
