"""DKIM keys of the mail domains: made once in the secrets folder, published in DNS."""

from pathlib import Path

from . import keys
from .config import Config
from .config.model import Domain


def key_file(config: Config, domain: Domain) -> Path:
    """The domain's private key (RSA, ``dkim_key_bits``), made by ``mailstack secrets``."""
    return config.secrets_dir / "dkim" / f"{domain.name}.{domain.dkim_selector}.key"


def make_keys(config: Config) -> None:
    """Each domain's key, made once: its DNS record depends on it."""
    for domain in config.domains:
        keys.dkim_key(key_file(config, domain), domain.dkim_key_bits)


def record_name(domain: Domain) -> str:
    return f"{domain.dkim_selector}._domainkey.{domain.name}"


def record(config: Config, domain: Domain) -> str:
    return keys.dkim_record(key_file(config, domain))
