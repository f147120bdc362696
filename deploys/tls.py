"""The host's certificate in modes ``internal`` (the cluster's CA) and ``files`` (the operator's)."""

from pyinfra.api import deploy

from mailstack import certificates
from mailstack.component import FRONT, MAIL, Component, ManagedFile, Target
from operations.components import component_files


@deploy("TLS certificate")
def tls():
    component_files(name="Install the certificate and key", component=TLS)


def files(config) -> tuple[ManagedFile, ...]:
    """The host's chain and key; with the internal CA also the CA, which replication peers trust."""
    chain = (ManagedFile("/etc/mailstack/tls/fullchain.pem"), ManagedFile("/etc/mailstack/tls/privkey.pem", mode="600"))
    return chain + ((ManagedFile("/etc/mailstack/tls/ca.pem"),) if config.tls.mode == "internal" else ())


def values(target: Target) -> dict:
    chain, key = certificates.certificate_files(target.config, target.name)
    found = {"certificate": target.secret(chain), "key": target.secret(key)}
    if target.config.tls.mode == "internal":
        found["ca"] = target.secret(certificates.cluster_ca(target.config)[0])
    return found


TLS = Component(
    tls,
    MAIL | FRONT,
    files=files,
    check="openssl x509 -noout -in {root}/etc/mailstack/tls/fullchain.pem"
    " && openssl pkey -noout -in {root}/etc/mailstack/tls/privkey.pem",
    values=values,
    when=lambda config: config.tls.mode != "acme",
)
