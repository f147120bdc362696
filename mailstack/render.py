"""Rendering templates for one host, the same way for deploys and for review.

``template_context`` is the one place that decides what a template sees.
"""

from pathlib import Path

from jinja2 import FileSystemLoader
from pyinfra.api.util import get_template

from . import TEMPLATES
from .components import ManagedFile, components_for
from .config import Config, ConfigError
from .config.types import format_size


def template_context(config: Config, host_name: str) -> dict:
    return {
        "config": config,
        "host_name": host_name,
        "node": config.hosts[host_name],
        "format_size": format_size,
        "secret": lambda name: _secret(config, name),
    }


def _secret(config: Config, name: str) -> str:
    """The content of a secret file: a path relative to the YAML, or a name in the secrets folder."""
    path = config.path(name) if "/" in name else config.secrets_dir / name
    try:
        return path.read_text().strip()
    except OSError:
        raise ConfigError(config.source, [f"{config.source}: missing secret file {path}"]) from None


def render(config: Config, host_name: str, managed: ManagedFile) -> str:
    # pyinfra's own template loader (StrictUndefined, trailing newline kept), as files.template uses.
    template = get_template(managed.template, {"loader": FileSystemLoader(str(TEMPLATES))})
    return template.render(template_context(config, host_name))


def render_host(config: Config, host_name: str, out_dir: Path) -> list[Path]:
    """Write every file ``host_name`` would receive under ``out_dir``, mirroring target paths."""
    written = []
    for component in components_for(config, host_name):
        for managed in component.files:
            target = out_dir / managed.path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(render(config, host_name, managed), encoding="utf-8")
            target.chmod(int(managed.mode, 8))
            written.append(target)
    return written
