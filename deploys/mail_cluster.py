"""Converge a whole mail cluster: every host gets the components of its groups.

    pyinfra inventories/prod.py deploys/mail_cluster.py

The lines below are the order of the work. pyinfra orders operations across hosts by the
line that started them, so each component has its own line here: everything ``ns1`` serves
(DNS, the ACME CA) is up before any mx host asks for a certificate. Which components a host
gets follows from its groups (``mailstack/components.py``).
"""

from pyinfra import host

from deploys.base import base
from deploys.bind import bind
from deploys.certbot import certbot
from deploys.common import cluster_config
from deploys.dovecot import dovecot
from deploys.pebble import pebble
from deploys.postfix import postfix
from deploys.rspamd import rspamd
from deploys.tls import tls
from mailstack.components import components_for

WANTED = {component.name for component in components_for(cluster_config(), host.name)}


def step(component_deploy) -> None:
    if component_deploy.__name__ in WANTED:
        component_deploy()


step(base)  # first: the apt proxy and base packages come before any component's packages
step(bind)  # before pebble, which validates DNS-01 challenges against it
step(pebble)  # before any mx host: certbot asks it for certificates in the lab
step(tls)  # certificates before the services that serve them
step(certbot)
step(rspamd)  # before Postfix, whose milter it is
step(postfix)
step(dovecot)  # after Postfix: its LMTP and auth sockets live in Postfix's spool
