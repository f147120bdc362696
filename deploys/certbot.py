"""Certificates from an ACME CA with certbot: Let's Encrypt in production, pebble in the lab.

The key is reused on renewal (``--reuse-key``) so TLSA records stay valid; the timer renews
without certbot's random sleep, and a deploy hook reloads every service using the certificate.
"""

import shlex

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.operations import apt, server, systemd

from mailstack import certificates
from mailstack.component import FRONT, MAIL, Component, ManagedFile, Target
from operations.components import cluster_config, component_files


def certonly_command(config, host_name: str) -> str:
    acme = config.tls.acme
    command = [
        "certbot", "certonly", "--non-interactive", "--agree-tos", "--no-eff-email",
        "--email", acme.email, "--server", acme.directory,
        "--cert-name", certificates.CERT_NAME, "--reuse-key",
        "--deploy-hook", "/etc/letsencrypt/renewal-hooks/deploy/mailstack",
    ]
    if acme.challenge == "dns-rfc2136":
        command += [
            "--dns-rfc2136", "--dns-rfc2136-credentials", "/etc/letsencrypt/mailstack-rfc2136.ini",
            "--dns-rfc2136-propagation-seconds", str(acme.propagation_seconds),
        ]
    else:
        command += ["--standalone"]
    for name in certificates.names(config, host_name):
        command += ["-d", name]
    return shlex.join(command)


@deploy("Certificates (certbot)")
def certbot():
    config = cluster_config()
    apt.packages(name="Install certbot", packages=list(CERTBOT.packages))
    files = component_files(name="Configure certbot", component=CERTBOT)
    systemd.daemon_reload(name="Reload systemd units", _if=files.did_change)
    # The live/ names are links; the renewal file is a plain file that exists once issued.
    if not host.get_fact(File, path=f"/etc/letsencrypt/renewal/{certificates.CERT_NAME}.conf"):
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


def values(target: Target) -> dict:
    dns = target.config.dns
    return {"tsig_secret": target.named_secret(dns.tsig_secret_file) if dns else None}


CERTBOT = Component(
    certbot,
    MAIL | FRONT,
    files=(
        ManagedFile("/etc/letsencrypt/mailstack-rfc2136.ini", mode="600"),
        ManagedFile("/etc/letsencrypt/renewal-hooks/deploy/mailstack", mode="755"),
        ManagedFile("/etc/systemd/system/certbot.service.d/mailstack.conf"),
    ),
    check="sh -n {root}/etc/letsencrypt/renewal-hooks/deploy/mailstack",
    values=values,
    when=lambda config: config.tls.mode == "acme",
    packages=("certbot", "python3-certbot-dns-rfc2136"),
)
