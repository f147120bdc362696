"""The firewall and hardening on every host: drop by default, open only what the roles need,
keys-only SSH, fail2ban watching the logins."""

import pytest

from deploys.firewall import allowances


@pytest.mark.parametrize("command", ["iptables", "ip6tables"])
def test_input_policy_is_drop(host, command):
    assert host.check_output(f"{command} -S INPUT").splitlines()[0] == "-P INPUT DROP"


def test_only_configured_ports_are_open(host, cluster):
    """Every TCP or UDP port the IPv4 rules accept is one the configuration opens for this host's roles."""
    rules = host.check_output("iptables -S INPUT").splitlines()
    opened = {
        (words[words.index("-p") + 1], int(words[words.index("--dport") + 1]))
        for words in (rule.split() for rule in rules)
        if "--dport" in words and words[-1] == "ACCEPT"
    }
    deployer = "192.0.2.1"  # any address: only the ports matter (SSH, Prometheus on mon hosts)
    allowed = allowances(cluster, host.backend.hostname, deployer)
    expected = {(rule.protocol, rule.port) for rule in allowed if rule.port}
    assert opened == expected


def test_rules_are_saved_for_the_next_boot(host):
    for family in ("v4", "v6"):
        saved, wanted = host.file(f"/etc/iptables/rules.{family}"), host.file(f"/etc/mailstack/firewall/rules.{family}")
        assert saved.mode == 0o600 and saved.content_string == wanted.content_string
    assert host.service("netfilter-persistent").is_enabled


def test_ssh_takes_keys_only(host):
    settings = host.check_output("sshd -T").splitlines()
    assert "passwordauthentication no" in settings
    assert "kbdinteractiveauthentication no" in settings
    assert "permitrootlogin without-password" in settings


def test_fail2ban_watches_the_logins(host, cluster):
    jails = host.check_output("fail2ban-client status | sed -n 's/.*Jail list:\\s*//p'").replace(",", " ").split()
    mail = {"postfix-sasl", "dovecot"} | ({"mailstack-old-server"} if cluster.migration else set())
    assert set(jails) == {"sshd"} | (mail if "mx" in cluster.hosts[host.backend.hostname].groups else set())


def test_fail2ban_reads_the_journal_postfix_logs_the_logins_to(host, cluster, postfix_unit):
    """Postfix logs under postfix@- on Debian 12 and under postfix on Debian 13: a jail that
    reads only the other unit's journal never sees a failed login. (fail2ban adds the jail's
    journalmatch to its filter's, which names postfix on Debian 12 and both on Debian 13.)"""
    if "mx" not in cluster.hosts[host.backend.hostname].groups:
        pytest.skip("no Postfix on this host")
    said = host.check_output("fail2ban-client get postfix-sasl journalmatch")
    assert f"_SYSTEMD_UNIT={postfix_unit}.service" in said.split(), said
