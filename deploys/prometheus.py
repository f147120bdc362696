"""Prometheus, Alertmanager and the blackbox exporter on the mon hosts: every host's node
exporter, HAProxy's own metrics and protocol probes of every service through the virtual
IP, with mailstack's alert rules (``docs/monitoring.md``). Data stays under /var/lib/prometheus.
"""

from pyinfra.api import deploy

from deploys.common import configured_service
from mailstack import services
from mailstack.component import Component, ManagedFile, Target

SERVICES = ("prometheus", "prometheus-alertmanager", "prometheus-blackbox-exporter")
ALERTMANAGER_PORT = 9093  # on localhost: for this host's Prometheus
BLACKBOX_PORT = 9115  # on localhost: for this host's Prometheus
ROOTS_CHANGED = "/etc/ca-certificates/update.d/mailstack-blackbox"  # restarts the blackbox exporter


@deploy("Prometheus and Alertmanager")
def prometheus():
    configured_service(PROMETHEUS, SERVICES, "Prometheus and Alertmanager", restarted=True)


def probe_module(service: services.Service) -> str:
    """The blackbox module that speaks ``service`` as a client does (blackbox.yml)."""
    return f"{service.protocol}_{'tls' if service.implicit_tls else 'starttls'}"


def values(target: Target) -> dict:
    return {
        "node_port": services.NODE_EXPORTER_PORT,
        "haproxy_port": services.STATS_PORT,
        "mx_exporters": services.MX_METRICS,
        "prometheus_port": services.PROMETHEUS_PORT,
        "alertmanager_port": ALERTMANAGER_PORT,
        "blackbox_port": BLACKBOX_PORT,
        "services": services.SERVICES,
        "probe_module": probe_module,
        "mta_sts_domains": [domain.name for domain in target.config.domains if domain.mta_sts != "none"],
    }


PROMETHEUS = Component(
    prometheus,
    frozenset({"mon"}),
    files=(
        ManagedFile("/etc/default/prometheus"),
        ManagedFile("/etc/default/prometheus-alertmanager"),
        ManagedFile("/etc/default/prometheus-blackbox-exporter"),
        ManagedFile("/etc/prometheus/prometheus.yml"),
        ManagedFile("/etc/prometheus/rules/mailstack.yml"),
        ManagedFile("/etc/prometheus/alertmanager.yml"),
        ManagedFile("/etc/prometheus/blackbox.yml"),
        ManagedFile(ROOTS_CHANGED, mode="755"),
    ),
    check=(
        "for file in {root}/etc/default/prometheus* {root}" + ROOTS_CHANGED + "; do sh -n $file || exit 1; done"
        " && promtool check config --syntax-only {root}/etc/prometheus/prometheus.yml >/dev/null"
        " && promtool check rules {root}/etc/prometheus/rules/mailstack.yml >/dev/null"
        " && amtool check-config {root}/etc/prometheus/alertmanager.yml >/dev/null"
        " && prometheus-blackbox-exporter --config.check --config.file={root}/etc/prometheus/blackbox.yml 2>/dev/null"
    ),
    values=values,
    packages=SERVICES,
)
