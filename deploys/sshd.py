"""SSH on every host: keys only."""

from pyinfra.api import deploy
from pyinfra.operations import systemd

from mailstack.component import EVERY_HOST, Component, ManagedFile
from operations.components import component_files


@deploy("SSH server")
def sshd():
    files = component_files(name="Configure sshd", component=SSHD)
    systemd.service(name="Reload sshd", service="ssh", reloaded=True, _if=files.did_change)


SSHD = Component(
    sshd,
    EVERY_HOST,
    files=(ManagedFile("/etc/ssh/sshd_config.d/mailstack.conf"),),
    # sshd -t wants its privilege separation folder, which only a running sshd has made.
    check="install -d -m 755 /run/sshd && sshd -t -f {root}/etc/ssh/sshd_config.d/mailstack.conf",
)
