"""Reading many users' mailboxes on an mx host in one SSH session, with a stand-in doveadm."""

import subprocess
from collections import Counter

import pytest

from mailstack import mailboxes
from mailstack.inventory import load_for
from tests.support import LAB_INVENTORY

# Answers as `doveadm -f json fetch -u USER 'mailbox guid flags' all` does: nothing for a user
# without mail, an error for an unknown one; each message's GUID is the user, to tell them apart.
DOVEADM = r"""#!/bin/sh
case "$5" in
  empty@x) ;;
  unknown@x) echo "User doesn't exist" >&2; exit 67 ;;
  *) printf '[{"mailbox":"INBOX","guid":"%s","flags":"\\\\Seen \\\\Recent"}]\n' "$5" ;;
esac
"""


@pytest.fixture
def sessions(monkeypatch, tmp_path):
    """The hosts each SSH session went to; the commands run here, with the stand-in doveadm."""
    (tmp_path / "doveadm").write_text(DOVEADM)
    (tmp_path / "doveadm").chmod(0o755)
    opened = []

    def run(config, host, command, **options):
        opened.append(host)
        return subprocess.run(["sh", "-c", command], capture_output=True, cwd=tmp_path,
                              env={"PATH": f"{tmp_path}:/usr/bin:/bin"}, **options)

    monkeypatch.setattr(mailboxes.ssh, "run", run)
    yield opened
    assert not (tmp_path / "PWNED").exists()


def test_every_user_is_read_in_one_session(sessions):
    odd = "o'brien $(touch PWNED)@x"
    found = mailboxes.index(None, "mx1", ["a@x", "empty@x", odd])
    assert sessions == ["mx1"]
    assert found == {"a@x": Counter({("INBOX", "a@x", "\\Seen"): 1}), "empty@x": Counter(),
                     odd: Counter({("INBOX", odd, "\\Seen"): 1})}


def test_a_user_doveadm_refuses_is_named(sessions):
    with pytest.raises(mailboxes.MailboxError, match="mx1: doveadm fetch for unknown@x failed: User doesn't exist"):
        mailboxes.index(None, "mx1", ["a@x", "unknown@x", "b@x"])


@pytest.mark.parametrize("inventory, reads", [
    ("lab.py", "-o mail_location='maildir:/var/tmp/a b/Maildir' "),
    ("lab-drbd.py", "-o mail_driver=maildir -o mail_path='/var/tmp/a b/Maildir' "),
])
def test_a_restored_copy_is_read_with_the_settings_of_the_hosts_dovecot(monkeypatch, inventory, reads):
    """Dovecot 2.4 reads the user's own mailbox, silently, when given 2.3's mail_location."""
    asked = []
    monkeypatch.setattr(mailboxes.ssh, "run", lambda config, host, command, **options: asked.append(command)
                        or subprocess.CompletedProcess(command, 0, b"[]", b""))
    mailboxes.fetch(load_for(LAB_INVENTORY.with_name(inventory)), "mx1", "bob@x", "uid", "all",
                    "maildir:/var/tmp/a b/Maildir")
    assert asked == [f"doveadm -f json {reads}fetch -u bob@x uid all"]
