"""Checks that span several parts of the configuration, all in one place.

Each check yields ``(key path, message)``; the loader adds file and line.
"""

from collections.abc import Iterator

from .model import Config

Problem = tuple[tuple[str | int, ...], str]


def cross_check(config: Config) -> list[Problem]:
    return [
        *_domains(config),
        *_addresses(config),
        *_hosts(config),
        *_releases(config),
        *_quorum(config),
        *_storage(config),
        *_tls(config),
        *_lab(config),
        *_migration(config),
    ]


def _first_seen(items, key) -> Iterator[tuple[int, int]]:
    """``(index, index of the earlier twin)`` for each item whose key was seen before."""
    seen: dict[object, int] = {}
    for index, item in enumerate(items):
        value = key(item)
        if value in seen:
            yield index, seen[value]
        else:
            seen[value] = index


def _domains(config: Config) -> Iterator[Problem]:
    for index, twin in _first_seen(config.domains, lambda d: d.name):
        yield ("domains", index, "name"), f"domain declared twice (also domains[{twin}])"


def _addresses(config: Config) -> Iterator[Problem]:
    declared = {domain.name for domain in config.domains}
    users = {user.address for user in config.users}
    for index, user in enumerate(config.users):
        domain = user.address.rpartition("@")[2]
        if domain not in declared:
            yield ("users", index, "address"), f"domain '{domain}' is not declared under domains"
    for index, twin in _first_seen(config.users, lambda u: u.address):
        yield ("users", index, "address"), f"duplicate user (also users[{twin}])"
    for index, alias in enumerate(config.aliases):
        domain = alias.address.rpartition("@")[2]
        if domain not in declared:
            yield ("aliases", index, "address"), f"domain '{domain}' is not declared under domains"
        if alias.address in users:
            yield ("aliases", index, "address"), "is also a user; mail would never reach that mailbox"
    for index, twin in _first_seen(config.aliases, lambda a: a.address):
        yield ("aliases", index, "address"), f"duplicate alias (also aliases[{twin}])"
    yield from _alias_targets(config, declared, users)
    if config.cluster.postmaster is None and f"postmaster@{config.domains[0].name}" not in users | {
        alias.address for alias in config.aliases
    }:
        yield ("cluster", "postmaster"), (
            f"no user or alias postmaster@{config.domains[0].name}; set cluster.postmaster or add that alias"
        )


def _alias_targets(config: Config, declared: set[str], users: set[str]) -> Iterator[Problem]:
    """Each target in a declared domain is a user or an alias, and every alias reaches a mailbox
    (or leaves the cluster): mail to it neither bounces at once nor loops."""
    aliases = {alias.address: alias.to for alias in config.aliases}
    catch_alls = {address[1:] for address in aliases if address.startswith("@")}
    for index, alias in enumerate(config.aliases):
        for target_index, target in enumerate(alias.to):
            domain = target.rpartition("@")[2]
            if domain in declared and target not in users | set(aliases) and domain not in catch_alls:
                yield ("aliases", index, "to", target_index), f"{target} is no user or alias; mail to it would bounce"
    for index, alias in enumerate(config.aliases):
        if not _reaches_a_mailbox(alias.address, aliases, users, declared):
            yield ("aliases", index, "to"), "leads only back to aliases (a loop); no mailbox ever gets the mail"


def _reaches_a_mailbox(start: str, aliases: dict[str, list[str]], users: set[str], declared: set[str]) -> bool:
    seen, pending = set(), [start]
    while pending:
        address = pending.pop()
        if address in users or address.rpartition("@")[2] not in declared:
            return True  # a mailbox, or another domain's server
        if address not in seen:
            seen.add(address)
            pending.extend(aliases.get(address, []))
    return False


def _hosts(config: Config) -> Iterator[Problem]:
    for group in ("lb", "mx"):
        if not config.hosts_in(group):
            yield ("hosts",), f"no host in group '{group}'"
    if len(config.hosts_in("mx")) > 2:
        yield ("hosts",), (
            f"{len(config.hosts_in('mx'))} hosts in group 'mx'; Dovecot replicates mailboxes between a pair,"
            " so give one or two (docs/ha.md)"
        )
    names = list(config.hosts)
    for index, twin in _first_seen(config.hosts.values(), lambda host: host.address):
        yield ("hosts", names[index], "address"), f"same address as host {names[twin]}"
    for name, host in config.hosts.items():
        if host.address == config.cluster.virtual_ip:
            yield ("hosts", name, "address"), "is the virtual IP; give the host its own address"
        if "lb" in host.groups and host.address.version != config.cluster.virtual_ip.version:
            yield ("cluster", "virtual_ip"), (
                f"IPv{config.cluster.virtual_ip.version}, but lb host {name} has an IPv{host.address.version}"
                " address; VRRP moves an address of the lb hosts' own family"
            )
        if ("lb" in host.groups) != (host.vrrp_priority is not None):
            yield ("hosts", name, "vrrp_priority"), "lb hosts need a vrrp_priority, other hosts take none"
        if ("storage" in host.groups) != (host.storage is not None):
            yield ("hosts", name, "storage"), "hosts in the storage group need storage, other hosts take none"
        if {"backup", "mx"} <= set(host.groups):
            yield ("hosts", name, "groups"), "a backup host may not be an mx host: a fault of the host would take both"
    yield from _virtual_ip_network(config)
    lbs = [(name, config.hosts[name].vrrp_priority) for name in config.hosts_in("lb")]
    for index, twin in _first_seen(lbs, lambda item: item[1]):
        yield ("hosts", lbs[index][0], "vrrp_priority"), f"same priority as {lbs[twin][0]}; VRRP needs distinct ones"


def _releases(config: Config) -> Iterator[Problem]:
    """An mx pair replicates one way: both hosts on Debian 12 (Dovecot's replicator) or both on
    Debian 13 (DRBD over each host's mdadm array, docs/releases.md)."""
    pair = config.hosts_in("mx")
    if len(pair) < 2:
        return
    first = config.release_of(pair[0])
    for name in pair[1:]:
        if config.release_of(name) != first:
            where = ("hosts", name, "release") if config.hosts[name].release else ("cluster", "release")
            yield where, (
                f"host {name} runs {config.release_of(name)} and {pair[0]} {first}; the mx pair replicates by"
                " Dovecot 2.3's replicator on bookworm or by DRBD on trixie, so both run one release (docs/releases.md)"
            )
            return
    if config.mailbox_replication != "drbd":
        return
    for name in pair:
        storage = config.hosts[name].storage
        if not (storage and storage.mdraid):
            yield ("hosts", name, "storage"), (
                "an mx host on trixie keeps /var/vmail on DRBD over an mdadm array: put it in the storage"
                " group with storage.mdraid (docs/ha.md)"
            )


def _quorum(config: Config) -> Iterator[Problem]:
    """A pair on DRBD needs a third vote, so that of two halves cut apart only one runs the mail."""
    voters = config.hosts_in("quorum")
    for name in voters:
        if "mx" in config.hosts[name].groups:
            yield ("hosts", name, "groups"), "the quorum host may not be an mx host: it decides between them"
    if config.mailbox_replication == "drbd" and len(voters) != 1:
        yield ("hosts",), (
            f"{len(voters)} hosts in group 'quorum'; an mx pair on DRBD needs one, outside the pair, that decides"
            " which half keeps the mail when the two lose each other (docs/ha.md)"
        )
    elif voters and config.mailbox_replication != "drbd":
        yield ("hosts", voters[0], "groups"), "group 'quorum' serves an mx pair on DRBD (trixie) only"


def _virtual_ip_network(config: Config) -> Iterator[Problem]:
    network, vip = config.cluster.network, config.cluster.virtual_ip
    if network is None:
        return
    if vip.version != network.version or vip not in network:
        yield ("cluster", "virtual_ip"), f"{vip} is outside cluster.network {network}; it could not move there"
    elif network.num_addresses > 2 and vip in (network.network_address, network.broadcast_address):
        yield ("cluster", "virtual_ip"), f"{vip} is the network or broadcast address of {network}"
    for name in config.hosts_in("lb"):
        address = config.hosts[name].address
        if address.version != network.version or address not in network:
            yield ("hosts", name, "address"), f"lb host outside cluster.network {network}"


# The fewest devices each kind of array or vdev can be made of.
MIN_DEVICES = {"RAID1": 2, "RAID6": 4, "RAID10": 4, "mirror": 2, "raidz": 2, "raidz2": 3, "raidz3": 4}


def _storage(config: Config) -> Iterator[Problem]:
    for name, host in config.hosts.items():
        if host.storage is None:
            continue
        if raid := host.storage.mdraid:
            where = ("hosts", name, "storage", "mdraid")
            yield from _devices(where, [(where, f"RAID{raid.level}", raid.devices)], raid.wipe)
        else:
            zfs, where = host.storage.zfs, ("hosts", name, "storage", "zfs")
            vdevs = [((*where, "vdevs", index), vdev.type, vdev.devices) for index, vdev in enumerate(zfs.vdevs)]
            yield from _devices(where, vdevs, zfs.wipe)
            for index, twin in _first_seen(zfs.datasets, lambda dataset: dataset.name):
                yield (*where, "datasets", index, "name"), f"dataset declared twice (also datasets[{twin}])"
            for index, twin in _first_seen(zfs.datasets, lambda dataset: dataset.mount_point):
                yield (*where, "datasets", index, "mount_point"), f"also the mount point of datasets[{twin}]"


def _devices(where: tuple, groups: list[tuple[tuple, str, list[str]]], wipe: list[str]) -> Iterator[Problem]:
    """Each array or vdev (key path, kind, devices) has enough devices; no device is in two."""
    for path, kind, devices in groups:
        if len(devices) < MIN_DEVICES[kind]:
            yield (*path, "devices"), f"{kind} needs at least {MIN_DEVICES[kind]} devices"
        if kind == "RAID10" and len(devices) % 2:
            yield (*path, "devices"), "RAID10 needs an even number of devices"
    every = [device for _, _, devices in groups for device in devices]
    for index, _ in _first_seen(every, lambda device: device):
        yield where, f"{every[index]} is listed twice"
    for device in sorted(set(wipe) - set(every)):
        yield (*where, "wipe"), f"{device} is not one of the devices"


def _tls(config: Config) -> Iterator[Problem]:
    acme = config.tls.acme
    if config.tls.mode == "acme" and acme.challenge == "dns-rfc2136" and config.dns is None:
        yield ("tls", "acme", "challenge"), "dns-rfc2136 needs the top-level dns section (server and TSIG key)"


def _disks_of(host) -> list[str]:
    if host.storage is None:
        return []
    if host.storage.mdraid:
        return host.storage.mdraid.devices
    return [device for vdev in host.storage.zfs.vdevs for device in vdev.devices]


def _lab(config: Config) -> Iterator[Problem]:
    if config.lab is None:
        return
    network = config.lab.address.network
    own = (config.lab.address.ip, network.network_address, network.broadcast_address)
    for name, host in config.hosts.items():
        if host.address not in network or host.address in own:
            yield ("hosts", name, "address"), f"lab hosts need their own address in {network}"
    if config.cluster.virtual_ip not in network or config.cluster.virtual_ip in own:
        yield ("cluster", "virtual_ip"), f"the lab's virtual IP needs its own address in {network}"
    disks = {f"/dev/vd{chr(ord('b') + index)}" for index in range(config.lab.vm_disks)}
    for name, host in config.hosts.items():
        for device in sorted(set(_disks_of(host)) - disks):
            yield ("hosts", name, "storage"), (
                f"{device} is not a disk of the lab's guests, which have {config.lab.vm_disks}"
                f" ({', '.join(sorted(disks)) or 'none'}; lab.vm_disks)"
            )


def _migration(config: Config) -> Iterator[Problem]:
    if config.migration is None:
        return
    users = {user.address for user in config.users}
    for index, address in enumerate(config.migration.users):
        if address not in users:
            yield ("migration", "users", index), f"{address} is not a user of this configuration"
    moving = set(config.migration.users) or users
    percents = []
    for index, wave in enumerate(config.migration.waves):
        for at, address in enumerate(wave.users):
            if address not in moving:
                yield ("migration", "waves", index, "users", at), f"{address} is not among migration.users"
        if wave.percent is not None:
            if percents and wave.percent <= percents[-1]:
                yield ("migration", "waves", index, "percent"), f"{wave.percent} % is not more than an earlier wave's"
            percents.append(wave.percent)
