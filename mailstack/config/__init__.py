"""The cluster configuration: model, loader and reference."""

from .loader import ConfigError, load
from .model import GROUPS, RELEASES, Config

__all__ = ["GROUPS", "RELEASES", "Config", "ConfigError", "load"]
