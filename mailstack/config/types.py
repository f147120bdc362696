"""Value types of the configuration: each validates and normalises one kind of input.

A validator raises ``ValueError`` with a sentence a user can act on; it never echoes the
value back, because some values (password hashes) are secrets.
"""

import ipaddress
import posixpath
import re
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, IPvAnyAddress, IPvAnyInterface, IPvAnyNetwork


class TypeName(str):
    """Marks an ``Annotated`` type with the name the configuration reference shows, and what
    a value of it may be (``accepts``), which the reference lists under "Value types"."""

    def __new__(cls, name: str, accepts: str = ""):
        marked = super().__new__(cls, name)
        marked.accepts = accepts
        return marked


CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
"""Characters no value may hold: a line break would start a new line (or field) in the file
the value lands in."""


_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"^(?:{_LABEL}\.)+[a-z]{{2,63}}$")
_LOCAL_PART = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_SIZE = re.compile(r"^\s*(\d+)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_B64 = "[./0-9A-Za-z]"
_HASHES = {  # each crypt format Dovecot reads, by the scheme that names it
    "SHA512-CRYPT": rf"\$6\$(rounds=\d{{1,9}}\$)?{_B64}{{1,16}}\${_B64}{{86}}",
    "SHA256-CRYPT": rf"\$5\$(rounds=\d{{1,9}}\$)?{_B64}{{1,16}}\${_B64}{{43}}",
    "BLF-CRYPT": rf"\$2[yb]\$\d\d\${_B64}{{53}}",
    "ARGON2ID": r"\$argon2id\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+",
    "ARGON2I": r"\$argon2i\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+",
}
_HASHES["CRYPT"] = "|".join([_HASHES["SHA512-CRYPT"], _HASHES["SHA256-CRYPT"], _HASHES["BLF-CRYPT"],
                             rf"\$y\${_B64}+\${_B64}*\${_B64}{{43}}"])
_HASH_PREFIXES = ("$6$", "$5$", "$2y$", "$2b$", "$y$", "$argon2id$", "$argon2i$")
_SCHEMES = tuple(_HASHES)


def _ascii(value: str) -> str:
    """Names are written in ASCII: a compatibility form (the Kelvin sign) would fold into another
    name; an internationalised domain is written as its A-label, which the error gives."""
    if not value.isascii():
        try:
            label = value.encode("idna").decode()
        except UnicodeError:
            label = ""
        if "xn--" not in label:  # no real IDN: a character that folds into a letter, such as the Kelvin sign
            raise ValueError("holds a character that is not ASCII; names here are written in ASCII")
        raise ValueError(f"not ASCII; write an internationalised name as its A-label: {label}")
    return value


def _domain(value: str) -> str:
    value = _ascii(value).lower().rstrip(".")
    if not _DOMAIN.match(value) or len(value) > 253:
        raise ValueError("not a valid domain name (expected something like example.com)")
    return value


def _email(value: str) -> str:
    local, at, domain = _ascii(value).rpartition("@")
    if not at or not _LOCAL_PART.match(local.lower()) or len(local) > 64:
        raise ValueError("not a valid e-mail address (expected user@example.com)")
    return f"{local.lower()}@{_domain(domain)}"


def _server(value: str) -> str:
    """A server by name or by address (an address stays as written)."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return _domain(value)


def _alias_source(value: str) -> str:
    if value.startswith("@"):
        return "@" + _domain(value[1:])
    return _email(value)


MAX_SIZE = 2**63 - 1  # what Postfix and Dovecot store a size in


def _size(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError("not a size: use a number of bytes or a number with a unit K, M, G or T, for example 2G")
    match = _SIZE.match(value) if isinstance(value, str) else None
    if isinstance(value, int) and value >= 0:
        size = value
    elif match:
        size = int(match[1]) * _UNITS[match[2].upper()]
    else:
        raise ValueError("not a size: use a number of bytes or a number with a unit K, M, G or T, for example 2G")
    if size > MAX_SIZE:
        raise ValueError("too large: no size here may exceed 8E (2^63 - 1 bytes)")
    return size


def _password_hash(value: str) -> str:
    scheme, _, rest = value[1:].partition("}") if value.startswith("{") else ("", "", value)
    if scheme and scheme.upper() not in _SCHEMES:
        raise ValueError(f"unsupported hash scheme; use one of {', '.join(_SCHEMES)}")
    if not rest.startswith(_HASH_PREFIXES) or len(rest) < 20 or any(c.isspace() for c in rest):
        raise ValueError(
            "looks like a plain-text password, not a hash; store a hash such as "
            "{SHA512-CRYPT}$6$... (`mailstack user add` writes one)"
        )
    # The hash is a field of Dovecot's passwd-file: only its own alphabet, so no ':' can add fields.
    if not re.fullmatch(_HASHES[scheme.upper() or "CRYPT"], rest):
        named = next((name for name, form in _HASHES.items() if name != "CRYPT" and re.fullmatch(form, rest)), None)
        if named:
            raise ValueError(f"the {{{scheme}}} prefix does not match the hash, which is {named}")
        raise ValueError("not a well-formed hash of its scheme (salt and digest of the crypt alphabet)")
    return value


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("not a known time zone (expected something like UTC or Europe/Berlin)") from None
    return value


def _dns_name(value: str) -> str:
    value = _ascii(value).lower().rstrip(".")
    if not all(re.fullmatch(_LABEL, label) for label in value.split(".")):
        raise ValueError("not a valid DNS name: dot-separated labels of letters, digits and dashes")
    return value


def _host_name(value: str) -> str:
    if not re.fullmatch(_LABEL, value):
        raise ValueError("not a valid host name: use lower-case letters, digits and dashes")
    return value


def _mount_point(value: str) -> str:
    if not re.fullmatch(r"(/[A-Za-z0-9._@+-]+)+", value) or posixpath.normpath(value) != value:
        raise ValueError("not a mount point: an absolute, normalised path below / of letters, digits and . _ @ + -")
    return value


def _fstab_option(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+(=[A-Za-z0-9_.:/@+-]+)?", value):
        raise ValueError("not a mount option: a name, or name=value, of letters, digits and . _ - (no commas)")
    return value


def _zfs_name(value: str) -> str:
    components = value.split("/")
    if not all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,254}", part) for part in components):
        raise ValueError("not a ZFS dataset name: components of letters, digits and _ . : - separated by /")
    return value


def _zfs_property(value: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_]*|[a-z0-9_.-]*:[a-z0-9_.:-]+", value):
        raise ValueError("not a ZFS property: a native name (compression) or module:name in lower case")
    return value


def _postfix_parameter(value: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", value):
        raise ValueError("not a Postfix parameter name: lower-case letters, digits and _")
    return value


def _user_name(value: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", value):
        raise ValueError("not a user name: lower-case letters, digits, _ and -, starting with a letter or _")
    return value


def _line(value: str) -> str:
    if CONTROL.search(value):
        raise ValueError("must be one line of text without control characters")
    return value


POSTFIX_REFERENCE = re.compile(r"\$(\$|\w+|\{\w+[}?:]|\(\w+[)?:])", re.ASCII)


def _postfix_value(value: str) -> str:
    """One line in which every ``$`` starts a parameter reference, as Postfix reads it."""
    _line(value)
    if "$" in POSTFIX_REFERENCE.sub("", value):
        raise ValueError("a $ that starts no Postfix parameter reference ($name, ${name}, $(name)); write $$ for a $")
    return value


def _file(value: str) -> str:
    if not value.strip() or CONTROL.search(value) or '"' in value:
        raise ValueError('not a file path: give a path, relative to this file, on one line and without "')
    return value


def _device(value: str) -> str:
    if not re.fullmatch(r"/dev/[A-Za-z0-9/_.:-]+", value):
        raise ValueError("not a block device path (expected something like /dev/vdb or /dev/disk/by-id/...)")
    return value


def _http_url(value: str) -> str:
    match = re.fullmatch(r"https?://(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:(?P<port>\d{1,5}))?(/\S*)?", value)
    if not match:
        raise ValueError("not an http:// or https:// URL")
    if match["port"] and not 1 <= int(match["port"]) <= 65535:
        raise ValueError("the URL's port must be 1 to 65535")
    host = match["host"].strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not re.fullmatch(rf"({_LABEL}\.)*{_LABEL}", host.lower()):
            raise ValueError("the URL's host is neither a host name nor an IP address") from None
    return value


def _https_url(value: str) -> str:
    if not value.startswith("https://"):
        raise ValueError("must be an https:// URL")
    return _http_url(value)


def _imaps_url(value: str) -> str:
    match = re.fullmatch(r"imaps://([^/:]+)(:(\d{1,5}))?/?", value)
    if not match:
        raise ValueError("not an imaps:// URL (imaps://host or imaps://host:port, nothing after)")
    _server(match[1])
    if match[3] and not 1 <= int(match[3]) <= 65535:
        raise ValueError("the URL's port must be 1 to 65535")
    return value


def _str_only(value: object) -> object:
    """Refuse numbers and booleans where text is expected, instead of coercing them."""
    if not isinstance(value, str):
        raise ValueError("must be text, not a number or a boolean (quote it if it looks like one)")
    return value


def text_type(name: str, check, accepts: str) -> type:
    return Annotated[str, BeforeValidator(_str_only), AfterValidator(check), TypeName(name, accepts)]


DomainName = text_type("domain name", _domain, "labels of letters, digits and dashes, ending in a top-level domain")
EmailAddress = text_type("e-mail address", _email, "local@domain, the local part in the characters of RFC 5322")
ServerName = text_type("server", _server, "a domain name or an IP address")
AliasSource = text_type("e-mail address or @domain", _alias_source, "an e-mail address, or @domain for a catch-all")
PasswordHash = text_type(
    "password hash", _password_hash,
    "a crypt hash ($6$, $5$, $2y$, $y$, $argon2id$) in its own alphabet, optionally after a matching"
    " {SCHEME} (SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, ARGON2ID, ARGON2I, CRYPT)",
)
TimeZone = text_type("time zone", _timezone, "a name of the tz database, such as UTC or Europe/Berlin")
DnsName = text_type("DNS name", _dns_name, "dot-separated labels of letters, digits and dashes")
HostName = text_type("host name", _host_name, "one label: lower-case letters, digits and dashes, at most 63")
MountPoint = text_type(
    "mount point", _mount_point, "an absolute, normalised path below / of letters, digits and . _ @ + -"
)
FstabOption = text_type(
    "mount option", _fstab_option, "name or name=value of letters, digits and . _ - (the value also : / @ +)"
)
ZfsName = text_type("ZFS name", _zfs_name, "components of letters, digits and _ . : - separated by /")
ZfsProperty = text_type("ZFS property", _zfs_property, "a native property name, or module:name, in lower case")
PostfixParameter = text_type("Postfix parameter", _postfix_parameter, "a main.cf parameter name: a-z, 0-9 and _")
UserName = text_type("user name", _user_name, "a POSIX user name: lower-case letters, digits, _ and -, at most 32")
ImapsUrl = text_type("IMAPS URL", _imaps_url, "imaps://host or imaps://host:port")
Line = text_type("text", _line, "one line of text, without control characters")
PostfixValue = text_type(
    "Postfix value", _postfix_value, "one line in which each $ starts a parameter reference ($name, ${name}, $(name))"
)
FilePath = text_type("file", _file, 'a path, relative to the YAML file, on one line and without "')
DevicePath = text_type("block device", _device, "/dev/ followed by letters, digits and / _ . : -")
HttpUrl = text_type("URL", _http_url, "http:// or https://, a host name or address, an optional port and path")
HttpsUrl = text_type("https URL", _https_url, "an http URL that starts with https://")
Size = Annotated[int, BeforeValidator(_size), TypeName("size", "a number of bytes, or a number with K, M, G or T")]
def _unicast(address):
    if address.is_unspecified or address.is_multicast or address.is_loopback or address.is_reserved:
        raise ValueError("not a unicast address a host can hold (unspecified, multicast, loopback or reserved)")
    if address.is_link_local:
        raise ValueError("a link-local address; give an address of the hosts' network")
    return address


# Written as text in the usual notation: an integer (3232235777) is no address here.
IpAddress = Annotated[
    IPvAnyAddress, BeforeValidator(_str_only), TypeName("IP address", "an IPv4 or IPv6 address as text")
]
HostAddress = Annotated[
    IPvAnyAddress, BeforeValidator(_str_only), AfterValidator(_unicast),
    TypeName("host address", "a unicast IPv4 or IPv6 address as text (not loopback, multicast or link-local)"),
]
IpInterface = Annotated[
    IPvAnyInterface, BeforeValidator(_str_only), TypeName("address/prefix", "an IP address with its prefix length")
]
IpNetwork = Annotated[
    IPvAnyNetwork, BeforeValidator(_str_only), TypeName("CIDR network", "a network such as 10.0.0.0/8")
]


def format_size(size: int) -> str:
    """The shortest exact form of a size in bytes, for configuration files: 2147483648 -> 2G."""
    for unit in "TGMK":
        if size and size % _UNITS[unit] == 0:
            return f"{size // _UNITS[unit]}{unit}"
    return str(size)
