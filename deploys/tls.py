"""The host's certificate in modes ``internal`` (the cluster's CA) and ``files`` (the operator's)."""

from pyinfra.api import deploy

from deploys.common import component_files


@deploy("TLS certificate")
def tls():
    component_files(name="Install the certificate and key", component_name="tls")
