"""Where each host's TLS certificate comes from, and where services find it.

- ``acme``: certbot on the host (see ``deploys/certbot.py``), under /etc/letsencrypt;
- ``internal``: a certificate from the cluster's own CA, made by ``mailstack secrets``;
- ``files``: the operator's own certificate chain and key.
"""

from pathlib import Path

from . import keys, ssh
from .config import Config

CERT_NAME = "mailstack"
ACME_LIVE = f"/etc/letsencrypt/live/{CERT_NAME}"
MAILSTACK_TLS = "/etc/mailstack/tls"

# Mozilla's "intermediate" configuration (TLS 1.2 ciphers; TLS 1.3 suites are OpenSSL's defaults).
MOZILLA_INTERMEDIATE_CIPHERS = ":".join([
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384", "DHE-RSA-CHACHA20-POLY1305",
])


def paths(config: Config) -> dict[str, str]:
    """The certificate chain and key every TLS service of a host reads, and the roots a host
    trusts when it dials a peer of the cluster (replication)."""
    folder = ACME_LIVE if config.tls.mode == "acme" else MAILSTACK_TLS
    roots = f"{MAILSTACK_TLS}/ca.pem" if config.tls.mode == "internal" else "/etc/ssl/certs/ca-certificates.crt"
    return {"certificate": f"{folder}/fullchain.pem", "key": f"{folder}/privkey.pem", "roots": roots}


def names(config: Config, host_name: str) -> list[str]:
    """Names on a host's certificate, then the host's own: on mx hosts the public mail name,
    on lb hosts each domain's MTA-STS policy name (``mta-sts.<domain>``)."""
    if "lb" in config.hosts[host_name].groups:
        served = [f"mta-sts.{domain.name}" for domain in config.domains if domain.mta_sts != "none"]
    else:
        served = [config.cluster.mail_hostname]
    return [*served, config.host_fqdn(host_name)]


def extra_roots(config: Config) -> str:
    """Roots beyond the system's that a client of the cluster trusts (PEM): the cluster's own
    CA, or the ACME CA's configured roots (pebble in the lab); empty when there are none."""
    if config.tls.mode == "internal":
        return cluster_ca(config)[0].read_text()
    if config.tls.mode == "acme" and config.tls.acme.roots and config.path(config.tls.acme.roots).exists():
        return config.path(config.tls.acme.roots).read_text()
    return ""


def cluster_ca(config: Config) -> tuple[Path, Path]:
    """The cluster's own CA (certificate, key) in its secrets folder."""
    return config.secrets_dir / "ca.pem", config.secrets_dir / "ca.key"


def certificate_files(config: Config, host_name: str) -> tuple[Path, Path]:
    """(chain, key) files to install on a host in modes ``internal`` and ``files``."""
    if config.tls.mode == "files":
        return config.path(config.tls.files.certificate), config.path(config.tls.files.key)
    folder = config.secrets_dir / "tls"
    return folder / f"{host_name}.pem", folder / f"{host_name}.key"


def make_internal(config: Config) -> None:
    """The cluster's CA and a certificate from it for each host that serves TLS, each made once."""
    ca = cluster_ca(config)
    keys.certificate_authority(*ca, name=f"mailstack {config.cluster.name} CA")
    for name in config.hosts:
        if {"mx", "lb"} & set(config.hosts[name].groups):
            keys.server_certificate(*certificate_files(config, name), ca, names(config, name))


def served_certificates(config: Config) -> dict[str, bytes]:
    """Each mx host's certificate as it serves it (PEM): made here in modes ``internal`` and
    ``files``; with ``acme`` it exists only on the host, which is asked over SSH.
    Hosts that cannot be asked are left out."""
    if config.tls.mode != "acme":
        return {name: certificate_files(config, name)[0].read_bytes() for name in config.hosts_in("mx")}
    found = {}
    for name in config.hosts_in("mx"):
        result = ssh.run(config, name, f"cat {ACME_LIVE}/cert.pem", timeout=30)
        if result.returncode == 0 and result.stdout.startswith(b"-----BEGIN CERTIFICATE-----"):
            found[name] = result.stdout
    return found



QNETD_NAME = "Qnetd Server"
"""The name corosync-qdevice expects on corosync-qnetd's certificate (its default)."""


def quorum_files(config: Config, end: str) -> tuple[Path, Path, Path]:
    """(CA, certificate, key) of one end of an mx pair's link to its third vote (docs/ha.md):
    ``qnetd`` on the quorum host, ``qdevice`` on the pair."""
    folder = config.secrets_dir / "quorum"
    return folder / "ca.pem", folder / f"{end}.pem", folder / f"{end}.key"


def make_quorum(config: Config) -> None:
    """The quorum link's own CA and both ends' certificates, each made once: corosync-qnetd's
    under the name corosync-qdevice expects, the pair's under the cluster's name, which
    corosync-qnetd checks. Valid as long as the CA: nothing renews them."""
    ca = quorum_files(config, "qnetd")[0], config.secrets_dir / "quorum" / "ca.key"
    keys.certificate_authority(*ca, name=f"mailstack {config.cluster.name} quorum CA")
    keys.issued_certificate(*quorum_files(config, "qnetd")[1:], ca, QNETD_NAME, "server", days=3650)
    keys.issued_certificate(*quorum_files(config, "qdevice")[1:], ca, config.cluster.name, "client", days=3650)
