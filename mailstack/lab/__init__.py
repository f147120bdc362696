"""The local lab: real Debian hosts on this machine, described by ``inventories/lab.yml``.

Hosts in the ``storage`` group are QEMU guests (they need a real kernel for RAID and ZFS);
every other host is a booted systemd-nspawn container. All sit on one private bridge
with no route out; packages come through the apt proxy on the bridge address.
"""

import ipaddress
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .. import PROJECT, capacity, certificates, secrets
from ..config import Config, ConfigError
from ..ssh import ssh_config
from . import mailcheck, network, proxy
from .hosts import CA_NAME, HOSTS, Container, LabHost, VirtualMachine, console_tail, raise_if_failed
from .system import STATE, LabError, preflight, progress, raise_kernel_limit

SSH_TIMEOUT = 300


class Lab:
    def __init__(self, config: Config):
        if config.lab is None:
            raise ConfigError(config.source, [f"{config.source}: lab: no lab section; this is not a lab inventory"])
        self.config = config
        self.settings = config.lab
        self.secrets = config.secrets_dir
        self.hosts = [self._host(name) for name in config.hosts]

    # Files the lab makes for its inventory: key, known_hosts, CA, ssh_config.
    @property
    def ssh_key(self) -> Path:
        return self.config.path(self.config.ssh.key)

    @property
    def ca(self) -> tuple[Path, Path]:
        return certificates.cluster_ca(self.config)

    @property
    def ssh_config_file(self) -> Path:
        return self.secrets / "ssh_config"

    def _host(self, name: str) -> LabHost:
        host = self.config.hosts[name]
        interface = self._interface(host.address)
        release = self.config.release_of(name)
        if "storage" in host.groups:
            lab = self.settings
            zfs = host.storage is not None and host.storage.zfs is not None
            return VirtualMachine(name, interface, {}, lab.vm_memory, lab.vm_disks, lab.vm_disk_size, release,
                                  tuple(host.groups), zfs)
        return Container(name, interface, {}, release)

    def _interface(self, address) -> ipaddress.IPv4Interface:
        return ipaddress.ip_interface(f"{address}/{self.settings.address.network.prefixlen}")

    def _identity(self) -> dict[str, str]:
        """Files every host gets on creation: the lab's key for root, resolver, CA. The hosts'
        names are the deploy's (deploys/base.py), as on any other host."""
        hosts = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
        resolvers = [str(self.config.hosts[name].address) for name in self.config.hosts_in("ns")]
        return {
            "/root/.ssh/authorized_keys": self.ssh_key.with_suffix(".pub").read_text(),
            "/etc/hosts": "\n".join(hosts) + "\n",
            "/etc/resolv.conf": "".join(f"nameserver {ip}\n" for ip in resolvers) or "nameserver 127.0.0.1\n",
            f"/usr/local/share/ca-certificates/{CA_NAME}": self.ca[0].read_text(),
        }

    def up(self) -> None:
        preflight()
        if not (Path("/sys/class/net") / self.settings.bridge).exists():
            network.check_subnet_free(self.settings.bridge, self.settings.address)
        secrets.make(self.config)
        self._raise_kernel_limits()
        self._build_images()
        try:
            network.bridge_up(self.settings.bridge, self.settings.address)
            proxy.start(str(self.settings.address.ip), str(self.settings.address.network))
            identity = self._identity()
            for host in self.hosts:
                host.identity = identity
                if isinstance(host, VirtualMachine):
                    host.give_back()  # after a run that stopped while a fresh guest stood in
                progress(f"starting {host.name} ({host.kind})")
                host.start(self.settings.bridge)
            self._write_ssh_files()
            self._wait_for_ssh(self.hosts)
            self._deploy_services()
            self._trust_acme_root()
        except BaseException:
            progress("bring-up failed: stopping what was started")
            self.down()
            raise

    def _build_images(self) -> None:
        """The images the hosts start from, built side by side (a fresh machine builds three:
        one's downloads and unpacking overlap another's compiling of ZFS), each once."""
        one_per_image = {(type(host), host.release): host for host in self.hosts}.values()
        with ThreadPoolExecutor() as pool:
            list(pool.map(lambda host: host.image(), one_per_image))

    def _raise_kernel_limits(self) -> None:
        """What the mx hosts' Dovecot needs of the kernel (docs/capacity.md), for all of them:
        inotify's limits count per user, and the containers' vmail users are one here."""
        hosts = len(self.config.hosts_in("mx"))
        raise_kernel_limit("fs.inotify.max_user_instances", hosts * capacity.inotify_instances(self.config))
        raise_kernel_limit("fs.inotify.max_user_watches", hosts * capacity.inotify_watches(self.config))

    def _write_ssh_files(self) -> None:
        known_hosts = "".join((host.state / "known_hosts").read_text() for host in self.hosts)
        self.config.path(self.config.ssh.known_hosts).write_text(known_hosts)
        self.ssh_config_file.write_text(ssh_config(self.config))

    def _wait_for_ssh(self, hosts: list[LabHost]) -> None:
        started = time.monotonic()
        waiting = list(hosts)
        while waiting:
            for host in list(waiting):
                raise_if_failed(host)
                if host.ssh_ready():
                    waiting.remove(host)
                    progress(f"{host.name} answers SSH after {time.monotonic() - started:.1f} s")
            if time.monotonic() - started > SSH_TIMEOUT:
                consoles = "; ".join(f"{host.name}'s console ends with: {console_tail(host)}" for host in waiting)
                raise LabError(f"no SSH after {SSH_TIMEOUT} s; {consoles} ({HOSTS}/<host>/console.log)")
            time.sleep(0.5)

    def _deploy_services(self) -> None:
        """DNS and the ACME CA on the ns hosts, the outside mail server and the old IMAP server,
        with the project's own deploy, before any mail deploy."""
        if not self.config.hosts_in("ns"):
            return
        progress("deploying the lab's DNS, ACME CA and outside servers (deploys/lab_services.py)")
        pyinfra = Path(sys.executable).with_name("pyinfra")
        inventory = self.config.source.with_suffix(".py")
        result = subprocess.run(
            [pyinfra, "-y", str(inventory), "deploys/lab_services.py", "--limit", "ns", "--limit", "outside",
             "--limit", "legacy"],
            cwd=PROJECT, capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise LabError(f"deploying the lab services failed: {_what_failed(result.stdout + result.stderr)}")

    def _trust_acme_root(self) -> None:
        """Every lab host trusts pebble's root, as production hosts trust Let's Encrypt's.

        pebble forgets its root, accounts and certificates whenever it starts: then every
        host trusts the new root and forgets its ACME state, so the next deploy obtains new
        certificates exactly as on a fresh host."""
        if not self.config.hosts_in("ns"):
            return
        root = mailcheck.pebble_root(self)
        known = self.secrets / "pebble-root.pem"
        if known.exists() and known.read_text() == root:
            return
        progress("pebble has a new root: every lab host trusts it and forgets its old ACME state")
        commands = (
            "cat > /usr/local/share/ca-certificates/pebble-root.crt && update-ca-certificates >/dev/null"
            " && rm -rf /etc/letsencrypt/{live,archive,renewal,accounts}"
        )
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = pool.map(lambda host: self.run(host.name, commands, input=root), self.hosts)
        for host, result in zip(self.hosts, results):
            if result.returncode != 0:
                raise LabError(f"{host.name} could not take pebble's new root: {result.stderr.strip()}")
        known.write_text(root)

    def run(self, host: str | LabHost, command: str, input: str | None = None, timeout: float = 300):
        """Run a shell command over SSH with the lab's key, on a host of the inventory (by name)
        or on one a bench made (``guest``, ``container``)."""
        if isinstance(host, LabHost):
            target = ["-i", str(self.ssh_key), "-o", f"UserKnownHostsFile={host.state / 'known_hosts'}",
                      "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", f"root@{host.address.ip}"]
        else:
            target = ["-F", str(self.ssh_config_file), host]
        return subprocess.run(["ssh", *target, command], input=input, capture_output=True, text=True, timeout=timeout)

    def host(self, name: str) -> LabHost:
        return next(host for host in self.hosts if host.name == name)

    def guest(self, name: str, address: str, release: str, memory: int, disks: int, disk_size: int) -> VirtualMachine:
        """A QEMU guest outside the inventory, on the lab's bridge with the lab's identity, for a
        bench that needs real kernels of its own. ``down`` stops it like any leftover host."""
        return VirtualMachine(name, self._interface(address), self._identity(), memory, disks, disk_size, release)

    def container(self, name: str, address: str, release: str) -> Container:
        """A container outside the inventory, on the lab's bridge with the lab's identity, made
        from the image the cluster's containers start from: its packages installed, as Debian
        ships them, and nothing of mailstack. ``down`` stops it like any leftover host."""
        return Container(name, self._interface(address), self._identity(), release)

    def start(self, name: str) -> None:
        """Boot one stopped or crashed host again, as it was, and wait for its SSH."""
        host = self.host(name)
        host.identity = self._identity()
        host.start(self.settings.bridge)
        self._write_ssh_files()  # a host made again has new host keys
        self._wait_for_ssh([host])

    def restart(self, name: str) -> None:
        """Shut one host down cleanly and boot it again (a QEMU guest with the initramfs it made
        itself, as at every boot)."""
        host = self.host(name)
        progress(f"restarting {name}")
        host.stop()
        self.start(name)

    def down(self) -> None:
        """Stop every lab host, the proxy and the bridge; safe to run twice and after a crash."""
        names = {host.name for host in self.hosts}
        leftovers = [self._leftover(path.name) for path in HOSTS.glob("*") if path.name not in names
                     and path.suffix != ".kept"]
        steps = [host.stop for host in self.hosts + leftovers]
        with ThreadPoolExecutor(max_workers=8) as pool:
            failures = [error for error in pool.map(_attempt, steps) if error]
        for step in (proxy.stop, lambda: network.bridge_down(self.settings.bridge)):
            failures += [error] if (error := _attempt(step)) else []
        if failures:
            raise LabError("; ".join(failures))

    def _leftover(self, name: str) -> LabHost:
        """A host that left the inventory while its state stayed behind."""
        if (HOSTS / name / "root.raw").exists():
            return VirtualMachine(name, self.settings.address, {}, 0, 0, 0)
        return Container(name, self.settings.address, {})

    def destroy(self) -> None:
        """Stop everything, then delete images, per-host state and the lab's secrets."""
        self.down()
        shutil.rmtree(STATE, ignore_errors=True)
        shutil.rmtree(self.secrets, ignore_errors=True)

    def status(self) -> list[dict]:
        return [
            {
                "host": host.name,
                "role": ",".join(self.config.hosts[host.name].groups),
                "address": str(host.address.ip),
                "kind": host.kind,
                "state": "up" if host.is_running() else "down",
                "ssh": "ready" if host.is_running() and host.ssh_ready() else "-",
            }
            for host in self.hosts
        ]


def _attempt(step) -> str | None:
    """Run one teardown step; a failure is reported after every other step has run."""
    try:
        step()
    except LabError as error:
        return str(error)
    return None


def _what_failed(output: str) -> str:
    """What pyinfra's hosts said about the operations that failed, else the output's end."""
    said = [line.strip() for line in output.splitlines() if re.match(r"\s+\[[^]]+\]\s", line)
            and not re.search(r"\]\s+(Success|No changes|Skipped|Connected|Ready:)", line)]
    return " / ".join(said or output.strip().splitlines()[-8:])
