"""fail2ban on every host: sshd everywhere; on mx hosts Postfix SASL and Dovecot logins,
banned by the client's own address from the PROXY header (``action.d/mailstack-proxy.conf``)."""

from pyinfra.api import deploy
from pyinfra.operations import apt, systemd

from deploys.common import component_files


@deploy("fail2ban")
def fail2ban():
    # python3-systemd: the jails read the journal; Debian 12 logs nowhere else by default.
    apt.packages(name="Install fail2ban", packages=["fail2ban", "python3-systemd"])
    files = component_files(name="Configure fail2ban", component_name="fail2ban")
    systemd.service(name="Run fail2ban", service="fail2ban", running=True, enabled=True)
    systemd.service(name="Reload fail2ban", service="fail2ban", reloaded=True, _if=files.did_change)
