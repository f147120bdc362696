"""What a component of the cluster is, and how its files are rendered for one host.

Each component lives in one module of ``deploys/`` (``deploys/postfix.py``): its ``@deploy``,
the groups it serves, the files it manages, the tool that checks them and the template
values only it needs, declared there as one ``Component``. Its templates mirror the target
paths under ``templates/``. ``deploys/mail_cluster.py`` lists the components in order.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from . import TEMPLATES
from .config import Config, ConfigError
from .config.model import Host
from .config.types import format_size
from .services import listen

EVERY_HOST = frozenset()
MAIL = frozenset({"mx"})
FRONT = frozenset({"lb"})


@dataclass(frozen=True)
class ManagedFile:
    path: str
    mode: str = "644"
    user: str = "root"
    group: str = "root"
    create_only: bool = False
    """Written once and then owned by the service (a zone file that takes dynamic updates)."""
    template_path: str | None = None
    """For one template that makes several files (one per domain): its target-like path."""
    values: tuple[tuple[str, object], ...] = ()
    """Extra template variables of this file, such as the domain it is for."""

    def template_names(self, release: str) -> list[str]:
        """The template mirrors the target path: /etc/x.conf -> templates/etc/x.conf.j2, or
        x.conf.trixie.j2 where the file's language differs on that Debian release."""
        name = (self.template_path or self.path).lstrip("/")
        return [f"{name}.{release}.j2", f"{name}.j2"]


MISSING_SECRET = "MISSING-SECRET:"
"""What a file for review shows in place of a secret not made yet."""


@dataclass(frozen=True)
class Target:
    """The host files are rendered for, and how: for a deploy (``deployer`` is the address it
    comes from, as the host sees it) or for review (``mailstack render``), where a secret
    that has not been made yet shows as a placeholder instead of stopping."""

    config: Config
    name: str
    deployer: str | None = None
    review: bool = False

    @property
    def settings(self) -> Host:
        return self.config.hosts[self.name]

    def secret(self, path: Path) -> str:
        """The content of a secret file, which ``mailstack secrets`` (or the operator) made."""
        try:
            return path.read_text().strip()
        except OSError:
            if self.review:
                return f"{MISSING_SECRET}{path}"
            source = self.config.source
            raise ConfigError(source, [f"{source}: missing secret file {path} (run mailstack secrets)"]) from None

    def named_secret(self, name: str) -> str:
        """A secret by its path relative to the YAML, or by its name in the secrets folder."""
        return self.secret(self.config.path(name) if "/" in name else self.config.secrets_dir / name)


def verify_units(script: str, units: str) -> str:
    """A check command: systemd's own verdict on the staged units ``units``.* under
    /etc/systemd/system. systemd checks that a unit's command exists and runs, so the staged
    ``script`` stands in for the one they start."""
    return (
        f"chmod 755 {{root}}{script} && mkdir -p {{root}}/verify"
        f" && cp {{root}}/etc/systemd/system/{units}.* {{root}}/verify"
        f" && sed -i 's#^ExecStart=#ExecStart={{root}}#' {{root}}/verify/{units}*.service"
        f" && systemd-analyze verify --man=no {{root}}/verify/*"
    )


def verify_drop_ins(paths: tuple[str, ...]) -> str:
    """A check command: systemd's own verdict on each staged drop-in, read as the settings of a
    service of its own that runs /bin/true. systemd ignores an unknown or malformed setting
    with a warning; here any warning fails."""
    return " && ".join(
        f"mkdir -p {{root}}/verify && (cat {{root}}{path} && printf '[Service]\\nExecStart=/bin/true\\n')"
        f" > {{root}}/verify/drop-in-{number}.service"
        f" && {{{{ systemd-analyze verify --man=no {{root}}/verify/drop-in-{number}.service 2>&1 || echo failed; }}}}"
        " | {{ ! grep . >&2; }}"
        for number, path in enumerate(paths)
    )


def after_the_network(service: str) -> ManagedFile:
    """A drop-in that starts ``service``, which listens on the host's own address, once the
    network is up (Debian's units of Postfix and Dovecot only order themselves after it)."""
    return ManagedFile(f"/etc/systemd/system/{service}.service.d/mailstack-network.conf",
                       template_path="/etc/systemd/system/after-the-network.conf")


def no_values(target: Target) -> dict:
    return {}


def always(config: Config) -> bool:
    return True


Files = tuple[ManagedFile, ...] | Callable[[Config], tuple[ManagedFile, ...]]


@dataclass(frozen=True)
class Component:
    """One part of the cluster. Its name is its module's (``deploys/postfix.py``: postfix)."""

    deploy: Callable[[], object]
    """Its ``@deploy()``: install, configure, activate."""
    groups: frozenset[str]
    """Hosts in any of these groups get it; empty: every host."""
    files: Files = ()
    check: str | None = None
    """Shell command that validates the files staged under ``{root}``; it must fail on a bad file."""
    values: Callable[[Target], dict] = field(default=no_values)
    """Template values only this component's files need."""
    when: Callable[[Config], bool] = field(default=always)
    packages: tuple[str, ...] = ()
    """The Debian packages (from main) its deploy installs. The lab's images carry them already."""

    @property
    def name(self) -> str:
        return self.deploy.__module__.rpartition(".")[2]

    def managed_files(self, config: Config) -> tuple[ManagedFile, ...]:
        return self.files(config) if callable(self.files) else self.files

    def applies_to(self, config: Config, host_name: str) -> bool:
        in_group = not self.groups or bool(self.groups & set(config.hosts[host_name].groups))
        return in_group and self.when(config)

    def render(self, target: Target) -> dict[ManagedFile, str]:
        """Each of the component's files for ``target``, as text."""
        values = self.values(target)
        return {managed: render_file(managed, target, values) for managed in self.managed_files(target.config)}


# As pyinfra's files.template renders (StrictUndefined, trailing newline kept), with the two
# formatting helpers every template may use.
TEMPLATE_ENVIRONMENT = Environment(
    loader=FileSystemLoader(str(TEMPLATES)), undefined=StrictUndefined, keep_trailing_newline=True
)
TEMPLATE_ENVIRONMENT.globals.update(listen=listen, format_size=format_size)


def render_file(managed: ManagedFile, target: Target, values: dict) -> str:
    """A template sees the configuration, the host (``host_name``, ``host``, ``release``), its
    component's values and the file's own."""
    release = target.config.release_of(target.name)
    template = TEMPLATE_ENVIRONMENT.select_template(managed.template_names(release))
    context = {"config": target.config, "host_name": target.name, "host": target.settings, "release": release}
    return template.render({**context, **values, **dict(managed.values)})


def write_files(components, target: Target, out_dir: Path) -> list[Path]:
    """Write every file of ``components`` that ``target`` gets under ``out_dir``, mirroring target paths."""
    written = []
    for component in components:
        if not component.applies_to(target.config, target.name):
            continue
        for managed, content in component.render(target).items():
            path = out_dir / managed.path.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)  # secrets are never readable by others, not even while written
            path.write_text(content, encoding="utf-8")
            path.chmod(int(managed.mode, 8))
            written.append(path)
    return written
