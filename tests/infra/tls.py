"""What the TLS checks of several groups share."""

# ChaCha20 first: a server that enforces its own order (Mozilla's, AES-GCM first) picks AES-GCM for TLS 1.2.
CLIENT_ORDER = ("ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
                "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256")


def negotiated_cipher(host, address: str, port: int, starttls: str | None = None) -> str:
    """The TLS 1.2 cipher a client offering ``CLIENT_ORDER`` gets from ``address:port``."""
    option = f"-starttls {starttls}" if starttls else ""
    return host.check_output(
        f"openssl s_client -connect {address}:{port} {option} -tls1_2 -cipher {CLIENT_ORDER} </dev/null 2>/dev/null"
        " | sed -n 's/^ *Cipher *: *//p'"
    )
