"""What a mailbox holds, message by message, as Dovecot itself reads it on an mx host: the
SHA-256 of each message's bytes with its folder and flags. Two mailboxes (or a mailbox and
a restored copy) hold the same mail when these agree."""

import hashlib
import json
import shlex
from collections import Counter
from typing import NamedTuple

from . import ssh
from .config import Config

EPHEMERAL_FLAGS = {"\\Recent"}
"""Flags that belong to a session, not to the message."""
SPECIAL_FOLDERS = {"Drafts": "\\Drafts", "Junk": "\\Junk", "Sent": "\\Sent", "Trash": "\\Trash"}
"""The cluster's special-use folders (RFC 6154), which every user has, subscribed."""
SPECIAL_USES = {use: name for name, use in SPECIAL_FOLDERS.items()}


class Message(NamedTuple):
    folder: str
    flags: str
    sha256: str


class MailboxError(Exception):
    pass


def _reading(config: Config, host: str, location: str) -> str:
    """doveadm's options that read ``location`` (``driver:path``) as the user's mail. Dovecot 2.4
    (Debian 13) split 2.3's ``mail_location`` into ``mail_driver`` and ``mail_path``, and given
    the old name it reads the user's own mailbox without a word."""
    if config.release_of(host) == "bookworm":
        return f"-o mail_location={shlex.quote(location)} "
    driver, _, path = location.partition(":")
    return f"-o mail_driver={shlex.quote(driver)} -o mail_path={shlex.quote(path)} "


def fetch(config: Config, host: str, user: str, fields: str, query: str = "all",
          location: str | None = None) -> list[dict]:
    """``doveadm fetch`` of ``fields`` for each message of ``user`` on ``host`` that the search
    ``query`` finds; ``location`` reads another mail store (a restored copy) as the user's."""
    override = _reading(config, host, location) if location else ""
    command = f"doveadm -f json {override}fetch -u {shlex.quote(user)} {shlex.quote(fields)} {query}"
    result = ssh.run(config, host, command, timeout=600)
    if result.returncode != 0:
        raise MailboxError(f"{host}: doveadm fetch for {user} failed: {result.stderr.decode().strip()[-300:]}")
    return json.loads(result.stdout or b"[]")


def _flags(fetched: dict) -> str:
    return " ".join(sorted(set(fetched["flags"].split()) - EPHEMERAL_FLAGS))


def messages(config: Config, host: str, user: str, query: str = "all",
             location: str | None = None) -> list[tuple[Message, int]]:
    """Each message ``query`` finds, as ``Message`` (its bytes hashed) with its UID."""
    return [
        (Message(fetched["mailbox"], _flags(fetched),
                 hashlib.sha256(fetched["text"].encode("utf-8", "surrogateescape")).hexdigest()), int(fetched["uid"]))
        for fetched in fetch(config, host, user, "mailbox uid flags text", query, location)
    ]


def index(config: Config, host: str, users: list[str]) -> dict[str, Counter]:
    """Each message of each of ``users`` as Dovecot's index knows it (folder, GUID, flags),
    without reading the messages: enough to tell two copies of the same store apart cheaply."""
    fetched = for_each_user(config, host, users, "fetch -u {user} 'mailbox guid flags' all")
    return {user: Counter((found["mailbox"], found["guid"], _flags(found)) for found in fetched[user])
            for user in users}


STATE = "guid uidvalidity uidnext highestmodseq"
"""What ``states`` reads of each folder: two copies of a mailbox replicate only when their
folders' GUIDs and UIDVALIDITY agree."""


def states(config: Config, host: str, users: list[str]) -> dict[str, list[dict]]:
    """Each folder of each of ``users`` on ``host`` that exists on disk (not a parent that holds
    only folders) with its name (``mailbox``) and ``STATE`` as ``doveadm mailbox status`` reads
    them, as strings."""
    return for_each_user(config, host, users, f"mailbox status -u {{user}} '{STATE}' '*'")


END_OF_USER = "\x1e"


def for_each_user(config: Config, host: str, users: list[str], command: str) -> dict[str, list[dict]]:
    """What ``doveadm -f json <command>`` (``{user}`` in it) says for each of ``users`` on
    ``host``, in one SSH session: thousands of users take one round trip, not thousands.
    doveadm prints nothing when it finds nothing, so each answer ends with a separator."""
    script = "".join(
        f"found=$(doveadm -f json {command.format(user=shlex.quote(user))})\n"
        f"printf '%s\\n{END_OF_USER}\\n' \"${{found:-[]}}\"\n"
        for user in users
    )
    result = ssh.run(config, host, "sh -es", input=script.encode(), timeout=600)
    answers = result.stdout.decode().split(END_OF_USER)[:-1]
    if result.returncode != 0 or len(answers) != len(users):
        failed = users[len(answers)] if len(answers) < len(users) else "a user"
        raise MailboxError(f"{host}: doveadm {command.split()[0]} for {failed} failed:"
                           f" {result.stderr.decode().strip()[-300:]}")
    return {user: json.loads(answer) for user, answer in zip(users, answers)}


def digests(config: Config, host: str, user: str, query: str = "all", location: str | None = None) -> Counter:
    """The messages ``messages`` finds, counted."""
    return Counter(message for message, _ in messages(config, host, user, query, location))


def search(folder: str) -> str:
    """The doveadm search query for ``folder`` and the folders below it."""
    return f"'(' mailbox {shlex.quote(folder)} OR mailbox {shlex.quote(folder + '/*')} ')'"
