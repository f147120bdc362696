"""Rspamd with Redis: spam scoring, SPF/DKIM/DMARC checks, DKIM signing, per-user rate limits.

Postfix passes every message through it as a milter; DKIM keys are made by mailstack
(``mailstack/dkim.py``) and installed readable by Rspamd only.
"""

from pyinfra.api import deploy
from pyinfra.operations import apt, files, systemd

from deploys.common import component_files


@deploy("Rspamd")
def rspamd():
    apt.packages(name="Install Rspamd and Redis", packages=["rspamd", "redis-server"])
    systemd.service(name="Run Redis", service="redis-server", running=True, enabled=True)
    files.directory(
        name="Create the DKIM key folder", path="/var/lib/rspamd/dkim", user="_rspamd", group="_rspamd", mode="700"
    )
    changed = component_files(name="Configure Rspamd", component_name="rspamd")
    systemd.service(name="Run Rspamd", service="rspamd", running=True, enabled=True)
    systemd.service(name="Reload Rspamd", service="rspamd", reloaded=True, _if=changed.did_change)
