"""What the components' deploys share: running an ordered list of them, and the shape most
of them have (a package, its checked files, its service)."""

import shlex

from pyinfra import host
from pyinfra.facts.server import Command
from pyinfra.operations import apt, server, systemd

from mailstack import services
from mailstack.component import Component
from operations.components import all_hosts_reach, cluster_config, component_files


class MeetingPoint:
    """A place in an ordered list of components that every host of a run reaches before any
    host goes on (``all_hosts_reach``)."""

    def __init__(self, point: str, title: str):
        self.point, self.title = point, title


BACKENDS_CONVERGED = MeetingPoint("every backend is converged", "Converge the backends before the front")


def converge(parts: tuple[Component | MeetingPoint, ...]) -> None:
    """Deploy, in order, each component that applies to the current host. Every host walks the
    whole list (``host.loop``), so each step, and each meeting point, has the same place in
    every host's order."""
    config = cluster_config()
    for part in host.loop(parts):
        if isinstance(part, MeetingPoint):
            all_hosts_reach(name=part.title, point=part.point)
        elif part.applies_to(config, host.name):
            part.deploy()


def configured_service(
    component: Component, service: str | tuple[str, ...], title: str, restarted: bool = False,
    ready: str | None = None, installed: bool = False,
):
    """
    Install the component's packages (unless the deploy has, ``installed``, for what needed
    their users first), then its checked files; run ``service`` (or each of several) and
    reload it (or restart it) when the files changed. A file among them under
    /etc/systemd/system makes systemd read its units again first. ``ready`` is a command that
    succeeds once a service that was just installed and started answers: a reload waits for it
    (a reload sent before the service listens fails). Returns the files' operation.
    """
    if component.packages and not installed:
        apt.packages(name=f"Install {title}", packages=list(component.packages))
    files = component_files(name=f"Configure {title}", component=component)
    reload_units(component, files)
    several = {service: title} if isinstance(service, str) else {name: name for name in service}
    for name, label in several.items():
        run_service(name, label)
    if ready:
        wait = f"until {ready} >/dev/null 2>&1; do sleep 1; done"
        server.shell(name=f"Wait until {title} answers", commands=[f"timeout 120 sh -c {shlex.quote(wait)}"],
                     _if=files.did_change)
    for name, label in several.items():
        apply_settings(name, label, files, restarted)
    return files


def reload_units(component: Component, files) -> None:
    """Make systemd read its units again when ``files`` changed any of the component's under
    /etc/systemd/system."""
    if any(managed.path.startswith("/etc/systemd/system/") for managed in component.managed_files(cluster_config())):
        systemd.daemon_reload(name="Reload systemd units", _if=files.did_change)


def system_account(user: str, uid: int, home: str) -> None:
    """A system user without a login or a home of its own making, and its own group, both with
    ID ``uid``. ``getent`` says whether anything is to do, and groupadd and useradd (groupmod
    and usermod where they exist) do it: pyinfra's server.user reads the ``Users`` fact, which
    starts about a dozen processes for every account of the host, about a minute in a VM under
    TCG."""
    shell = "/usr/sbin/nologin"
    # name, IDs, home and shell; not the comment, which Debian's packages fill ("Postfix MTA")
    found = f"echo $(getent passwd {user} | cut -d: -f1,3,4,6,7) $(getent group {user} | cut -d: -f1,3)"
    if host.get_fact(Command, found) == f"{user}:{uid}:{uid}:{home}:{shell} {user}:{uid}":
        return
    account = f"-u {uid} -g {uid} -d {home} -s {shell} {user}"  # useradd's and usermod's (their long -d differ)
    server.shell(name=f"Add the {user} user and group", commands=[
        f"if getent group {user} >/dev/null; then groupmod --gid {uid} {user};"
        f" else groupadd --system --gid {uid} {user}; fi",
        f"if getent passwd {user} >/dev/null; then usermod {account};"
        f" else useradd --system --no-create-home {account}; fi",
    ])


def by_pacemaker(service: str) -> bool:
    """Whether Pacemaker starts ``service`` on this host, where the mail is (deploys/pacemaker.py)."""
    return service in services.CLUSTERED and cluster_config().mailboxes_on_drbd(host.name)


def run_service(service: str, label: str) -> None:
    """Run ``service`` now and at boot; one that Pacemaker runs stays off at boot, and is left
    running or stopped as Pacemaker has it."""
    if by_pacemaker(service):
        systemd.service(name=f"Leave {label} to Pacemaker", service=service, running=None, enabled=False)
    else:
        systemd.service(name=f"Run {label}", service=service, running=True, enabled=True)


def apply_settings(service: str, label: str, files, restarted: bool = False) -> None:
    """Reload (or restart) ``service`` when its ``files`` changed; one that Pacemaker runs only
    where it runs."""
    verb = "Restart" if restarted else "Reload"
    if by_pacemaker(service):
        action = "try-restart" if restarted else "try-reload-or-restart"
        server.shell(name=f"{verb} {label} where it runs", commands=[f"systemctl {action} {service}"],
                     _if=files.did_change)
    else:
        change = {"restarted": True} if restarted else {"reloaded": True}
        systemd.service(name=f"{verb} {label}", service=service, **change, _if=files.did_change)
