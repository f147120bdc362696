"""Staging on Vagrant VMs (libvirt), from a configuration such as ``inventories/staging.yml``.

``up`` starts what libvirt needs on this machine, builds and adds the local box of the
staging's Debian release when ``MAILSTACK_BOX`` names it, runs ``vagrant up``, records the
host keys the VMs made for the inventory's known_hosts, and runs the apt proxy when the
configuration's ``apt_proxy`` is this machine's address in the private network. ``down``
destroys the VMs and all that ``up`` started, then checks that libvirt holds nothing of them.
``rebuild`` is down, up, the deploy and ``mailstack verify``.
"""

import ipaddress
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from urllib.parse import urlsplit

from .. import PROJECT, secrets
from ..config import Config
from ..lab import proxy
from ..lab.system import STATE, LabError, progress, run
from . import box, libvirt

FOLDER = STATE / "staging"
PREFIX = "mailstack-"  # of the Vagrantfile's domains and networks, and of the local box's volume


class Staging:
    def __init__(self, config: Config):
        self.config = config
        self.log = FOLDER / f"{config.cluster.name}.log"

    @property
    def environment(self) -> dict[str, str]:
        """What the Vagrantfile reads; each configuration keeps its own Vagrant state."""
        return {
            **os.environ,
            "MAILSTACK_STAGING": str(self.config.source),
            "VAGRANT_DEFAULT_PROVIDER": "libvirt",
            "VAGRANT_DOTFILE_PATH": str(PROJECT / ".vagrant" / self.config.cluster.name),
        }

    @property
    def local_box(self) -> str:
        """The box built here for the staging's release; it serves every VM (the Vagrantfile
        gives each host the public box of its own release only without ``MAILSTACK_BOX``)."""
        return box.name(self.config.cluster.release)

    def vagrant(self, *arguments: str) -> None:
        """A vagrant command, its output in the log (its progress bars would flood a terminal)."""
        FOLDER.mkdir(parents=True, exist_ok=True)
        with open(self.log, "a") as log:
            log.write(f"\n$ vagrant {' '.join(arguments)}\n")
            log.flush()
            done = subprocess.run(["vagrant", *arguments], cwd=PROJECT, env=self.environment,
                                  stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        if done.returncode:
            tail = self.log.read_text(errors="replace").replace("\r", "\n").strip().splitlines()[-5:]
            raise LabError(f"`vagrant {' '.join(arguments)}` failed; {self.log} ends with: " + " / ".join(tail))

    def up(self) -> None:
        libvirt.start()
        if os.environ.get("MAILSTACK_BOX") == self.local_box:
            box.add(self.config.cluster.release)
        secrets.make(self.config)
        names = list(self.config.hosts)
        with _phase(f"vagrant up: {len(names)} VMs ({', '.join(names)}); its output goes to {self.log}"):
            self.vagrant("up")
        self._record_host_keys()
        if address := self._proxy_address():
            proxy.start(str(address), str(self.config.cluster.network), FOLDER / "proxy")

    def down(self) -> None:
        """Destroy the VMs, the local box's copy in libvirt, the proxy and the daemons ``up`` started."""
        libvirt.start()
        with _phase("vagrant destroy"):
            self.vagrant("destroy", "--force")
        for pool, volume in libvirt.volumes():
            if volume.startswith(box.VOLUME_PREFIX):
                libvirt.virsh("vol-delete", "--pool", pool, volume)
        proxy.stop(FOLDER / "proxy")
        left = libvirt.leftovers(PREFIX)
        libvirt.stop()
        if left:
            raise LabError(f"libvirt still holds {', '.join(left)} after vagrant destroy")

    def rebuild(self, inventory: str) -> int:
        """From nothing to a verified staging: down, up, the deploy, ``mailstack verify``."""
        self.down()
        self.up()
        command = [sys.executable, "-m", "pyinfra", "-y", inventory, "deploys/mail_cluster.py"]
        with _phase("deploy"):
            if subprocess.run(command, cwd=PROJECT).returncode:
                raise LabError("the deploy failed (its output is above)")
        with _phase("mailstack verify"):
            return subprocess.run([sys.executable, "-m", "mailstack.cli", "verify", "--inventory", inventory],
                                  cwd=PROJECT).returncode

    def _proxy_address(self) -> ipaddress.IPv4Address | None:
        """The apt proxy's address when it is this machine's in the private network
        (the first address, which vagrant-libvirt gives the host)."""
        if not (self.config.cluster.apt_proxy and self.config.cluster.network):
            return None
        address = ipaddress.ip_address(urlsplit(str(self.config.cluster.apt_proxy)).hostname)
        return address if address == next(self.config.cluster.network.hosts()) else None

    def _record_host_keys(self) -> None:
        """Trust the host keys the VMs made at their first boot, as Vagrant itself does."""
        if not self.config.ssh.known_hosts:
            return
        addresses = [str(host.address) for host in self.config.hosts.values()]
        keys = run("ssh-keyscan", "-T", "30", *addresses).stdout
        known_hosts = self.config.path(self.config.ssh.known_hosts)
        known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        known_hosts.write_text(keys)


@contextmanager
def _phase(title: str):
    """Announce a long step, then say how long it took."""
    progress(title)
    started = time.monotonic()
    yield
    minutes, seconds = divmod(round(time.monotonic() - started), 60)
    progress(f"{title.split(':')[0]}: done in {minutes} min {seconds} s")
