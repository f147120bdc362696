"""The backup host: a ``borg`` user whose only use is ``borg serve`` for the cluster's
repository, for the mx hosts' key and addresses (the key cannot open a shell, forward
ports or reach another repository). The firewall lets only the mx hosts (and the admins)
reach its SSH. The mx hosts make the repository with their first backup.
"""

from pyinfra.api import deploy
from pyinfra.operations import apt, files, server

from mailstack import backup as backups
from mailstack.component import Component, ManagedFile, Target
from mailstack.services import addresses
from operations.components import component_files


@deploy("Backup repository")
def backup_host():
    apt.packages(name="Install BorgBackup", packages=list(BACKUP_HOST.packages))
    server.group(name="Add the borg group", group="borg", system=True)
    server.user(name="Add the borg user", user="borg", group="borg", home=backups.HOME, shell="/bin/sh",
                system=True, create_home=False)
    for path in (backups.HOME, f"{backups.HOME}/.ssh"):
        files.directory(name=f"Create {path}", path=path, user="borg", group="borg", mode="700")
    component_files(name="Let the mx hosts' backups in", component=BACKUP_HOST)


def values(target: Target) -> dict:
    config = target.config
    public_key = config.secrets_dir / f"{backups.SSH_KEY}.pub"
    return {
        "public_key": target.secret(public_key),
        "repository": backups.repository_path(config),
        "mx_addresses": addresses(config, "mx"),
    }


BACKUP_HOST = Component(
    backup_host,
    frozenset({"backup"}),
    files=(ManagedFile(f"{backups.HOME}/.ssh/authorized_keys", mode="600", user="borg", group="borg"),),
    check=f"ssh-keygen -l -f {{root}}{backups.HOME}/.ssh/authorized_keys >/dev/null",
    values=values,
    packages=("borgbackup",),
)
