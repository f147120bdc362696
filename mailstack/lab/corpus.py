"""The mail of the lab's old server (Cyrus on the ``legacy`` host): generated, the same at every
load, and made of what real mailboxes hold and migrations get wrong. Nested folders with
non-ASCII names, special-use folders under the old server's own names (``Sent Items``),
subscriptions, every system flag and keywords, INTERNALDATEs over a decade, plain, multipart
and malformed MIME, 8-bit headers, a message over 25 MB, the same message in two folders and
twice in one folder; and one user whose mail does not fit their quota on the cluster.

``load`` deletes the users' mailboxes on the old server and makes them anew.
"""

import base64
import imaplib
import random
import shlex
from collections.abc import Iterator
from dataclasses import dataclass

from .. import migration, ssh
from ..config import Config

YEARS = range(2015, 2027)
FLAGS = ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")
KEYWORDS = ("$Forwarded", "$Junk", "$MailstackMoved")
SPECIAL = {"Sent Items": "\\Sent", "Deleted Items": "\\Trash", "Drafts": "\\Drafts", "Junk E-mail": "\\Junk"}
FOLDERS = ("INBOX", "Sent Items", "Deleted Items", "Deleted Items/2020", "Drafts", "Junk E-mail", "Archive",
           "Archive/2019", "Archive/2019/Q4", "Projekte/Übersicht", "Ελληνικά", "Kunden & Partner")
UNSUBSCRIBED = ("Archive/2019/Q4", "Junk E-mail")
BIG = 26 * 1024 * 1024
LIGHT_MESSAGES = 40
OVER_QUOTA_BYTES = 1_600_000


@dataclass(frozen=True)
class Mail:
    folder: str
    flags: tuple[str, ...]
    date: int
    raw: bytes


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


def header(user: str, number: int, subject: str, date: int, extra: str = "") -> str:
    return (f"From: Sender {number} <sender{number}@old.example.net>\nTo: {user}\n"
            f"Subject: {subject}\nDate: {_rfc822(date)}\nMessage-ID: <{number}.{user}@old.example.net>\n{extra}")


def _rfc822(stamp: int) -> str:
    return imaplib.Time2Internaldate(stamp).strip('"').replace("-", " ", 2)


def _bodies(user: str, number: int, date: int, rng: random.Random) -> bytes:
    """One of the message shapes, chosen by ``number``."""
    words = " ".join(rng.choice(("mail", "cluster", "server", "quarterly", "report", "invoice", "meeting"))
                     for _ in range(rng.randint(20, 300)))
    shape = number % 4
    if shape == 0:  # plain text
        return crlf(header(user, number, f"Plain note {number}", date) + f"\n{words}\n")
    if shape == 1:  # multipart/alternative
        return crlf(header(user, number, f"Newsletter {number}", date,
                             'MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary="alt-b"\n')
                     + f"\n--alt-b\nContent-Type: text/plain\n\n{words}\n--alt-b\nContent-Type: text/html\n\n"
                       f"<p>{words}</p>\n--alt-b--\n")
    if shape == 2:  # multipart/mixed with a binary attachment
        attachment = base64.encodebytes(rng.randbytes(rng.randint(2000, 60000))).decode()
        return crlf(header(user, number, f"Invoice {number}", date,
                             'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="mix-b"\n')
                     + f"\n--mix-b\nContent-Type: text/plain\n\n{words}\n--mix-b\n"
                       f'Content-Type: application/pdf; name="invoice-{number}.pdf"\n'
                       f"Content-Transfer-Encoding: base64\n\n{attachment}--mix-b--\n")
    # malformed MIME: a boundary that never closes, and 8-bit (Latin-1) bytes in a header
    head = crlf(header(user, number, f"Gr\xfc\xdfe {number}", date,
                         'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="never-closed"\n'))
    subject = f"Subject: Gr\xfc\xdfe {number}".encode()
    return head.replace(subject, subject.decode().encode("latin-1")) + crlf(f"\n--never-closed\n\n{words}\n")


def mails(user: str, heavy: bool) -> Iterator[Mail]:
    """The user's mail, the same on every call: ``heavy`` users get every folder and oddity."""
    rng = random.Random(user)
    folders = FOLDERS if heavy else ("INBOX", "Sent Items", "Archive")
    count = 120 if heavy else LIGHT_MESSAGES
    for number in range(count):
        date = int(rng.uniform(1420070400, 1796083200))  # 2015 .. 2026
        flags = tuple(sorted(rng.sample(FLAGS + KEYWORDS, rng.randint(0, 3))))
        mail = Mail(folders[number % len(folders)], flags, date, _bodies(user, number, date, rng))
        yield mail
        if heavy and number == 7:  # the same message in another folder, and twice in one
            yield Mail("Archive", mail.flags, mail.date, mail.raw)
            yield Mail(mail.folder, mail.flags, mail.date, mail.raw)
    if heavy:
        big = base64.encodebytes(rng.randbytes(BIG * 3 // 4)).decode()
        yield Mail("Archive/2019", ("\\Seen",), 1568000000, crlf(
            header(user, 9999, "The whole archive", 1568000000,
                    'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="big-b"\n')
            + f"\n--big-b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n{big}"
              "--big-b--\n"))


def over_quota(user: str) -> Iterator[Mail]:
    """More mail than the user's 1 MB quota on the cluster."""
    rng = random.Random(user)
    for number in range(4):
        body = base64.encodebytes(rng.randbytes(OVER_QUOTA_BYTES // 4)).decode()
        yield Mail("INBOX", ("\\Seen",), 1500000000 + number, crlf(header(user, number, "Scans", 1500000000)
                                                                      + f"\n{body}"))


def _admin(config: Config) -> imaplib.IMAP4_SSL:
    return migration.source_session(config, "", migration.credentials(config), as_admin=True)


def quoted(name: str) -> str:
    return migration.quoted(migration.modified_utf7(name))


def reset_user(config: Config, user: str, password: str) -> None:
    """Delete ``user`` on the old server with their mail, and make them anew with ``password``."""
    admin = _admin(config)
    try:
        mailbox = quoted(f"user/{user}")
        admin.setacl(mailbox, migration.credentials(config).master_user, "lrswipkxtecdan")
        admin.delete(mailbox)
        typ, data = admin.create(mailbox)
        if typ != "OK":
            raise RuntimeError(f"the old server did not create {user}: {data}")
    finally:
        admin.logout()
    set_password(config, user, password)


def set_password(config: Config, user: str, password: str) -> None:
    """``user``'s password on the old server (Cyrus's sasldb), given on stdin."""
    legacy = config.hosts_in("legacy")[0]
    result = ssh.run(config, legacy, f"saslpasswd2 -p -c {shlex.quote(user)}", input=password.encode(), timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"saslpasswd2 for {user} failed: {result.stderr.decode()}")


def append(imap: imaplib.IMAP4_SSL, mail: Mail) -> None:
    typ, data = imap.append(quoted(mail.folder), f"({' '.join(mail.flags)})",
                            imaplib.Time2Internaldate(mail.date), mail.raw)
    if typ != "OK":
        raise RuntimeError(f"APPEND to {mail.folder} failed: {data}")


def fill(config: Config, user: str, messages: list[Mail]) -> None:
    """Make the user's folders (special-use ones marked) and append ``messages``."""
    imap = migration.source_session(config, user, migration.credentials(config))
    try:
        for folder in dict.fromkeys(mail.folder for mail in messages):
            if folder != "INBOX":
                use = f" (USE ({SPECIAL[folder]}))" if folder in SPECIAL else ""
                typ, data = imap._simple_command("CREATE", quoted(folder) + use)
                if typ != "OK":
                    raise RuntimeError(f"CREATE {folder} failed: {data}")
            if folder not in UNSUBSCRIBED:
                imap.subscribe(quoted(folder))
        for mail in messages:
            append(imap, mail)
    finally:
        imap.logout()


def load(config: Config, heavy: list[str], light: list[str], over: list[str]) -> dict[str, int]:
    """The corpus for the ``heavy`` users, the ``light`` ones and those ``over`` quota; returns
    how many messages each got."""
    loaded = {}
    for user in [*heavy, *light, *over]:
        reset_user(config, user, config.lab.passwords[user])
        messages = list(over_quota(user)) if user in over else list(mails(user, user in heavy))
        fill(config, user, messages)
        loaded[user] = len(messages)
    return loaded
