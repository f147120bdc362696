"""Rspamd with Redis: spam scoring, SPF/DKIM/DMARC checks, DKIM signing, per-user rate limits.

Postfix passes every message through it as a milter; DKIM keys are made by ``mailstack
secrets`` (``mailstack/dkim.py``) and installed readable by Rspamd only.
"""

from pyinfra.api import deploy
from pyinfra.operations import apt, files, systemd

from deploys.common import configured_service
from mailstack import dkim
from mailstack.component import MAIL, Component, ManagedFile, Target

MILTER_SOCKET = "/run/rspamd/milter.sock"
"""Where Postfix reaches Rspamd's milter: over TCP, Nagle's algorithm in Postfix's milter client
and the delayed ACK of Rspamd's end held every message's end-of-data reply 40 ms."""


@deploy("Rspamd")
def rspamd():
    apt.packages(name="Install Rspamd and Redis", packages=list(RSPAMD.packages))
    systemd.service(name="Run Redis", service="redis-server", running=True, enabled=True)
    files.directory(
        name="Create the DKIM key folder", path="/var/lib/rspamd/dkim", user="_rspamd", group="_rspamd", mode="700"
    )
    configured_service(RSPAMD, "rspamd", "Rspamd", installed=True)


SETTINGS = tuple(
    ManagedFile(f"/etc/rspamd/local.d/{name}")
    for name in ("worker-proxy.inc", "redis.conf", "dkim_signing.conf", "greylist.conf", "ratelimit.conf",
                 "milter_headers.conf", "options.inc")
) + (ManagedFile("/etc/rspamd/override.d/options.inc"),)


def managed_files(config) -> tuple[ManagedFile, ...]:
    """The settings, and one private key file per mail domain, readable by Rspamd only."""
    return SETTINGS + tuple(
        ManagedFile(
            f"/var/lib/rspamd/dkim/{domain.name}.{domain.dkim_selector}.key",
            mode="600", user="_rspamd", group="_rspamd",
            template_path="/var/lib/rspamd/dkim/domain.key", values=(("domain", domain),),
        )
        for domain in config.domains
    )


def values(target: Target) -> dict:
    return {"dkim_key": lambda domain: target.secret(dkim.key_file(target.config, domain)),
            "milter_socket": MILTER_SOCKET}


RSPAMD = Component(
    rspamd,
    MAIL,
    files=managed_files,
    # Each file on its own: Rspamd includes local.d files with try=true, so a whole-tree test
    # passes over a broken one.
    check=(
        'for file in {root}/etc/rspamd/local.d/* {root}/etc/rspamd/override.d/*; do'
        ' rspamadm configtest -c "$file" >/dev/null || exit 1; done'
    ),
    values=values,
    packages=("rspamd", "redis-server"),
)
