"""Operations on a component's files, and the point where every host of a run meets."""

import hashlib
import shlex
import tarfile
import time
from functools import lru_cache
from io import BytesIO

from pyinfra import host
from pyinfra.api import FileUploadCommand, operation

from facts.files import FileState, FileStates
from facts.session import DeployerAddress
from mailstack import secrets
from mailstack.component import Component, ManagedFile, Target
from mailstack.config import Config, load

STAGING = "/var/lib/mailstack/staged"
# A deploy that logs in as a user and becomes root with sudo (Vagrant's) uploads as that user:
# first into this folder, the user's own and private (the files may be secrets), then sudo copies.
UPLOADS = "/var/lib/mailstack/uploads"


@lru_cache
def _prepared(path: str) -> Config:
    config = load(path)
    secrets.make(config)
    return config


def cluster_config() -> Config:
    """The configuration of the current host's inventory, validated and with its secrets made
    once per run (the deploy's preflight, before any host is touched)."""
    return _prepared(host.data.mailstack_config)


def deploy_target() -> Target:
    """The current host as a deploy renders for it: with the address the deploy comes from, as
    the host sees it (asked without sudo, which drops $SSH_CONNECTION)."""
    return Target(cluster_config(), host.name, deployer=host.get_fact(DeployerAddress, _sudo=False))


def _stale(rendered: dict[ManagedFile, str]) -> list[ManagedFile]:
    """The files whose live copy is missing or differs in content, owner, group or mode."""
    live = host.get_fact(FileStates, paths=tuple(managed.path for managed in rendered))
    return [managed for managed, content in rendered.items()
            if not _is_current(managed, content, live.get(managed.path))]


def _is_current(managed: ManagedFile, content: str, live: FileState | None) -> bool:
    if managed.create_only:
        return live is not None
    return live == (managed.user, managed.group, int(managed.mode), hashlib.sha1(content.encode()).hexdigest())


@operation()
def component_files(component: Component):
    """
    Install a component's files, only after the component's own tool accepted them.

    + component: a ``Component`` of ``deploys/``

    When any live file differs from what the configuration renders, all of the component's
    files go up in one archive, are unpacked under ``/var/lib/mailstack/staged/<component>``
    (mode 0700), checked there, and only then renamed into place, in one command: under
    TCG each command costs a fraction of a second in SSH and sudo alone. A failing check
    stops the deploy with the tool's message and leaves the live files untouched. Contents
    are never diffed or printed, because some of them are secrets.

    **Example:**

    .. code:: python

        files = component_files(name="Configure Postfix", component=POSTFIX)
        systemd.service(service="postfix", reloaded=True, _if=files.did_change)
    """
    rendered = component.render(deploy_target())
    stale = _stale(rendered)
    if not stale:
        host.noop(f"{component.name} files are up to date")
        return

    root, listed, archive = (f"{STAGING}/{component.name}{suffix}" for suffix in ("", ".hidden", ".tar"))
    login = shlex.quote(host.data.get("ssh_user") or "root")
    members = {f"{component.name}{managed.path}": content for managed, content in rendered.items()}
    steps = [f"tar -x -f {archive} -C {STAGING}", f"rm -f {archive}"]
    if component.check:
        staged = "".join(rendered.values())
        hidden = sorted(line for line in secrets.lines(cluster_config()) if line in staged)
        members[f"{component.name}.hidden"] = "".join(f"{line}\n" for line in hidden)
        steps.append(hiding_secrets(component.check.format(root=root), listed))
    for managed in stale:
        target, new = shlex.quote(managed.path), shlex.quote(f"{managed.path}.mailstack-new")
        steps.append(f"install -D -m {managed.mode} -o {managed.user} -g {managed.group} {root}{managed.path} {new}"
                     f" && mv -f {new} {target}")
    yield f"rm -rf {root} && install -d -m 700 {STAGING} {root} && install -d -m 700 -o {login} {UPLOADS}"
    yield FileUploadCommand(_tar(members), archive, remote_temp_filename=f"{UPLOADS}/{component.name}.tar")
    yield " && ".join(f"{{ {step}; }}" for step in steps)


def _tar(members: dict[str, str]) -> BytesIO:
    """A tar archive of ``members`` (name: text) whose files only their owner reads: the
    staged files may be secrets."""
    archive = BytesIO()
    with tarfile.open(fileobj=archive, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, text in members.items():
            data = text.encode()
            member = tarfile.TarInfo(name)
            member.size, member.mode, member.mtime = len(data), 0o600, int(time.time())
            tar.addfile(member, BytesIO(data))
    archive.seek(0)
    return archive


def hiding_secrets(check: str, listed: str) -> str:
    """``check``, which says nothing when it passes; when it fails, what it said with each line
    of the file ``listed`` replaced by ``<secret>`` (a checker may quote the line it refuses,
    a password's). The list is the staged files' own secrets, and is removed afterwards."""
    return (
        f'said=$(mktemp) && if ( {check} ) >"$said" 2>&1; then rm -f "$said" {listed};'
        f' else awk {shlex.quote(secrets.REDACT_AWK)} {listed} "$said" >&2; rm -f "$said" {listed}; exit 1; fi'
    )


@operation(is_idempotent=True)
def all_hosts_reach(point: str):
    """
    A point no host passes before every host of the run has reached it.

    + point: what is done when every host is here

    pyinfra orders operations per host; an operation every host calls at the same place
    of a deploy joins their orders there. It changes nothing.

    **Example:**

    .. code:: python

        all_hosts_reach(name="Converge the backends before the front", point="every backend is converged")
    """
    host.noop(point)
    yield from ()
