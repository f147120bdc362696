"""The organisation's old mail server, for the lab: Cyrus IMAP over IMAPS with a certificate
from the lab CA, and Postfix taking its mail over SMTP into Cyrus (LMTP), so the migration
(``mailstack migrate``) is proven against a real server that is not Dovecot. Only for the
lab, on ``legacy`` hosts.

Users log in with their full address (``virtdomains: userid``); folders are separated by
``/`` and sit beside INBOX (``altnamespace``), as most old servers present them. The admin
login of the migration credentials may act as every user (``proxyservers``). Its users and
their mail are loaded by the lab's corpus (``mailstack.lab.corpus``), not by this deploy.
"""

from pyinfra.api import deploy
from pyinfra.operations import server

from deploys.common import configured_service
from mailstack import migration
from mailstack.component import Component, ManagedFile, Target

ADMIN_PASSWORD = "/etc/cyrus/admin.pass"


@deploy("The old IMAP server (Cyrus)")
def legacy_imap():
    files = configured_service(LEGACY_IMAP, ("cyrus-imapd", "postfix"), "Cyrus IMAP and Postfix", restarted=True)
    server.shell(
        name="Set the admin login's password (saslpasswd2 reads it from stdin)",
        commands=[f"tr -d '\\n' < {ADMIN_PASSWORD} | saslpasswd2 -p -c \"$(cat /etc/cyrus/admin.user)\""
                  " && chown root:sasl /etc/sasldb2 && chmod 640 /etc/sasldb2"],
        _if=files.did_change,
    )


def admin_login(target: Target) -> tuple[str, str]:
    """The admin login from the migration's credentials; a render for review runs without them."""
    path = target.config.path(target.config.migration.credentials)
    if target.review and not path.exists():
        return migration.LAB_ADMIN, f"MISSING-SECRET:{path}"
    login = migration.credentials(target.config)
    return login.master_user, login.master_password


def values(target: Target) -> dict:
    admin, password = admin_login(target)
    return {
        "admin": admin,
        "admin_password": password,
        "certificate": target.named_secret(f"{target.name}.pem"),
        "key": target.named_secret(f"{target.name}.key"),
        "clients": [str(target.config.lab.address.network)] if target.config.lab else [],
    }


LEGACY_IMAP = Component(
    legacy_imap,
    frozenset({"legacy"}),
    files=(
        ManagedFile("/etc/imapd.conf"),
        ManagedFile("/etc/cyrus.conf"),
        ManagedFile("/etc/cyrus/admin.user"),
        ManagedFile(ADMIN_PASSWORD, mode="600"),
        ManagedFile("/etc/cyrus/cert.pem", user="cyrus", group="mail"),
        ManagedFile("/etc/cyrus/key.pem", mode="600", user="cyrus", group="mail"),
        ManagedFile("/etc/postfix/main.cf", template_path="/etc/postfix/legacy-main.cf"),
    ),
    # conf-lint names each setting Cyrus does not know, and fails on a file it cannot read; it runs
    # as the cyrus user, who may not enter the staging folder
    check='lint=$(mktemp -d) && cp {root}/etc/imapd.conf {root}/etc/cyrus.conf "$lint" && chown -R cyrus "$lint"'
          ' && known=$(/usr/lib/cyrus/bin/cyr_info -C "$lint/imapd.conf" -M "$lint/cyrus.conf" conf-lint)'
          ' && rm -r "$lint" && test -z "$known"'
          # main.cf beside the package's own master.cf, which stays as Debian ships it
          " && cp /etc/postfix/master.cf {root}/etc/postfix/"
          " && postconf -c {root}/etc/postfix -n >/dev/null && postfix -c {root}/etc/postfix check",
    values=values,
    packages=("postfix", "cyrus-imapd", "cyrus-admin", "sasl2-bin"),  # Postfix: Cyrus needs an MTA, not Exim
)
