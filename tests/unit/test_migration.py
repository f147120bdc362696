"""mailstack migrate without hosts: the credentials file is refused before any copy when it is
readable by others or malformed, a password cannot change the meaning of Dovecot's settings,
and the comparison names each missing, extra and altered message."""

from pathlib import Path

import pytest

from mailstack import migration, users
from mailstack.cli import main
from mailstack.config import ConfigError, load
from mailstack.inventory import load_for
from tests.support import LAB_INVENTORY


@pytest.fixture
def config(tmp_path):
    loaded = load_for(LAB_INVENTORY)
    moved = loaded.migration.model_copy(update={"credentials": str(tmp_path / "legacy.yml")})
    return loaded.model_copy(update={"migration": moved})


def write(config, text: str, mode: int = 0o600):
    path = config.path(config.migration.credentials)
    path.write_text(text)
    path.chmod(mode)
    return path


def test_credentials_readable_by_others_are_refused(config):
    path = write(config, "master_user: admin\nmaster_password: s3cret\n", 0o644)
    with pytest.raises(ConfigError) as caught:
        migration.credentials(config)
    assert caught.value.problems == [f"{path}: mode 644: others may read these passwords; chmod 600 {path}"]
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(("text", "problem"), [
    ("master_user: admin\n", "master_password: missing (master_user needs it)"),
    ("master_user: admin\nmaster_password: [1]\n", "master_password: must be one line of text"),
    ("passwords: [a, b]\n", "passwords: must map each address to its password"),
    ("password: x\n", "expected master_user, master_password and/or passwords"),
])
def test_malformed_credentials_are_named(config, text, problem):
    path = write(config, text)
    with pytest.raises(ConfigError) as caught:
        migration.credentials(config)
    assert caught.value.problems == [f"{path}: {problem}"]


def test_a_user_without_a_login_is_named(config):
    write(config, "passwords: {dave@mailstack.test: pw}\n")
    login = migration.credentials(config)
    assert login.login("dave@mailstack.test") == ("dave@mailstack.test", "pw")
    with pytest.raises(migration.MigrationError, match="no password for erin@mailstack.test"):
        login.login("erin@mailstack.test")


def test_a_password_stays_one_quoted_value(config):
    write(config, 'master_user: admin\nmaster_password: "a\\" \\\\ <x"\n')
    settings = migration.imapc_settings(config, "dave@mailstack.test", migration.credentials(config))
    assert 'imapc_password = "a\\" \\\\ <x"\n' in settings
    assert 'imapc_master_user = "admin"\n' in settings


def message(sha: str, flags: str = "", date: int = 1) -> migration.Message:
    return migration.Message(sha, flags, date)


def folder(name: str, *messages: migration.Message) -> migration.Folder:
    return migration.Folder(name, dict(enumerate(messages, start=1)))


def test_compare_names_missing_extra_duplicate_and_altered_messages():
    old = {"INBOX": folder("INBOX", message("a"), message("b", date=2), message("c", date=3)),
           "Archive": folder("Archive", message("d"))}
    new = {"INBOX": folder("INBOX", message("a"), message("a"), message("B", date=2)),
           "Sent": folder("Sent")}
    found = [(d.folder, d.kind) for d in migration.compare("u", old, new)]
    assert found == [("Archive", "missing folder"), ("INBOX", "altered"), ("INBOX", "missing"), ("INBOX", "extra")]


def test_compare_names_a_subscription_that_differs():
    old = {"INBOX": folder("INBOX"), "Archive": migration.Folder("Archive", subscribed=True)}
    new = {"INBOX": folder("INBOX"), "Archive": migration.Folder("Archive")}
    assert [str(d) for d in migration.compare("u", old, new)] == ["u: Archive: subscription: subscribed on the"
                                                                  " old server only"]


def test_compare_finds_nothing_in_equal_mailboxes():
    old = {"INBOX": folder("INBOX", message("a", "\\Seen"), message("a", "\\Seen"))}
    assert migration.compare("u", old, old) == []


def test_a_rollback_copies_what_only_the_cluster_holds_as_often_as_it_holds_it():
    old = {"INBOX": folder("INBOX", message("a"), message("b", date=2))}
    new = {"INBOX": folder("INBOX", message("a"), message("a"), message("b", date=3), message("b", date=2)),
           "New": folder("New", message("c")), "Empty": folder("Empty")}
    assert migration.lacking(old, new) == {"INBOX": [2, 3], "New": [1]}
    assert migration.lacking(new, new) == {}


def test_a_rollback_sets_the_flags_the_cluster_has_on_the_old_servers_copy():
    old = {"INBOX": folder("INBOX", message("a"), message("a", "\\Seen"), message("b", "\\Seen"), message("c"))}
    new = {"INBOX": folder("INBOX", message("a", "\\Seen"), message("a", "\\Seen"), message("b"),
                           message("c", "$Forwarded \\Flagged")), "New": folder("New", message("a"))}
    assert migration.reflagged(old, new) == {("INBOX", "\\Seen"): [1], ("INBOX", ""): [3],
                                             ("INBOX", "$Forwarded \\Flagged"): [4]}


def special(name: str, use: str, *messages: migration.Message, subscribed: bool = False) -> migration.Folder:
    return migration.Folder(name, dict(enumerate(messages, start=1)), subscribed=subscribed, use=use)


def test_the_old_servers_special_folders_take_the_clusters_names_with_what_is_below_them():
    assert migration.special_renames({"Sent Items": "\\Sent", "Drafts": "\\Drafts", "Junk E-mail": "\\Junk",
                                      "Archive": ""}) == {"Sent Items": "Sent", "Junk E-mail": "Junk"}
    renames = {"Sent Items": "Sent"}
    assert [migration.renamed(name, renames) for name in ("Sent Items", "Sent Items/2019", "Sent Items 2")] == [
        "Sent", "Sent/2019", "Sent Items 2"]


def test_a_cut_over_mailbox_is_verified_under_the_clusters_names():
    old = {"INBOX": folder("INBOX"), "Junk E-mail": special("Junk E-mail", "\\Junk", message("a")),
           "Junk E-mail/Old": folder("Junk E-mail/Old", message("b"))}
    new = {"INBOX": folder("INBOX"), "Junk": special("Junk", "\\Junk", message("a"), subscribed=True),
           "Junk/Old": folder("Junk/Old", message("b"))}
    assert migration.compare("u", migration.as_renamed(old), new) == []
    assert {d.kind for d in migration.compare("u", old, new)} == {"missing folder", "extra folder"}


def test_a_rollback_puts_the_clusters_special_folders_back_under_the_old_servers_names():
    old = {"Sent Items": special("Sent Items", "\\Sent", message("a"))}
    new = {"Sent": special("Sent", "\\Sent", message("a"), message("b"))}
    as_old = migration.cluster_as_old_server(old, new)
    assert migration.lacking(old, as_old) == {"Sent Items": [2]} and as_old["Sent Items"].name == "Sent"
    made_since = {**new, "Sent Items": folder("Sent Items")}
    assert migration.cluster_as_old_server(old, made_since).keys() == {"Sent", "Sent Items"}


def test_folder_names_in_modified_utf7_as_rfc_3501_writes_them():
    name = "~peter/mail/\u53f0\u5317/\u65e5\u672c\u8a9e"
    assert migration.modified_utf7(name) == "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
    assert migration.readable("~peter/mail/&U,BTFw-/&ZeVnLIqe-") == name
    assert migration.modified_utf7("Kunden & Partner") == "Kunden &- Partner"
    assert migration.readable("Kunden &- Partner") == "Kunden & Partner"


def test_waves_take_shares_of_the_moving_users_in_their_order(config):
    moving = migration.moving(config)
    assert len(moving) == 9
    assert migration.wave_users(config, 1) == moving[:1]  # 10 % of 9, rounded up
    assert migration.wave_users(config, 2) == moving[1:5]
    assert migration.wave_users(config, 3) == moving[5:]
    with pytest.raises(ConfigError, match="--wave 4: .* has waves 1 to 3"):
        migration.wave_users(config, 4)


def test_routes_relay_and_proxy_the_users_not_cut_over(config):
    erin, frank, *_ = migration.moving(config)
    transport, proxied = migration.routes(config, {erin: migration.MOVED, frank: migration.HELD})
    assert erin not in transport + proxied
    assert f"{frank} retry:4.2.0 mailbox moving to another server\n" in transport
    assert f"{frank}:::::::nopassword=y nologin=y" in proxied
    others = migration.moving(config)[2:]
    assert all(f"{user} smtp:[10.77.0.70]:25\n" in transport for user in others)
    assert all(f"{user}:::::::nopassword=y proxy=y host=legacy1.mailstack.test hostip=10.77.0.70 port=993 ssl=yes\n"
               in proxied for user in others)


def copies(monkeypatch, added: list[int]) -> list[int]:
    """``sync_user`` faked: each copy adds the next of ``added``; the copies made are counted."""
    made = []

    def copy(config, host, user, login):
        made.append(user)
        return migration.Synced(user, added=added[len(made) - 1], seconds=1.0)

    monkeypatch.setattr(migration, "sync_user", copy)
    return made


def test_the_last_delta_is_copied_until_a_copy_adds_nothing(config, monkeypatch):
    made = copies(monkeypatch, [3, 1, 0])
    settled = migration.settled_copy(config, "mx1", "erin@mailstack.test", login=None)
    assert (settled.added, settled.seconds, settled.error, len(made)) == (4, 3.0, None, 3)


def test_a_user_whose_mail_keeps_reaching_the_old_server_is_not_settled(config, monkeypatch):
    made = copies(monkeypatch, [1] * 5)
    settled = migration.settled_copy(config, "mx1", "erin@mailstack.test", login=None)
    assert len(made) == 5 and settled.error.startswith("the old server was still taking in mail")


def test_a_user_cut_over_is_never_synced_again(config, monkeypatch):
    erin = migration.moving(config)[0]
    monkeypatch.setattr(migration, "history", lambda config: [{"step": "cutover", "user": erin, "wave": 1}])
    copies(monkeypatch, [])
    with pytest.raises(migration.MigrationError, match=f"cut over already: {erin}; a sync would delete"):
        migration.sync(config, [migration.UserPlan(erin, 1, 1, 1, 10)], login=None)


@pytest.mark.parametrize(("arguments", "says"), [
    (["sync", "--wave", "2", "--user", "erin@mailstack.test"], "give --user or --wave, not both"),
    (["verify", "--wave", "4"], "--wave 4: "),
    (["cutover"], "mailstack migrate cutover: give --wave N"),
])
def test_wrong_wave_arguments_get_one_line_before_any_host(arguments, says, capsys):
    assert main(["migrate", *arguments, "-i", str(LAB_INVENTORY)]) == 2
    error = capsys.readouterr().err
    assert says in error and error.count("\n") == 1, error


def test_a_rollback_takes_the_users_who_moved_with_its_wave(config, monkeypatch):
    erin, frank = migration.moving(config)[:2]
    monkeypatch.setattr(migration, "history", lambda config: [{"step": "cutover", "user": user, "wave": 2}
                                                              for user in (erin, frank)])
    taken = []
    monkeypatch.setattr(migration, "switch_wave", lambda config, current, users, *rest: taken.append(users) or [])
    migration.rollback(config, 1, login=None)
    migration.rollback(config, 2, login=None)
    assert taken == [[erin, frank]], "the wave they moved with, not the wave that first listed them"


def test_a_cut_over_takes_the_users_of_earlier_waves_still_on_the_old_server(config, monkeypatch):
    erin = migration.moving(config)[0]
    monkeypatch.setattr(migration, "history", lambda config: [{"step": "cutover", "user": erin, "wave": 1},
                                                              {"step": "rollback", "user": erin, "wave": 1}])
    monkeypatch.setattr(migration, "plan", lambda config, users, login: [])
    taken = []
    monkeypatch.setattr(migration, "switch_wave", lambda config, current, users, *rest: taken.append(users) or [])
    migration.cutover(config, 2, login=None)
    assert taken == [migration.up_to_wave(config, 2)] and taken[0][0] == erin


@pytest.fixture
def editable(tmp_path):
    """The lab's configuration, loaded from a copy of its YAML that the test may change."""
    copy = tmp_path / "lab.yml"
    copy.write_text(LAB_INVENTORY.with_suffix(".yml").read_text())
    return load(copy)


def old_server_accepts(monkeypatch, refused: tuple[str, ...] = ()) -> None:
    class Session:
        def logout(self):
            pass

    def session(config, user, login):
        if user in refused:
            raise migration.MigrationError(f"the old server: the login of {user} was refused; check its password")
        return Session()

    monkeypatch.setattr(migration, "source_session", session)


def hash_of(config, user: str) -> str:
    return next(one.password_hash for one in load(config.source).users if one.address == user)


def test_passwords_are_imported_as_hashes_and_a_second_import_changes_nothing(editable, monkeypatch):
    old_server_accepts(monkeypatch)
    erin, frank, grace = migration.moving(editable)[:3]
    login = migration.Credentials(Path("legacy.yml"), passwords={erin: "erin-old-pw", frank: "frank-old-pw"})
    outcomes = migration.import_passwords(editable, [erin, frank, grace], login)
    assert outcomes == {erin: "imported", frank: "imported", grace: "no password in legacy.yml"}
    assert users.matches(hash_of(editable, erin), "erin-old-pw") and "erin-old-pw" not in editable.source.read_text()
    before = editable.source.read_text()
    again = migration.import_passwords(load(editable.source), [erin, frank], login)
    assert again == {erin: "unchanged", frank: "unchanged"} and editable.source.read_text() == before


def test_no_password_is_imported_when_the_old_server_refuses_one(editable, monkeypatch):
    erin, frank = migration.moving(editable)[:2]
    old_server_accepts(monkeypatch, refused=(frank,))
    before = editable.source.read_text()
    login = migration.Credentials(Path("legacy.yml"), passwords={erin: "erin-old-pw", frank: "wrong-pw"})
    with pytest.raises(migration.MigrationError, match=f"login of {frank} was refused.*nothing was imported") as caught:
        migration.import_passwords(editable, [erin, frank], login)
    assert "wrong-pw" not in str(caught.value) and editable.source.read_text() == before
