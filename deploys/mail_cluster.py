"""Converge a whole mail cluster: every host gets the components of its groups.

    pyinfra inventories/prod.py deploys/mail_cluster.py

The lines below are the order of the work on each host; which components a host gets
follows from its groups (``mailstack/components.py``). pyinfra runs each operation on every
host before the next one, and no host passes ``all_hosts_reach`` before every host has
reached it: the mail backends are converged before the front (HAProxy, Keepalived) changes.
No deploy routes traffic to a half-configured backend, and HAProxy's health checks keep a
backend that failed its deploy out of service.

A rolling deploy updates one host at a time and stops at the first failure:

    pyinfra --serial --fail-percent 0 inventories/prod.py deploys/mail_cluster.py

Nothing here may wait for another host of the same run. The DNS server and the ACME CA
exist before this deploy, as in production (in the lab, ``mailstack lab up`` deploys them
with ``deploys/lab_services.py``).
"""

from pyinfra import host

from deploys.base import base
from deploys.certbot import certbot
from deploys.common import all_hosts_reach, cluster_config
from deploys.dovecot import dovecot
from deploys.fail2ban import fail2ban
from deploys.firewall import firewall
from deploys.haproxy import haproxy
from deploys.keepalived import keepalived
from deploys.postfix import postfix
from deploys.rspamd import rspamd
from deploys.sshd import sshd
from deploys.storage import storage
from deploys.tls import tls
from mailstack.components import components_for

WANTED = {component.name for component in components_for(cluster_config(), host.name)}


def step(component_deploy) -> None:
    if component_deploy.__name__ in WANTED:
        component_deploy()


step(base)  # first: the apt proxy and base packages come before any component's packages
step(sshd)
step(storage)  # /var/vmail is mounted before Dovecot puts mail there
step(tls)  # certificates before the services that serve them
step(certbot)
step(rspamd)  # before Postfix, whose milter it is
step(postfix)
step(dovecot)  # after Postfix: its LMTP and auth sockets live in Postfix's spool
all_hosts_reach("every backend is converged", name="Converge the backends before the front")
step(haproxy)
step(keepalived)  # the virtual IP moves only to a host whose HAProxy runs
step(firewall)  # every service it opens a port for is in place
step(fail2ban)  # its bans go into the firewall's tables
