"""iptables on every host: drop by default, open what the host's roles need, never lock out
the deploy.

New rules go live through ``/usr/local/sbin/mailstack-firewall``: the live rules are kept,
the new ones loaded atomically, and unless this machine can then open a new SSH connection
to the host within ``firewall.confirm_seconds``, the kept rules come back (commit-confirm,
as ``iptables-apply`` does). Only confirmed rules are saved for the next boot.
"""

import hashlib
import socket
import time

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.facts.files import Sha1File
from pyinfra.operations import apt, python, systemd

from deploys.common import cluster_config, component_files, rendered_files

PERSISTED = {"/etc/mailstack/firewall/rules.v4": "/etc/iptables/rules.v4",
             "/etc/mailstack/firewall/rules.v6": "/etc/iptables/rules.v6"}


def ssh_answers(address: str, port: int, seconds: float) -> bool:
    """A new TCP connection to the host's sshd gets its banner within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=2) as connection:
                connection.settimeout(2)
                if connection.recv(4).startswith(b"SSH-"):
                    return True
        except OSError:
            time.sleep(0.5)
    return False


def apply_confirmed(state, host, address: str, port: int, seconds: int) -> bool:
    """Load the new rules, then keep them only if a new SSH connection still gets through.
    (pyinfra passes ``state`` and ``host`` and takes False as this operation's failure.)"""

    def failed(message: str) -> bool:
        host.log_styled(message, fg="red", log_func=logger.error)
        return False

    ok, output = host.run_shell_command("/usr/local/sbin/mailstack-firewall apply")
    if not ok:
        return failed(f"the new firewall rules did not load; the previous ones are back: {output.stderr}")
    if not ssh_answers(address, port, seconds):
        host.run_shell_command("/usr/local/sbin/mailstack-firewall rollback")  # the open session still works
        return failed(
            f"with the new firewall rules this machine could not open a new SSH connection to {address}:{port}"
            f" within {seconds} s; the previous rules are back (check firewall.admin_networks)"
        )
    ok, output = host.run_shell_command("/usr/local/sbin/mailstack-firewall confirm")
    return ok or failed(f"saving the confirmed firewall rules failed: {output.stderr}")


@deploy("Firewall")
def firewall():
    config = cluster_config()
    apt.packages(name="Install iptables", packages=["iptables", "netfilter-persistent", "iptables-persistent"])
    systemd.service(name="Load the saved rules at boot", service="netfilter-persistent", enabled=True)
    component_files(name="Configure the firewall", component_name="firewall")
    wanted = rendered_files("firewall")
    pending = [
        live for managed, content in wanted.items() if (live := PERSISTED.get(managed.path))
        and host.get_fact(Sha1File, path=live) != hashlib.sha1(content.encode()).hexdigest()
    ]
    if pending:
        python.call(
            name="Put the firewall rules live, kept only if SSH still gets through",
            function=apply_confirmed,
            address=host.data.ssh_hostname, port=config.ssh.port, seconds=config.firewall.confirm_seconds,
        )
