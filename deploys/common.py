"""What every component's deploy shares: its configuration and a checked way to install files."""

import hashlib
import posixpath
import shlex
from functools import lru_cache
from io import StringIO

from pyinfra import host
from pyinfra.api import FileUploadCommand, operation
from pyinfra.facts.files import File, Sha1File

from facts.ssh import DeployerAddress
from mailstack.components import ManagedFile, component
from mailstack.config import Config, load
from mailstack.render import render

STAGING = "/var/lib/mailstack/staged"


@lru_cache
def _load(path: str) -> Config:
    return load(path)


def cluster_config() -> Config:
    """The configuration of the current host's inventory (validated once per run)."""
    return _load(host.data.mailstack_config)


def _is_current(managed: ManagedFile, content: str) -> bool:
    live = host.get_fact(File, path=managed.path)
    if managed.create_only:
        return bool(live)
    return (
        bool(live)
        and host.get_fact(Sha1File, path=managed.path) == hashlib.sha1(content.encode()).hexdigest()
        and (live["user"], live["group"], live["mode"]) == (managed.user, managed.group, int(managed.mode))
    )


def deployer() -> str | None:
    """Where this deploy comes from, as the host sees it (without sudo, which drops $SSH_CONNECTION)."""
    return host.get_fact(DeployerAddress, _sudo=False)


def rendered_files(component_name: str) -> dict[ManagedFile, str]:
    """A component's files as the configuration renders them for the current host."""
    config = cluster_config()
    files = component(component_name).managed_files(config)
    return {managed: render(config, host.name, managed, deployer=deployer()) for managed in files}


@operation()
def component_files(component_name: str):
    """
    Install a component's files, only after the component's own tool accepted them.

    + component_name: a component of ``mailstack.components``

    When any live file differs from what the configuration renders, all of the component's
    files are staged under ``/var/lib/mailstack/staged/<component>`` (mode 0700), checked
    there, and only then renamed into place. A failing check stops the deploy with the
    tool's message and leaves the live files untouched. Contents are never diffed or
    printed, because some of them are secrets.

    **Example:**

    .. code:: python

        files = component_files(name="Configure Postfix", component_name="postfix")
        systemd.service(service="postfix", reloaded=True, _if=files.did_change)
    """
    wanted = component(component_name)
    rendered = rendered_files(wanted.name)
    stale = [managed for managed, content in rendered.items() if not _is_current(managed, content)]
    if not stale:
        host.noop(f"{component_name} files are up to date")
        return

    root = f"{STAGING}/{component_name}"
    yield f"rm -rf {root} && install -d -m 700 {STAGING} {root}"
    for managed, content in rendered.items():
        staged = root + managed.path
        yield f"install -d -m 700 {shlex.quote(posixpath.dirname(staged))}"
        yield FileUploadCommand(StringIO(content), staged, remote_temp_filename=f"{staged}.upload")
    if wanted.check:
        yield wanted.check.format(root=root)
    for managed in stale:
        target, new = shlex.quote(managed.path), shlex.quote(f"{managed.path}.mailstack-new")
        yield (
            f"install -D -m {managed.mode} -o {managed.user} -g {managed.group} {root}{managed.path} {new}"
            f" && mv -f {new} {target}"
        )


@operation(is_idempotent=True)
def all_hosts_reach(point: str):
    """
    A point no host passes before every host of the run has reached it.

    + point: what is done when every host is here

    pyinfra orders operations per host; an operation every host calls at the same place
    of a deploy joins their orders there. It changes nothing.
    """
    host.noop(point)
    yield from ()

