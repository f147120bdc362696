"""While a migration runs (docs/migration.md): the CA of the old server's certificate
(``migration.ca``) among the mx hosts' system roots, against which Dovecot's imapc storage
(``mailstack migrate``) and its login proxy check the old server."""

from pyinfra.api import deploy
from pyinfra.operations import server

from mailstack.component import MAIL, Component, ManagedFile, Target
from operations.components import component_files

OLD_SERVER_CA = "/usr/local/share/ca-certificates/mailstack-migration.crt"


@deploy("Trust the old server")
def trust_old_server():
    installed = component_files(name="Install the old server's CA", component=MIGRATION)
    server.shell(name="Add it to the system's roots", commands=["update-ca-certificates >/dev/null"],
                 _if=installed.did_change)


def values(target: Target) -> dict:
    return {"old_server_ca": target.secret(target.config.path(target.config.migration.ca))}


def with_a_private_ca(config) -> bool:
    return bool(config.migration and config.migration.ca)


MIGRATION = Component(
    trust_old_server,
    MAIL,
    files=(ManagedFile(OLD_SERVER_CA),),
    check=f"openssl x509 -noout -in {{root}}{OLD_SERVER_CA}",
    values=values,
    when=with_a_private_ca,
)
