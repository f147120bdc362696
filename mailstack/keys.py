"""Keys and certificates mailstack makes itself, with ``cryptography``.

Every function creates its files once and never replaces them: a key that exists is
kept, because DNS records (DKIM, TLSA) and trust (a CA) depend on it. Private keys are
written 0600 and never printed.
"""

import base64
import datetime
import ipaddress
import os
import secrets
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PRIVATE = 0o600


def write_private(path: Path, data: bytes) -> None:
    """Write a secret so that it is never readable by others, not even for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)


def ssh_keypair(path: Path) -> Path:
    """An ed25519 SSH key at ``path`` (and ``path.pub``)."""
    if not path.exists():
        key = ed25519.Ed25519PrivateKey.generate()
        write_private(path, key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        ))
        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        path.with_suffix(".pub").write_bytes(public + b" mailstack\n")
    return path


def tsig_secret(path: Path) -> Path:
    """A base64 HMAC-SHA256 TSIG secret."""
    if not path.exists():
        write_private(path, base64.b64encode(secrets.token_bytes(32)) + b"\n")
    return path


def zone_signing_key(folder: Path, zone: str) -> list[Path]:
    """BIND's files (``.key``, ``.private``, ``.state``) of one combined signing key for ``zone``,
    made by BIND's own ``dnssec-keygen`` for its ``default`` dnssec-policy, which BIND then
    adopts instead of making a key of its own."""
    if not list(folder.glob(f"K{zone}.+*.key")):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        subprocess.run(
            ["dnssec-keygen", "-q", "-K", str(folder), "-k", "default", zone], check=True, capture_output=True
        )
    return sorted(folder.glob(f"K{zone}.+*"))


def random_secret(path: Path, length: int = 32) -> str:
    """A random shared password of ``length`` letters and digits, made once and kept."""
    if not path.exists():
        write_private(path, secrets.token_urlsafe(length)[:length].encode() + b"\n")
    return path.read_text().strip()


def _private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    if path.exists():
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    write_private(path, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    return key


def _builder(subject: str, issuer: x509.Name | None, public_key, days: int) -> x509.CertificateBuilder:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=days))
    )


def certificate_authority(cert_path: Path, key_path: Path, name: str) -> Path:
    """A self-signed CA (``cert_path``, ``key_path``), valid ten years."""
    if not cert_path.exists():
        key = _private_key(key_path)
        certificate = (
            _builder(name, None, key.public_key(), 3650)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path


def server_certificate(cert_path: Path, key_path: Path, ca: tuple[Path, Path], names: list[str]) -> Path:
    """A TLS server certificate for ``names`` (DNS names or IP addresses) from the CA ``ca``."""
    return issued_certificate(cert_path, key_path, ca, names[0], "server",
                              x509.SubjectAlternativeName([_general_name(name) for name in names]))


USAGES = {"server": ExtendedKeyUsageOID.SERVER_AUTH, "client": ExtendedKeyUsageOID.CLIENT_AUTH}


def issued_certificate(cert_path: Path, key_path: Path, ca: tuple[Path, Path], name: str, usage: str,
                       *extensions: x509.ExtensionType, days: int = 825) -> Path:
    """A TLS certificate named ``name`` from the CA ``ca``, for a ``server`` or a ``client``."""
    if not cert_path.exists():
        ca_cert = x509.load_pem_x509_certificate(ca[0].read_bytes())
        ca_key = serialization.load_pem_private_key(ca[1].read_bytes(), password=None)
        key = _private_key(key_path)
        builder = _builder(name, ca_cert.subject, key.public_key(), days)
        for extension in extensions:
            builder = builder.add_extension(extension, critical=False)
        certificate = (
            builder.add_extension(x509.ExtendedKeyUsage([USAGES[usage]]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def dkim_key(path: Path, bits: int) -> Path:
    """An RSA DKIM signing key; an existing key is never replaced (its DNS record depends on it)."""
    if not path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        write_private(path, key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ))
    return path


def dkim_record(path: Path) -> str:
    """The DKIM TXT record value for the key at ``path``: ``v=DKIM1; k=rsa; p=...``."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}"
