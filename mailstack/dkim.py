"""DKIM keys of the mail domains: made once in the secrets folder, published in DNS."""

from pathlib import Path

from . import keys
from .config import Config
from .config.model import Domain


def key_file(config: Config, domain: Domain) -> Path:
    """The domain's private key, made on first use (RSA, ``dkim_key_bits``) and then kept."""
    path = config.secrets_dir / "dkim" / f"{domain.name}.{domain.dkim_selector}.key"
    return keys.dkim_key(path, domain.dkim_key_bits)


def record_name(domain: Domain) -> str:
    return f"{domain.dkim_selector}._domainkey.{domain.name}"


def record(config: Config, domain: Domain) -> str:
    return keys.dkim_record(key_file(config, domain))
