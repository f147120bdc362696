"""Converge a whole mail cluster: every host gets the components of its groups.

    pyinfra inventories/prod.py deploys/mail_cluster.py

``CLUSTER`` is the order of the work on each host; which components a host gets follows
from its groups (each component's module in ``deploys/`` says which). pyinfra runs each
operation on every host before the next one, and no host passes a meeting point before
every host has reached it: the mail backends are converged before the front (HAProxy,
Keepalived) changes. No deploy routes traffic to a half-configured backend, and HAProxy's
health checks keep a backend that failed its deploy out of service.

A rolling deploy updates one host at a time and stops at the first failure:

    pyinfra --serial --fail-percent 0 inventories/prod.py deploys/mail_cluster.py

Nothing here may wait for another host of the same run. The DNS server and the ACME CA
exist before this deploy, as in production (in the lab, ``mailstack lab up`` deploys them
with ``deploys/lab_services.py``). ``mailstack render`` reads the same list.
"""

from pyinfra.context import ctx_host

from deploys.backup import BACKUP
from deploys.backup_host import BACKUP_HOST
from deploys.base import BASE
from deploys.certbot import CERTBOT
from deploys.common import BACKENDS_CONVERGED, converge
from deploys.dovecot import DOVECOT
from deploys.drbd import DRBD
from deploys.fail2ban import FAIL2BAN
from deploys.firewall import FIREWALL
from deploys.haproxy import HAPROXY
from deploys.keepalived import KEEPALIVED
from deploys.mail_exporters import MAIL_EXPORTERS
from deploys.migration import MIGRATION
from deploys.node_exporter import NODE_EXPORTER
from deploys.pacemaker import PACEMAKER
from deploys.postfix import POSTFIX
from deploys.prometheus import PROMETHEUS
from deploys.qnetd import QNETD
from deploys.replication_watchdog import REPLICATION_WATCHDOG
from deploys.rspamd import RSPAMD
from deploys.sshd import SSHD
from deploys.storage import STORAGE
from deploys.tls import TLS

CLUSTER = (
    BASE,  # first: the apt proxy and base packages come before any component's packages
    SSHD,
    NODE_EXPORTER,  # its textfile folder exists before the components that write metrics there
    STORAGE,  # /var/vmail is mounted before Dovecot puts mail there
    DRBD,  # on a Debian 13 pair: the array replicated, its filesystem made once
    TLS,  # certificates before the services that serve them
    MIGRATION,  # the old server's CA before Dovecot connects to it
    CERTBOT,
    RSPAMD,  # before Postfix, whose milter it is
    POSTFIX,
    DOVECOT,  # after Postfix: its LMTP and auth sockets live in Postfix's spool
    REPLICATION_WATCHDOG,
    QNETD,  # the third vote of a Debian 13 pair answers before the pair asks for it
    PACEMAKER,  # on a Debian 13 pair: runs the mail where DRBD is promoted, once it is configured
    MAIL_EXPORTERS,  # after Postfix and Redis, which they read
    BACKUP_HOST,  # the repository's host lets the mx hosts in before their first backup
    BACKUP,
    BACKENDS_CONVERGED,
    HAPROXY,
    KEEPALIVED,  # the virtual IP moves only to a host whose HAProxy runs
    PROMETHEUS,  # on the mon hosts, once every service it probes is in place
    FIREWALL,  # every service it opens a port for is in place
    FAIL2BAN,  # its bans go into the firewall's tables
)

if ctx_host.isset():  # run by pyinfra, not imported to read the list
    converge(CLUSTER)
