"""Custom operations' commands, run on sample files as the hosts would run them, with the
facts that decide whether they run."""

import subprocess

from facts.apt import DEBIAN_SOURCES, DebianSourcesWithout
from mailstack import secrets
from operations.apt_sources import add_component
from operations.components import _tar, hiding_secrets
from operations.shell_files import set_shell_variables


def test_contrib_is_added_to_debian_sources_once(tmp_path):
    """The fact's command and the operation's sed, run on sample files: every entry with main
    gets contrib, then the fact finds nothing left to do."""
    one_line, deb822 = tmp_path / "sources.list", tmp_path / "debian.sources"
    one_line.write_text(
        "deb http://deb.debian.org/debian bookworm main non-free-firmware\n"
        "deb http://deb.debian.org/debian-security bookworm-security main contrib\n# deb x bookworm main\n"
    )
    deb822.write_text("Types: deb\nComponents: main\n")

    def lacking() -> list[str]:
        command = DebianSourcesWithout().command(component="contrib")
        for path, sample in zip(DEBIAN_SOURCES, (one_line, deb822)):
            command = command.replace(f"{path} ", f"{sample} ").replace(f"{path};", f"{sample};")
        output = subprocess.run(command, shell=True, capture_output=True, text=True, check=True).stdout
        return DebianSourcesWithout().process(output.splitlines())

    assert lacking() == [str(one_line), str(deb822)]
    subprocess.run(add_component("contrib", lacking()), shell=True, check=True)
    assert one_line.read_text() == (
        "deb http://deb.debian.org/debian bookworm main contrib non-free-firmware\n"
        "deb http://deb.debian.org/debian-security bookworm-security main contrib\n# deb x bookworm main\n"
    )
    assert deb822.read_text() == "Types: deb\nComponents: main contrib\n"
    assert lacking() == []


def test_shell_variables_are_set_once(tmp_path):
    """The operation's command on the lines of Debian's zed.rc that matter: each variable ends
    up assigned by exactly one line, whether it was set, commented out or missing."""
    zed_rc = tmp_path / "zed.rc"
    zed_rc.write_text('ZED_EMAIL_ADDR="root"\n#ZED_EMAIL_PROG="mail"\n#ZED_EMAIL_OPTS="-s \'@SUBJECT@\' @ADDRESS@"\n'
                      "ZED_NOTIFY_INTERVAL_SECS=3600\n")
    values = {"ZED_EMAIL_ADDR": "postmaster@example.com", "ZED_EMAIL_PROG": "/usr/sbin/sendmail",
              "ZED_EMAIL_OPTS": "@ADDRESS@", "ZED_NOTIFY_VERBOSE": "a b"}
    subprocess.run(set_shell_variables(str(zed_rc), values), shell=True, check=True)
    assert zed_rc.read_text().splitlines() == [
        "ZED_NOTIFY_INTERVAL_SECS=3600",
        "ZED_EMAIL_ADDR=postmaster@example.com",
        "ZED_EMAIL_PROG=/usr/sbin/sendmail",
        "ZED_EMAIL_OPTS=@ADDRESS@",
        "ZED_NOTIFY_VERBOSE='a b'",
    ]
    sourced = subprocess.run([". " + str(zed_rc) + ' && echo "$ZED_EMAIL_ADDR|$ZED_NOTIFY_VERBOSE"'], shell=True,
                             capture_output=True, text=True, check=True).stdout
    assert sourced == "postmaster@example.com|a b\n"


def test_a_failing_check_shows_what_it_said_without_the_secrets(tmp_path):
    """A checker that quotes the line it refuses (doveconf does) must not print the password
    in it: the deploy shows the checker's words with the staged files' secrets hidden."""
    password = "s3cr3t-'$(x)\"-pw"
    listed = tmp_path / "hidden"
    listed.write_text(f"{password}\nan unrelated secret\n")
    (tmp_path / "conf").write_text(f"doveadm_password = {password}\n")
    check = f"echo bad line: $(cat {tmp_path / 'conf'}) >&2; exit 3"

    failed = subprocess.run(["sh", "-c", hiding_secrets(check, str(listed))], capture_output=True, text=True)
    assert failed.returncode == 1
    assert failed.stderr == f"bad line: doveadm_password = {secrets.HIDDEN}\n"
    assert not listed.exists()

    listed.write_text(f"{password}\n")
    passed = subprocess.run(["sh", "-c", hiding_secrets("true", str(listed))], capture_output=True, text=True)
    assert (passed.returncode, passed.stdout, passed.stderr) == (0, "", "")


def test_a_components_archive_unpacks_as_staged_files_only_root_reads(tmp_path):
    """GNU tar, as the host runs it, unpacks the archive ``component_files`` uploads into the
    staged tree and the list of secrets beside it, each file readable by its owner alone."""
    members = {"postfix/etc/postfix/main.cf": "myhostname = mx1\n", "postfix/etc/postfix/a b": "x",
               "postfix.hidden": "s3cr3t\n"}
    archive = tmp_path / "postfix.tar"
    archive.write_bytes(_tar(members).getvalue())
    subprocess.run(["tar", "-x", "-f", str(archive), "-C", str(tmp_path)], check=True)
    for name, text in members.items():
        assert (tmp_path / name).read_text() == text
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600
