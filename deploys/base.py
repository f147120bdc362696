"""The base system every host gets first: hostname, apt, base packages, time."""

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.exceptions import PyinfraError
from pyinfra.facts.server import LinuxDistribution
from pyinfra.operations import apt, files, server, systemd

from facts.virt import Container
from mailstack.component import EVERY_HOST, Component, ManagedFile
from operations.components import cluster_config, component_files

BASE_PACKAGES = ("ca-certificates", "openssl", "less", "procps")
TIME_SYNC = "systemd-timesyncd"


class AnotherRelease(PyinfraError):
    """The host runs another Debian release than its configuration's: nothing was done."""


def refuse_another_release(config) -> None:
    """Files rendered for one release would not even load on the other (Dovecot 2.3 and 2.4)."""
    wanted = config.release_of(host.name)
    running = host.get_fact(LinuxDistribution)["release_meta"].get("VERSION_CODENAME")
    if running != wanted:
        key = f"hosts.{host.name}.release" if config.hosts[host.name].release else "cluster.release"
        raise AnotherRelease(f"{config.source}: {key}: {host.name} runs Debian {running}, not {wanted}")


@deploy("Base system")
def base():
    config = cluster_config()
    refuse_another_release(config)
    server.hostname(name="Set the host name", hostname=host.name)
    # apt settings (the proxy among them) must be in place before apt is first used.
    settings = component_files(name="Install base configuration", component=BASE)
    apt.update(name="Update apt lists", cache_time=24 * 3600)
    apt.packages(name="Install base packages", packages=list(BASE_PACKAGES))
    # Not server.timezone: its fact resolves links (UTC -> Etc/UTC) and never matches an alias.
    files.link(name="Set the time zone", path="/etc/localtime", target=f"/usr/share/zoneinfo/{config.cluster.timezone}")

    # A container shares the machine's clock; systemd-timesyncd refuses to run in one.
    if not host.get_fact(Container):
        apt.packages(name="Install systemd-timesyncd", packages=[TIME_SYNC])
        systemd.service(name="Run systemd-timesyncd", service="systemd-timesyncd", running=True, enabled=True)
        systemd.service(
            name="Restart systemd-timesyncd",
            service="systemd-timesyncd",
            restarted=True,
            _if=settings.did_change,
        )


BASE = Component(
    base,
    EVERY_HOST,
    files=(
        ManagedFile("/etc/apt/apt.conf.d/90mailstack"),
        ManagedFile("/etc/hosts"),
        ManagedFile("/etc/timezone"),
        ManagedFile("/etc/systemd/timesyncd.conf.d/mailstack.conf"),
    ),
    check="apt-config -c {root}/etc/apt/apt.conf.d/90mailstack dump >/dev/null",
    packages=(*BASE_PACKAGES, TIME_SYNC),
)
