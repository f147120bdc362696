"""The lab's supporting services: on ``ns`` hosts DNS (BIND, signed) and an ACME CA (pebble),
on ``outside`` hosts a mail server of another provider that sends with DANE, on ``legacy``
hosts the organisation's old IMAP server that mail migrates from.

They stand in for what production already has, a DNS provider, Let's Encrypt and the rest of
the Internet, so ``mailstack lab up`` deploys them before anyone runs the mail deploy:

    pyinfra -y inventories/lab.py deploys/lab_services.py --limit ns --limit outside --limit legacy

(pyinfra orders operations per host, and runs each operation on every host before the
next, so one run cannot make the mx hosts wait for a CA that the same run installs.)
"""

from pyinfra.context import ctx_host

from deploys.base import BASE
from deploys.bind import BIND
from deploys.common import converge
from deploys.legacy_imap import LEGACY_IMAP
from deploys.outside_mta import OUTSIDE_MTA
from deploys.pebble import PEBBLE

LAB_SERVICES = (BASE, BIND, PEBBLE, OUTSIDE_MTA, LEGACY_IMAP)

if ctx_host.isset():  # run by pyinfra, not imported to read the list
    converge(LAB_SERVICES)
