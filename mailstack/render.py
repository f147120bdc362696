"""Rendering every file a host would receive, for review, exactly as a deploy renders it."""

from pathlib import Path

from deploys.lab_services import LAB_SERVICES
from deploys.mail_cluster import CLUSTER

from . import secrets, validators
from .component import MISSING_SECRET, Component, Target, write_files
from .config import RELEASES, Config

COMPONENTS = tuple(dict.fromkeys(part for part in CLUSTER + LAB_SERVICES if isinstance(part, Component)))
"""Every component: the cluster's in deploy order, then the lab's own services."""


def render_host(config: Config, host_name: str, out_dir: Path) -> list[Path]:
    """Write every file ``host_name`` would receive under ``out_dir``, mirroring target paths.
    Nothing else is touched: a secret not made yet shows as a placeholder."""
    return write_files(COMPONENTS, Target(config, host_name, review=True), out_dir)


def check_host(config: Config, host_name: str, root: Path) -> dict[str, str]:
    """Check the files rendered under ``root`` with each component's own tool, as the host's
    Debian release has it: what failed, by component, with what its tool said (any secret in
    it hidden)."""
    failures = {}
    for component in COMPONENTS:
        if component.check and component.applies_to(config, host_name):
            result = validators.check(component, config, host_name, root)
            if result.returncode != 0:
                said = secrets.redact(config, (result.stderr or result.stdout).strip())
                if _waits_for_a_secret(component, config, root):
                    said += "\n(a file holds a placeholder for a secret not made yet: make it with `mailstack secrets`)"
                failures[component.name] = said
    return failures


def _waits_for_a_secret(component: Component, config: Config, root: Path) -> bool:
    """Whether a file of ``component`` under ``root`` shows a placeholder for a secret, which its
    tool may have judged (too short a key, no certificate) rather than the file."""
    paths = (root / managed.path.lstrip("/") for managed in component.managed_files(config))
    return any(path.is_file() and MISSING_SECRET in path.read_text(errors="replace") for path in paths)


def checked_by(config: Config, host_name: str) -> str:
    release = config.release_of(host_name)
    return f"{RELEASES[release]} ({release})"
