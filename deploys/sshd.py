"""SSH on every host: keys only."""

from pyinfra.api import deploy
from pyinfra.operations import systemd

from deploys.common import component_files


@deploy("SSH server")
def sshd():
    files = component_files(name="Configure sshd", component_name="sshd")
    systemd.service(name="Reload sshd", service="ssh", reloaded=True, _if=files.did_change)
