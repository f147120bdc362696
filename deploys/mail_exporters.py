"""Debian's Postfix and Redis exporters on the mx hosts, for the mon hosts: Postfix's queues
(read from its showq service) and its deliveries and rejects (read from /var/log/mail.log,
which Debian's rsyslog writes from the journal: the exporter Debian ships reads no journal),
and whether the Redis that keeps Rspamd's state answers. Installed only where a mon host will
scrape them.
"""

from pyinfra.api import deploy
from pyinfra.operations import files

from deploys import node_exporter
from deploys.common import configured_service
from mailstack import services
from mailstack.component import MAIL, Component, ManagedFile, Target

EXPORTERS = ("prometheus-postfix-exporter", "prometheus-redis-exporter")
MAIL_LOG = "/var/log/mail.log"


@deploy("Postfix and Redis exporters")
def mail_exporters():
    # rsyslog makes the file only with the first mail log line; the exporter stops without it.
    files.file(name="Create the mail log", path=MAIL_LOG, user="root", group="adm", mode="640")
    configured_service(MAIL_EXPORTERS, ("rsyslog", *EXPORTERS), "the Postfix and Redis exporters", restarted=True)


def values(target: Target) -> dict:
    return {"postfix_port": services.POSTFIX_EXPORTER_PORT, "redis_port": services.REDIS_EXPORTER_PORT,
            "mail_log": MAIL_LOG}


MAIL_EXPORTERS = Component(
    mail_exporters,
    MAIL,
    files=(
        ManagedFile("/etc/default/prometheus-postfix-exporter"),
        ManagedFile("/etc/default/prometheus-redis-exporter"),
    ),
    check="sh -n {root}/etc/default/prometheus-postfix-exporter && sh -n {root}/etc/default/prometheus-redis-exporter",
    values=values,
    when=node_exporter.monitored,
    packages=("rsyslog", "logrotate", *EXPORTERS),
)
