"""Rendering every file a host would receive, for review, exactly as a deploy renders it."""

from pathlib import Path

from deploys.lab_services import LAB_SERVICES
from deploys.mail_cluster import CLUSTER

from .component import Component, Target, write_files
from .config import Config

COMPONENTS = tuple(dict.fromkeys(part for part in CLUSTER + LAB_SERVICES if isinstance(part, Component)))
"""Every component: the cluster's in deploy order, then the lab's own services."""


def render_host(config: Config, host_name: str, out_dir: Path) -> list[Path]:
    """Write every file ``host_name`` would receive under ``out_dir``, mirroring target paths.
    Nothing else is touched: a secret not made yet shows as a placeholder."""
    return write_files(COMPONENTS, Target(config, host_name, review=True), out_dir)
