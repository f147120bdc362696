"""Migration end to end, from the lab's old server (Cyrus IMAP on legacy1, loaded with the
corpus of ``mailstack.lab.corpus``) with ``mailstack migrate``: the plan counts the corpus and
names the user over quota; a sync then verify finds every message the same (bytes, flags,
INTERNALDATE); a changed source moves only its delta; a sync killed mid-way is finished by
the next without a duplicate; one altered byte on the cluster is named with its user, folder
and message; a cut-over wave moves its user while their mail keeps arriving, and leaves the
others on the old server behind the cluster's virtual IP, their password checked there; a
rollback of that wave takes what the user received and flagged on the cluster back to the old
server; waves 2 and 3 then move everyone, their special folders under the cluster's names.
The tests run in order: each starts from the state the previous one left."""

import copy
import hashlib
import imaplib
import json
import re
import signal
import smtplib
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from mailstack import keys, migration
from mailstack.lab import corpus
from mailstack.lab.mailcheck import message
from tests.lab.clients import imap_greeting, spare_addresses
from tests.lab.faults import wait_for
from tests.support import PROJECT, ssh

pytestmark = pytest.mark.lab

HEAVY = "dave@mailstack.test"
LIGHT = [f"{name}@mailstack.test" for name in ("erin", "frank", "grace", "heidi", "ivan", "judy", "mike", "nina")]
OVER = "oscar@mailstack.test"
MIGRATED = [HEAVY, *LIGHT]
RENAMED = ("Kunden & Partner", "Kunden")


def migrate(lab, *args: str, users=MIGRATED) -> subprocess.CompletedProcess:
    options = [item for user in users for item in ("--user", user)]
    return subprocess.run(
        [sys.executable, "-m", "mailstack.cli", "migrate", *args, *options, "--json", "-i",
         str(lab.config.source.with_suffix(".py"))],
        cwd=PROJECT, capture_output=True, text=True, timeout=900,
    )


def succeeded(result: subprocess.CompletedProcess):
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(result.stdout)


def old_server(lab, user: str) -> imaplib.IMAP4_SSL:
    return migration.source_session(lab.config, user, migration.credentials(lab.config))


def held(lab, user: str) -> int:
    """Messages ``user`` holds on the active mx host."""
    found = migration.stored(lab.config, "mx1", [user])
    return found.get(user, (0, 0))[0]


@pytest.fixture(scope="module")
def loaded(lab):
    """The corpus on the old server, and no mailbox of its users on the cluster yet (a migration
    starts on empty mailboxes: the corpus makes its users anew on the old server, and dsync
    refuses to replace an INBOX that another sync made)."""
    wipe(lab, [*MIGRATED, OVER])
    for host in lab.config.hosts_in("mx"):  # a migration of its own: no earlier steps, nobody cut over
        ssh(lab, host, f"rm -f {migration.STATE}/log.jsonl")
    migration.push_routes(lab.config, {})
    yield corpus.load(lab.config, [HEAVY], LIGHT, [OVER])
    for host in lab.config.hosts_in("mx"):  # a sync the wipe broke would be retried only after 5 minutes
        ssh(lab, host, "doveadm -f tab replicator status '*' | awk -F '\\t' 'NR > 1 && $6 == \"y\" {print $1}'"
            " | xargs -r -n 1 doveadm replicator replicate -f")
    wait_for(lambda: replicated(lab), 120, "every mailbox replicates again")


def replicated(lab) -> bool:
    """No mx host's replicator has a user whose last sync failed."""
    return not any(line.split()[-1] == "y" for host in lab.config.hosts_in("mx")
                   for line in ssh(lab, host, "doveadm -f tab replicator status '*'").splitlines()[1:])


def wipe(lab, users: list[str]) -> None:
    """``users``' mailboxes gone from every mx host."""
    homes = " ".join(f"/var/vmail/mailstack.test/{user.split('@')[0]}" for user in users)
    for host in lab.config.hosts_in("mx"):
        ssh(lab, host, f"rm -rf {homes}")


def test_plan_counts_the_corpus_and_names_the_user_over_quota(lab, loaded):
    plans = {plan["user"]: plan for plan in succeeded(migrate(lab, "plan", users=[*MIGRATED, OVER]))}
    assert {user: plan["messages"] for user, plan in plans.items()} == loaded
    assert [user for user, plan in plans.items() if not plan["fits"]] == [OVER]
    assert plans[HEAVY]["bytes"] > corpus.BIG


def test_sync_copies_everything_and_verify_finds_no_difference(lab, loaded):
    synced = succeeded(migrate(lab, "sync"))
    assert synced["failed"] == [] and synced["added"] == sum(loaded[user] for user in MIGRATED)
    verified = succeeded(migrate(lab, "verify"))
    assert {result["user"]: result["messages"] for result in verified} == {user: loaded[user] for user in MIGRATED}
    assert [result["differences"] for result in verified] == [[]] * len(MIGRATED)


def test_a_user_over_quota_is_left_out_and_named(lab, loaded):
    result = migrate(lab, "sync", users=[OVER])
    assert result.returncode == 1 and json.loads(result.stdout)["failed"] == [OVER]
    assert held(lab, OVER) == 0


def test_a_changed_source_moves_only_its_delta(lab, loaded):
    """New mail, flags changed, a message expunged, a folder renamed, subscriptions changed."""
    imap = old_server(lab, HEAVY)
    try:
        for number in range(3):
            corpus.append(imap, corpus.Mail("INBOX", ("$Forwarded",), 1790000000 + number, corpus.crlf(
                corpus.header(HEAVY, 5000 + number, "Arrived after the first sync", 1790000000) + "\nnew\n")))
        imap.select("INBOX")
        imap.uid("STORE", "1:2", "+FLAGS", r"(\Flagged $MailstackMoved)")
        imap.uid("STORE", "3", "+FLAGS", r"(\Deleted)")
        imap.uid("EXPUNGE", "3")  # only this one: the corpus marks other messages \\Deleted too
        imap.rename(corpus.quoted(RENAMED[0]), corpus.quoted(RENAMED[1]))
        imap.unsubscribe(corpus.quoted("Archive"))
        imap.subscribe(corpus.quoted("Junk E-mail"))
    finally:
        imap.logout()
    renamed = sum(1 for mail in corpus.mails(HEAVY, True) if mail.folder == RENAMED[0])
    synced = succeeded(migrate(lab, "sync"))
    # a folder renamed on an IMAP server looks like a new folder to any client: its mail moves again
    assert (synced["added"], synced["removed"]) == (3 + renamed, 1 + renamed)
    assert [result["differences"] for result in succeeded(migrate(lab, "verify", users=[HEAVY]))] == [[]]


def test_a_sync_killed_midway_is_finished_without_duplicates(lab, loaded):
    wipe(lab, [HEAVY])
    wanted = succeeded(migrate(lab, "plan", users=[HEAVY]))[0]["messages"]
    # the whole copy takes about a second: mx1 itself kills doveadm once the first messages are in
    home = f"/var/vmail/mailstack.test/{HEAVY.split('@')[0]}"
    crash = (f"until [ $(find {home} -type f \\( -path '*/cur/*' -o -path '*/new/*' \\) 2>/dev/null | wc -l) -gt 0 ];"
             " do sleep 0.05; done; pkill -KILL -f 'doveadm -c /run/mailstack-migrate'")
    with ThreadPoolExecutor(1) as pool:
        crashed = pool.submit(lab.run, "mx1", crash)
        running = subprocess.Popen(
            [sys.executable, "-m", "mailstack.cli", "migrate", "sync", "--user", HEAVY, "-i",
             str(lab.config.source.with_suffix(".py"))], cwd=PROJECT, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        try:
            assert crashed.result(timeout=300).returncode == 0
        finally:
            running.send_signal(signal.SIGKILL)
            running.wait()
    assert 0 < held(lab, HEAVY) < wanted, "the kill did not land mid-way"
    succeeded(migrate(lab, "sync", users=[HEAVY]))
    assert held(lab, HEAVY) == wanted
    assert [result["differences"] for result in succeeded(migrate(lab, "verify", users=[HEAVY]))] == [[]]


def test_one_altered_byte_is_named_with_its_user_folder_and_message(lab, loaded):
    user = LIGHT[0]
    original = next(mail for mail in corpus.mails(user, False) if mail.folder == "INBOX")
    message_id = original.raw.split(b"Message-ID: ")[1].split(b"\r\n")[0].decode()
    home = f"/var/vmail/mailstack.test/{user.split('@')[0]}/Maildir"
    path = ssh(lab, "mx1", f"grep -rlF {message_id!r} {home}/cur {home}/new").split()[0]
    offset = len(original.raw) - 10
    before = ssh(lab, "mx1", f"dd if={path} bs=1 skip={offset} count=1 2>/dev/null")
    ssh(lab, "mx1", f"printf {'x' if before != 'x' else 'y'} | dd of={path} bs=1 seek={offset} conv=notrunc")
    try:
        result = migrate(lab, "verify", users=[user])
        assert result.returncode == 1
        differences = json.loads(result.stdout)[0]["differences"]
        assert [(d["user"], d["folder"], d["kind"]) for d in differences] == [(user, "INBOX", "altered")]
        assert hashlib.sha256(original.raw).hexdigest()[:12] in differences[0]["detail"]
    finally:
        ssh(lab, "mx1", f"printf %s {before!r} | dd of={path} bs=1 seek={offset} conv=notrunc")
    assert [result["differences"] for result in succeeded(migrate(lab, "verify", users=[user]))] == [[]]


def subjects(imap: imaplib.IMAP4_SSL, prefix: str) -> Counter:
    """The subjects starting with ``prefix`` in the INBOX of ``imap``, counted."""
    imap.select("INBOX", readonly=True)
    typ, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    found = [part[1].decode(errors="replace").split(":", 1)[1].strip() for part in data if isinstance(part, tuple)]
    return Counter(subject for subject in found if subject.startswith(prefix))


def on_old_server(lab, user: str, prefix: str) -> Counter:
    imap = old_server(lab, user)
    try:
        return subjects(imap, prefix)
    finally:
        imap.logout()


def on_cluster(lab, user: str, prefix: str) -> Counter:
    imap = migration.cluster_session(lab.config, user)
    try:
        return subjects(imap, prefix)
    finally:
        imap.logout()


def test_passwords_are_proven_by_a_login_on_the_old_server(lab, loaded):
    """``passwords`` logs in to the old server with each user's password first: the lab's users
    have the same password on both sides, so each is proven and left unchanged; with one wrong
    password, nothing is written and the user is named."""
    credentials = lab.config.path(lab.config.migration.credentials)
    saved, configuration = credentials.read_bytes(), lab.config.source.read_bytes()
    chosen = LIGHT[:2]
    words = {user: lab.config.lab.passwords[user] for user in chosen}
    try:
        keys.write_private(credentials, yaml.safe_dump({**yaml.safe_load(saved), "passwords": words}).encode())
        assert succeeded(migrate(lab, "passwords", users=chosen)) == dict.fromkeys(chosen, migration.UNCHANGED)
        words[chosen[1]] += "-wrong"
        keys.write_private(credentials, yaml.safe_dump({**yaml.safe_load(saved), "passwords": words}).encode())
        refused = migrate(lab, "passwords", users=chosen)
        assert refused.returncode == 1 and f"the login of {chosen[1]} was refused" in refused.stderr
        assert "nothing was imported" in refused.stderr and "-wrong" not in refused.stdout + refused.stderr
    finally:
        keys.write_private(credentials, saved)
    assert lab.config.source.read_bytes() == configuration


def sending_throughout(vip, user: str, run) -> tuple[Counter, str, object]:
    """``run()`` while alice sends ``user`` a message every 0.2 s, from 2 s before until 2 s
    after: the subjects sent, their common prefix, and what ``run`` returned."""
    prefix = f"switching {time.time_ns()}"
    sent, stop = [], threading.Event()

    def keep_sending():
        while not stop.is_set():
            subject = f"{prefix} {len(sent)}"
            vip.send("alice", message(vip.user("alice"), user, subject))
            sent.append(subject)
            time.sleep(0.2)

    with ThreadPoolExecutor(1) as pool:
        sending = pool.submit(keep_sending)
        time.sleep(2)
        result = run()
        time.sleep(2)
        stop.set()
        sending.result()
    return Counter(sent), prefix, result


def special_folders(imap: imaplib.IMAP4_SSL) -> dict[str, str]:
    """The special-use folders (RFC 6154) of ``imap`` that hold mail, with their use."""
    try:
        found = {}
        for name, folder in migration.contents(imap).items():
            if folder.use and folder.messages:
                found[name] = folder.use
        return found
    finally:
        imap.logout()


def only_on_old_server(lab, user: str) -> str:
    """A message put into ``user``'s INBOX on the old server alone; its subject."""
    marker = f"only on the old server {time.time_ns()}"
    imap = old_server(lab, user)
    corpus.append(imap, corpus.Mail("INBOX", (), 1790000000, corpus.crlf(
        corpus.header(user, 7000, marker, 1790000000) + "\nmarker\n")))
    imap.logout()
    return marker


def served_by_old_server(lab, vip, user: str) -> bool:
    """Whether ``user``'s login through the virtual IP reaches the old server."""
    marker = only_on_old_server(lab, user)
    with vip.imap(user.split("@")[0]) as imap:
        return bool(subjects(imap, marker))


def test_a_wave_moves_its_users_while_their_mail_keeps_arriving(lab, loaded, vip):
    """Wave 1 (10 %): its user's mail, sent all through the cut-over, is on the cluster once each;
    afterwards they are served by the cluster, while a user of a later wave still logs in to the
    old server through the virtual IP and their mail lands there."""
    moved, stays = migration.wave_users(lab.config, 1), LIGHT[1]
    assert moved == [LIGHT[0]]
    wanted, prefix, cut = sending_throughout(vip, moved[0], lambda: migrate(lab, "cutover", "--wave", "1", users=[]))
    done = succeeded(cut)
    assert done["moved"] == moved and done["failed"] == []
    assert "backed up before wave 1 (state-" in cut.stderr
    wait_for(lambda: on_cluster(lab, moved[0], prefix) == wanted, 120, "every message once on the cluster")
    assert special_folders(migration.cluster_session(lab.config, moved[0])) == {"Sent": "\\Sent"}, "Sent Items"

    assert not served_by_old_server(lab, vip, moved[0])
    assert served_by_old_server(lab, vip, stays)
    letter = f"to the old server {time.time_ns()}"
    vip.send("alice", message(vip.user("alice"), stays, letter))
    wait_for(lambda: on_old_server(lab, stays, letter) == Counter([letter]), 60, "mail for a later wave on the old"
             " server")


def test_a_user_not_moved_logs_in_with_their_password_on_the_old_server(lab, loaded, vip):
    """The cluster checks the password of a user not cut over on the old server, for submission
    as for IMAP: once it changes there, the new one works through the virtual IP and the one the
    cluster holds is refused, and fail2ban counts the refusal."""
    user = LIGHT[1]
    login = user.split("@")[0]
    changed = copy.copy(vip)
    changed.passwords = {**vip.passwords, user: f"changed on the old server {time.time_ns()}"}
    corpus.set_password(lab.config, user, changed.passwords[user])
    try:
        changed.send(login, message(user, vip.user("alice"), "submitted with the old server's password"))
        with changed.imap(login) as imap:
            assert imap.select()[0] == "OK"
        with pytest.raises(smtplib.SMTPAuthenticationError):
            vip.submission(login)
        counted = refused_by_old_server(lab)
        with spare_addresses(lab, 1) as (client,):  # fail2ban ignores the deploy's own address
            imap_greeting(client, vip.address, vip.context, password=vip.passwords[user], user=user)
        wait_for(lambda: refused_by_old_server(lab) == counted + 1, 30, "fail2ban counts the refused login")
    finally:
        corpus.set_password(lab.config, user, vip.passwords[user])


def refused_by_old_server(lab) -> int:
    """Logins through the cluster that the old server refused, as fail2ban on the mx hosts counted."""
    status = (ssh(lab, host, "fail2ban-client status mailstack-old-server") for host in lab.config.hosts_in("mx"))
    return sum(int(re.search(r"Total failed:\s+(\d+)", text)[1]) for text in status)


def test_status_shows_each_step_with_who_ran_it(lab, loaded):
    found = json.loads(migrate(lab, "status", users=[HEAVY, OVER, *LIGHT[:2]]).stdout)
    assert {"plan", "sync", "verify"} <= found[HEAVY].keys()
    assert found[OVER]["sync"]["error"].startswith("does not fit")
    assert found[HEAVY]["verify"]["who"] == migration.who()
    assert found[LIGHT[0]]["cutover"]["wave"] == 1 and "cutover" not in found[LIGHT[1]]


def test_a_rolled_back_wave_takes_what_it_received_on_the_cluster_back(lab, loaded, vip):
    """Wave 1 rolled back after its user received mail on the cluster, flagged a message and
    filed one into a new folder: every message the cluster held is on the old server afterwards,
    in its folder and with its flags; mail sent all through the rollback is there once each;
    their logins through the virtual IP reach the old server again, and the cluster's copy is
    set aside on every mx host."""
    user = LIGHT[0]
    imap = migration.cluster_session(lab.config, user)
    imap.create(migration.quoted("Since the move"))
    corpus.append(imap, corpus.Mail("Since the move", ("\\Seen", "$MailstackMoved"), 1790000000, corpus.crlf(
        corpus.header(user, 7001, "filed on the cluster", 1790000000) + "\nfiled\n")))
    imap.select("INBOX")
    first = imap.uid("SEARCH", "UNFLAGGED")[1][0].split()[0]
    imap.uid("STORE", first, "+FLAGS", "(\\Flagged $Forwarded)")
    on_the_cluster = migration.contents(imap)
    imap.logout()

    wanted, prefix, rolled = sending_throughout(vip, user, lambda: migrate(lab, "rollback", "--wave", "1", users=[]))
    done = succeeded(rolled)
    assert done["moved"] == [user] and done["failed"] == []
    assert "backed up before the rollback of wave 1 (state-" in rolled.stderr
    imap = old_server(lab, user)
    on_the_old_server = migration.contents(imap)
    imap.logout()
    by_old_names = migration.cluster_as_old_server(on_the_old_server, on_the_cluster)
    assert by_old_names["Sent Items"].name == "Sent" and by_old_names["Sent Items"].messages
    assert migration.lacking(on_the_old_server, by_old_names) == {}, "every message of the cluster is there"
    assert migration.reflagged(on_the_old_server, by_old_names) == {}, "with the flags it had on the cluster"
    wait_for(lambda: on_old_server(lab, user, prefix) == wanted, 120, "every message sent meanwhile once on the"
             " old server")
    assert served_by_old_server(lab, vip, user)
    for host in lab.config.hosts_in("mx"):
        assert ssh(lab, host, f"ls /var/vmail/mailstack.test/{user.split('@')[0]}").count("Maildir.rolled-back-") == 1


def test_waves_two_and_three_move_everyone_else(lab, loaded, vip):
    """After the rollback, wave 2 (50 %) moves the rolled-back user of wave 1 again with its own,
    and wave 3 (100 %) everyone left, each verified; none is served by the old server any more,
    and the old server's special folders (Sent Items, Deleted Items, Junk E-mail) have the
    cluster's names."""
    for number, wanted in ((2, migration.up_to_wave(lab.config, 2)), (3, migration.wave_users(lab.config, 3))):
        done = succeeded(migrate(lab, "cutover", "--wave", str(number), users=[]))
        assert done["moved"] == wanted and done["failed"] == []
    assert migration.up_to_wave(lab.config, 2)[0] == LIGHT[0]
    assert set(migration.states(lab.config).values()) == {migration.MOVED}
    assert special_folders(migration.cluster_session(lab.config, HEAVY)) == {
        "Drafts": "\\Drafts", "Junk": "\\Junk", "Sent": "\\Sent", "Trash": "\\Trash"}, "under the cluster's names"

    def folders(host: str) -> list[str]:
        return sorted(ssh(lab, host, f"doveadm mailbox list -u {HEAVY}").splitlines())

    wait_for(lambda: folders("mx1") == folders("mx2"), 60, "both mx hosts hold the same folders")
    assert [name for name in folders("mx1") if "temp" in name] == [], "no folder of a replication conflict"
    assert "Trash/2020" in folders("mx1"), "a folder below a special folder moves with it"
    assert not any(served_by_old_server(lab, vip, user) for user in (LIGHT[0], HEAVY))
