"""The cluster configuration: model, loader and reference."""

from .loader import ConfigError, load
from .model import GROUPS, Config

__all__ = ["GROUPS", "Config", "ConfigError", "load"]
