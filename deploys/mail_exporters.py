"""What the mx hosts tell the mon hosts beyond the node exporter and Dovecot's own metrics:
Debian's Postfix exporter (the queues, read from Postfix's showq service; deliveries and
rejects, read from /var/log/mail.log, which Debian's rsyslog writes from the journal: the
exporter reads no journal), Debian's Redis exporter (whether the Redis that keeps Rspamd's
state answers), and what a timer writes into the node exporter's text files: Dovecot's
replication state per user and Rspamd's own metrics (its controller serves them without a
password to localhost only). Installed only where a mon host will scrape them.
"""

from pyinfra.api import deploy

from deploys import node_exporter
from deploys.common import configured_service
from mailstack import services
from mailstack.component import MAIL, Component, ManagedFile, Target

EXPORTERS = ("prometheus-postfix-exporter", "prometheus-redis-exporter")
TIMER = "mailstack-mail-metrics.timer"
MAIL_LOG = "/var/log/mail.log"
RSPAMD_CONTROLLER_PORT = 11334  # Rspamd's default, on localhost


@deploy("Mail exporters")
def mail_exporters():
    configured_service(MAIL_EXPORTERS, ("rsyslog", *EXPORTERS, TIMER), "the mail exporters",
                       packages=["rsyslog", "logrotate", "curl", *EXPORTERS], restarted=True)


def values(target: Target) -> dict:
    return {
        "postfix_port": services.POSTFIX_EXPORTER_PORT,
        "redis_port": services.REDIS_EXPORTER_PORT,
        "mail_log": MAIL_LOG,
        "textfiles": node_exporter.TEXTFILES,
        "rspamd_controller_port": RSPAMD_CONTROLLER_PORT,
    }


MAIL_EXPORTERS = Component(
    mail_exporters,
    MAIL,
    files=(
        ManagedFile("/etc/default/prometheus-postfix-exporter"),
        ManagedFile("/etc/default/prometheus-redis-exporter"),
        ManagedFile("/usr/local/sbin/mailstack-mail-metrics", mode="755"),
        ManagedFile("/etc/systemd/system/mailstack-mail-metrics.service"),
        ManagedFile(f"/etc/systemd/system/{TIMER}"),
    ),
    check=(
        "sh -n {root}/etc/default/prometheus-postfix-exporter && sh -n {root}/etc/default/prometheus-redis-exporter"
        " && sh -n {root}/usr/local/sbin/mailstack-mail-metrics"
        # systemd checks that the command exists and runs: the staged script stands in for it.
        " && chmod 755 {root}/usr/local/sbin/mailstack-mail-metrics"
        " && mkdir -p {root}/verify && cp {root}/etc/systemd/system/mailstack-mail-metrics.* {root}/verify"
        " && sed -i 's#^ExecStart=#ExecStart={root}#' {root}/verify/mailstack-mail-metrics.service"
        " && systemd-analyze verify --man=no {root}/verify/*"
    ),
    values=values,
    when=node_exporter.monitored,
)
