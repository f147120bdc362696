"""Certificates from an ACME CA with certbot: Let's Encrypt in production, pebble in the lab.

The key is reused on renewal (``--reuse-key``) so TLSA records stay valid; the timer renews
without certbot's random sleep, and a deploy hook reloads every service using the certificate.
"""

import shlex

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.operations import apt, server, systemd

from deploys.common import cluster_config, component_files
from mailstack import tls as tls_settings


def certonly_command(config, host_name: str) -> str:
    acme = config.tls.acme
    command = [
        "certbot", "certonly", "--non-interactive", "--agree-tos", "--no-eff-email",
        "--email", acme.email, "--server", acme.directory,
        "--cert-name", tls_settings.CERT_NAME, "--reuse-key",
        "--deploy-hook", "/etc/letsencrypt/renewal-hooks/deploy/mailstack",
    ]
    if acme.challenge == "dns-rfc2136":
        command += [
            "--dns-rfc2136", "--dns-rfc2136-credentials", "/etc/letsencrypt/mailstack-rfc2136.ini",
            "--dns-rfc2136-propagation-seconds", str(acme.propagation_seconds),
        ]
    else:
        command += ["--standalone"]
    for name in tls_settings.names(config, host_name):
        command += ["-d", name]
    return shlex.join(command)


@deploy("Certificates (certbot)")
def certbot():
    config = cluster_config()
    apt.packages(name="Install certbot", packages=["certbot", "python3-certbot-dns-rfc2136"])
    files = component_files(name="Configure certbot", component_name="certbot")
    systemd.daemon_reload(name="Reload systemd units", _if=files.did_change)
    # The live/ names are links; the renewal file is a plain file that exists once issued.
    if not host.get_fact(File, path=f"/etc/letsencrypt/renewal/{tls_settings.CERT_NAME}.conf"):
        server.shell(
            name="Obtain the certificate",
            commands=[wait_for_directory(config.tls.acme.directory), certonly_command(config, host.name)],
        )


def wait_for_directory(url: str, seconds: int = 300) -> str:
    """Wait until the ACME directory answers. pyinfra orders operations per host only, so in
    one run with the CA's own host (the lab's pebble) the CA may still be on its way up."""
    probe = f"import urllib.request; urllib.request.urlopen({url!r}, timeout=5)"
    loop = f"until python3 -c {shlex.quote(probe)} 2>/dev/null; do sleep 2; done"
    return f"timeout {seconds} sh -c {shlex.quote(loop)}"
