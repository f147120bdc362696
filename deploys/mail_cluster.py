"""Converge a whole mail cluster: every host gets the components of its groups.

    pyinfra inventories/prod.py deploys/mail_cluster.py

The order of ``DEPLOYS`` is the order of the work on each host; it is one short list
so the reason for each position can be written beside it.
"""

from pyinfra import host

from deploys.base import base
from deploys.bind import bind
from deploys.certbot import certbot
from deploys.dovecot import dovecot
from deploys.pebble import pebble
from deploys.postfix import postfix
from deploys.tls import tls
from deploys.common import cluster_config
from mailstack.components import components_for

DEPLOYS = {
    "base": base,  # first: apt proxy and base packages come before any component's packages
    "bind": bind,  # before pebble, which validates DNS-01 challenges against it
    "pebble": pebble,  # before any mx: certbot asks it for certificates in the lab
    "tls": tls,  # certificates before the services that serve them
    "certbot": certbot,
    "postfix": postfix,
    "dovecot": dovecot,  # after Postfix: its LMTP and auth sockets live in Postfix's spool
}

for component in components_for(cluster_config(), host.name):
    DEPLOYS[component.name]()
