"""Value types of the configuration: each validates and normalises one kind of input.

A validator raises ``ValueError`` with a sentence a user can act on; it never echoes the
value back, because some values (password hashes) are secrets.
"""

import re
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator


class TypeName(str):
    """Marks an ``Annotated`` type with the name the configuration reference shows."""


_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"^(?:{_LABEL}\.)+[a-z]{{2,63}}$")
_LOCAL_PART = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_SIZE = re.compile(r"^\s*(\d+)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_HASH_PREFIXES = ("$6$", "$5$", "$2y$", "$2b$", "$y$", "$argon2id$", "$argon2i$")
_SCHEMES = ("SHA512-CRYPT", "SHA256-CRYPT", "BLF-CRYPT", "ARGON2ID", "ARGON2I", "CRYPT")


def _domain(value: str) -> str:
    value = value.lower().rstrip(".")
    if not _DOMAIN.match(value) or len(value) > 253:
        raise ValueError("not a valid domain name (expected something like example.com)")
    return value


def _email(value: str) -> str:
    local, at, domain = value.rpartition("@")
    if not at or not _LOCAL_PART.match(local.lower()) or len(local) > 64:
        raise ValueError("not a valid e-mail address (expected user@example.com)")
    return f"{local.lower()}@{_domain(domain)}"


def _alias_source(value: str) -> str:
    if value.startswith("@"):
        return "@" + _domain(value[1:])
    return _email(value)


def _size(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError("not a size: use a number of bytes or a number with a unit K, M, G or T, for example 2G")
    if isinstance(value, int) and value >= 0:
        return value
    match = _SIZE.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError("not a size: use a number of bytes or a number with a unit K, M, G or T, for example 2G")
    return int(match[1]) * _UNITS[match[2].upper()]


def _password_hash(value: str) -> str:
    scheme, _, rest = value[1:].partition("}") if value.startswith("{") else ("", "", value)
    if scheme and scheme.upper() not in _SCHEMES:
        raise ValueError(f"unsupported hash scheme; use one of {', '.join(_SCHEMES)}")
    if not rest.startswith(_HASH_PREFIXES) or len(rest) < 20 or any(c.isspace() for c in rest):
        raise ValueError(
            "looks like a plain-text password, not a hash; store a hash such as "
            "{SHA512-CRYPT}$6$... (`mailstack user add` writes one)"
        )
    return value


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("not a known time zone (expected something like UTC or Europe/Berlin)") from None
    return value


def _dns_name(value: str) -> str:
    value = value.lower().rstrip(".")
    if not all(re.fullmatch(_LABEL, label) for label in value.split(".")):
        raise ValueError("not a valid DNS name: dot-separated labels of letters, digits and dashes")
    return value


def _host_name(value: str) -> str:
    if not re.fullmatch(_LABEL, value):
        raise ValueError("not a valid host name: use lower-case letters, digits and dashes")
    return value


def _absolute_path(value: str) -> str:
    if not value.startswith("/") or "\0" in value:
        raise ValueError("must be an absolute path")
    return value


def _device(value: str) -> str:
    if not re.fullmatch(r"/dev/[A-Za-z0-9/_.:-]+", value):
        raise ValueError("not a block device path (expected something like /dev/vdb or /dev/disk/by-id/...)")
    return value


def _http_url(value: str) -> str:
    if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:\d+)?(/\S*)?", value):
        raise ValueError("not an http:// or https:// URL")
    return value


def _https_url(value: str) -> str:
    if not value.startswith("https://"):
        raise ValueError("must be an https:// URL")
    return _http_url(value)


def _str_only(value: object) -> object:
    """Refuse numbers and booleans where text is expected, instead of coercing them."""
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


def text_type(name: str, check) -> type:
    return Annotated[str, BeforeValidator(_str_only), AfterValidator(check), TypeName(name)]


DomainName = text_type("domain name", _domain)
EmailAddress = text_type("e-mail address", _email)
AliasSource = text_type("e-mail address or @domain", _alias_source)
PasswordHash = text_type("password hash", _password_hash)
TimeZone = text_type("time zone", _timezone)
DnsName = text_type("DNS name", _dns_name)
HostName = text_type("host name", _host_name)
AbsolutePath = text_type("absolute path", _absolute_path)
DevicePath = text_type("block device", _device)
HttpUrl = text_type("URL", _http_url)
HttpsUrl = text_type("https URL", _https_url)
Size = Annotated[int, BeforeValidator(_size), TypeName("size")]


def format_size(size: int) -> str:
    """The shortest exact form of a size in bytes, for configuration files: 2147483648 -> 2G."""
    for unit in "TGMK":
        if size and size % _UNITS[unit] == 0:
            return f"{size // _UNITS[unit]}{unit}"
    return str(size)
