"""The limits that follow from ``mail.imap_sessions``, the open IMAP sessions the cluster is
sized for: HAProxy's on the lb hosts, Dovecot's and the kernel's on the active mx host, which
holds them all. ``bench/imap_sessions.py`` measures what a session costs (docs/capacity.md).
"""

import math

from .config import Config

LOGIN_CLIENTS = 4096
"""TLS sessions one imap-login process ends (Dovecot's high-performance mode): about 100 KiB
and two descriptors each."""
AWAKE = 4096
"""IMAP sessions with a process of their own at once: those at work, and those in the 30 s
after logging in or waking before Dovecot hibernates them. Logins beyond it are refused."""
OTHER_CONNECTIONS = 1000
"""What HAProxy holds besides IMAP sessions: SMTP, submission, ManageSieve, MTA-STS."""
OTHER_CLIENTS = 1024
"""Clients of Dovecot's auth and stats services besides the awake IMAP sessions."""
WATCHES_PER_SESSION = 4
"""inotify watches per IMAP session to allow (two measured: the folder's new/ and cur/)."""
KERNEL_WATCHES = 1_048_576
"""Linux's largest default of fs.inotify.max_user_watches (it scales it with memory)."""


def sessions(config: Config) -> int:
    return config.mail.imap_sessions


def haproxy_connections(config: Config) -> int:
    return sessions(config) + OTHER_CONNECTIONS


def login_processes(config: Config) -> int:
    return math.ceil(sessions(config) / LOGIN_CLIENTS)


def awake(config: Config) -> int:
    return min(sessions(config), AWAKE)


def service_clients(config: Config) -> int:
    """Clients Dovecot's auth and stats services take: each awake session's process is one."""
    return awake(config) + OTHER_CLIENTS


def inotify_instances(config: Config) -> int:
    """Every session, hibernated or not, holds an inotify instance, all under the vmail user."""
    return sessions(config) + service_clients(config)


def inotify_watches(config: Config) -> int:
    """Never below the most the kernel allows by default, which a host with enough memory has."""
    return max(KERNEL_WATCHES, WATCHES_PER_SESSION * inotify_instances(config))


def dovecot(config: Config) -> dict[str, int]:
    """What the mx hosts' templates (Dovecot's, the kernel's) read as ``capacity``."""
    return {"sessions": sessions(config), "login_clients": LOGIN_CLIENTS, "login_processes": login_processes(config),
            "awake": awake(config), "service_clients": service_clients(config),
            "inotify_instances": inotify_instances(config), "inotify_watches": inotify_watches(config)}
