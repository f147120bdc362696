"""What the TLS checks of several groups share."""

# AES-256 first: a server that enforces its own order (Mozilla's, AES-128-GCM first) picks
# AES-128-GCM for TLS 1.2. (Not ChaCha20 first: HAProxy lets a client that puts ChaCha20
# first have it, as OpenSSL's PRIORITIZE_CHACHA intends for devices without AES hardware.)
CLIENT_ORDER = ("ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256")


def negotiated_cipher(host, address: str, port: int, starttls: str | None = None) -> str:
    """The TLS 1.2 cipher a client offering ``CLIENT_ORDER`` gets from ``address:port``."""
    option = f"-starttls {starttls}" if starttls else ""
    return host.check_output(
        f"openssl s_client -connect {address}:{port} {option} -tls1_2 -cipher {CLIENT_ORDER} </dev/null 2>/dev/null"
        " | sed -n 's/^ *Cipher *: *//p'"
    )
