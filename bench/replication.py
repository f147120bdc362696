"""What each way of keeping two mx hosts' /var/vmail alike costs without Dovecot's replicator
(Dovecot 2.4, Debian 13), measured side by side on two QEMU guests of the lab, each with a
real kernel, in the same run.

    make lab && .venv/bin/python bench/replication.py [--messages N] [--sessions S] [--release R]
                                                        [--rounds local,nfs,drbd,pacemaker]

Two guests, rep1 and rep2, of Debian 13 (or ``--release``), take mail with Dovecot's LMTP
onto /var/vmail, which is in turn:

  local  ext4 on rep1's own disk: what one host of a dsync pair writes before replying
         (its replication to the peer runs afterwards, asynchronously)
  nfs    ext4 on rep2 exported over NFS 4.2 (sync) and mounted by rep1, with Dovecot's
         NFS settings: the shared filesystem of Dovecot's upgrade notes
  drbd   ext4 on DRBD protocol C: each write reaches rep2's disk before it returns

and last, as the choice (docs/ha.md) would run it, DRBD promoted by Pacemaker: a promotable
clone of DRBD, /var/vmail mounted and Dovecot started on the promoted node, Corosync with
1 s tokens, two nodes (``two_node``: the survivor keeps quorum).

This machine delivers N messages of 4 KiB over S LMTP sessions to rep1 and prints messages
per second. For nfs and drbd, rep1 is then crashed (its QEMU killed) in the middle of a
delivery run and rep2 takes over (nfs: mounts the export itself; drbd: is promoted as soon
as DRBD lets it): printed are the seconds from the crash until rep2 accepted a message and
how many messages rep1 had acknowledged that rep2 does not hold. Last, the two DRBD nodes
are made primary while apart, each takes a message, and they are reconnected: printed is
whether DRBD detected the split brain and refused to resync either way. Then Pacemaker
runs the pair and the node it put the mail on is crashed under load: printed are the seconds
until the other took a message, the messages lost, the survivor's journal of its takeover,
and what starting a process costs on the guest and on this machine (the resource agents are
shell scripts). The bench leaves out what production adds and that would not change these
figures: fencing (DRBD's ``fencing resource-only`` with its Pacemaker handler) and a third
quorum vote (``corosync-qnetd``).
"""

import argparse
import smtplib
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import arguments, running_lab, write_json  # noqa: E402
from mailstack.lab import Lab  # noqa: E402
from mailstack.lab.hosts import VirtualMachine  # noqa: E402
from mailstack.lab.proxy import PORT as PROXY_PORT  # noqa: E402
from mailstack.lab.system import progress  # noqa: E402
from tests.lab import faults  # noqa: E402

GUESTS = {"rep1": "10.77.0.35", "rep2": "10.77.0.36"}
MEMORY, DISK = 1 << 30, 1 << 30
BODY = ("x" * 76 + "\n") * 52  # about 4 KiB
MKFS = "mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0"
PACKAGES = ("dovecot-core dovecot-lmtpd drbd-utils nfs-kernel-server"
            " pacemaker pacemaker-cli-utils corosync resource-agents")

LMTP_LISTENER = """service lmtp {
  inet_listener lmtp {
    port = 24
  }
}
log_path = /var/log/dovecot.log
!include_try /etc/dovecot/nfs.conf
"""
# Dovecot's LMTP onto /var/vmail for any user, in each release's configuration language.
DOVECOT = {
    "bookworm": """protocols = lmtp
listen = *
ssl = no
mail_location = maildir:/var/vmail/%d/%n/Maildir
first_valid_uid = 5000
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = uid=5000 gid=5000 home=/var/vmail/%d/%n
}
""" + LMTP_LISTENER,
    "trixie": """dovecot_config_version = 2.4.1
dovecot_storage_version = 2.4.1
protocols = lmtp
listen = *
ssl = no
mail_driver = maildir
mail_path = ~/Maildir
mail_home = /var/vmail/%{user | domain}/%{user | username}
mail_uid = 5000
mail_gid = 5000
first_valid_uid = 5000
postmaster_address = postmaster@bench.test
passdb static {
  driver = static
  password = unused
}
userdb static {
  driver = static
}
""" + LMTP_LISTENER,
}
# Dovecot's settings for mail on NFS when one server at a time uses a mailbox (its docs' "NFS"
# page; mail_nfs_storage and mail_nfs_index are for several at once).
NFS_SETTINGS = "mmap_disable = yes\nmail_fsync = always\n"
EXPORT = "/srv/export"
# A client that dies holds its locks until its lease ends; a restarted server takes no new
# locks for the grace period. Both are 90 s by default; 15 s is what an HA pair would set.
NFS_SERVER = "[nfsd]\nlease-time=15\ngrace-time=15\n"

DRBD = """resource {name} {{
  net {{
    protocol C;
    ping-int 1;
    after-sb-0pri disconnect;
    after-sb-1pri disconnect;
    after-sb-2pri disconnect;
  }}
{hosts}}}
"""
DRBD_HOST = "  on {name} {{ device {device}; disk {disk}; address {address}:{port}; meta-disk internal; }}\n"
# r0 for the measurements above; r1, on the disk the local and NFS rounds used, for Pacemaker's.
RESOURCES = {"r0": ("/dev/drbd0", "/dev/vdb", 7789), "r1": ("/dev/drbd1", "/dev/vdc", 7790)}

COROSYNC = """totem {{
  version: 2
  cluster_name: bench
  transport: knet
  token: 1000
  crypto_cipher: none
  crypto_hash: none
}}
nodelist {{
{nodes}}}
quorum {{
  provider: corosync_votequorum
  two_node: 1
}}
"""
COROSYNC_NODE = "  node {{\n    name: {name}\n    nodeid: {number}\n    ring0_addr: {address}\n  }}\n"
# The resources: DRBD's r1 as a promotable clone; /var/vmail and Dovecot, in that order, on
# the promoted node only, once it is promoted.
CIB_RESOURCES = """<resources>
  <clone id="vmail-drbd">
    <meta_attributes id="vmail-drbd-meta">
      <nvpair id="vmail-drbd-promotable" name="promotable" value="true"/>
      <nvpair id="vmail-drbd-promoted-max" name="promoted-max" value="1"/>
      <nvpair id="vmail-drbd-clone-max" name="clone-max" value="2"/>
      <nvpair id="vmail-drbd-notify" name="notify" value="true"/>
    </meta_attributes>
    <primitive id="drbd-r1" class="ocf" provider="linbit" type="drbd">
      <instance_attributes id="drbd-r1-params">
        <nvpair id="drbd-r1-resource" name="drbd_resource" value="r1"/>
      </instance_attributes>
      <operations>
        <op id="drbd-r1-monitor-promoted" name="monitor" interval="2s" role="Promoted"/>
        <op id="drbd-r1-monitor-unpromoted" name="monitor" interval="3s" role="Unpromoted"/>
      </operations>
    </primitive>
  </clone>
  <group id="mail">
    <primitive id="vmail-filesystem" class="ocf" provider="heartbeat" type="Filesystem">
      <instance_attributes id="vmail-filesystem-params">
        <nvpair id="vmail-filesystem-device" name="device" value="/dev/drbd1"/>
        <nvpair id="vmail-filesystem-directory" name="directory" value="/var/vmail"/>
        <nvpair id="vmail-filesystem-fstype" name="fstype" value="ext4"/>
      </instance_attributes>
    </primitive>
    <primitive id="dovecot" class="systemd" type="dovecot">
      <operations>
        <op id="dovecot-monitor" name="monitor" interval="5s"/>
      </operations>
    </primitive>
  </group>
</resources>
"""
CIB_CONSTRAINTS = """<constraints>
  <rsc_colocation id="mail-on-promoted" score="INFINITY" rsc="mail" with-rsc="vmail-drbd" with-rsc-role="Promoted"/>
  <rsc_order id="mail-after-promotion" first="vmail-drbd" first-action="promote" then="mail" then-action="start"/>
</constraints>
"""

# Where the survivor's takeover time goes, by its own clock: the peer lost (Corosync, DRBD),
# then what Pacemaker did.
TAKEOVER_STEPS = ("journalctl -o short-precise --since -5min --no-pager | grep -E"
                  " 'is down|new membership|PingAck|Result of (promote|start)' || true")

# Microseconds per start of a process, 200 in a row: what a shell-script resource agent pays
# for each command it runs, on a guest and on this machine.
PROCESS_START = ("start=$(date +%s%N); for i in $(seq 200); do /bin/true; done;"
                 " echo $(( ($(date +%s%N) - start) / 200000 ))")


class Guest:
    """One guest of this bench: booted on the lab's bridge, reached with the lab's key."""

    def __init__(self, lab: Lab, name: str, address: str, release: str):
        self.lab, self.name, self.address = lab, name, address
        self.vm: VirtualMachine = lab.guest(name, address, release, MEMORY, disks=2, disk_size=DISK)

    def boot(self) -> None:
        self.vm.start(self.lab.settings.bridge)

    def wait_for_ssh(self) -> None:
        faults.wait_for(self.vm.ssh_ready, 600, f"{self.name} answers SSH", 1)

    def run(self, command: str, timeout: float = 900) -> str:
        result = self.lab.run(self.vm, command, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{self.name}: {command!r} failed: {result.stderr.strip()[-500:]}")
        return result.stdout

    def prepare(self) -> None:
        """Dovecot, DRBD's tools and the NFS server from Debian, through the lab's apt proxy."""
        self.wait_for_ssh()
        proxy = f"http://{self.lab.settings.address.ip}:{PROXY_PORT}"
        self.run(
            f"echo 'Acquire::http::Proxy \"{proxy}\";' > /etc/apt/apt.conf.d/01proxy && apt-get -q update"
            f" && DEBIAN_FRONTEND=noninteractive apt-get -qy install --no-install-recommends {PACKAGES}"
            " && systemctl stop dovecot && (getent group vmail || groupadd -g 5000 vmail)"
            " && (getent passwd vmail || useradd -u 5000 -g 5000 -M -d /var/vmail vmail)"
            f" && mkdir -p /var/vmail {EXPORT} && modprobe drbd && modprobe nfsd",
            timeout=2400,  # two guests under TCG: Pacemaker's packages alone take minutes
        )
        self.run(f"cat > /etc/dovecot/dovecot.conf <<'EOF'\n{DOVECOT[self.vm.release]}EOF")
        for resource, (device, disk, port) in RESOURCES.items():
            hosts = "".join(DRBD_HOST.format(name=name, address=address, device=device, disk=disk, port=port)
                            for name, address in GUESTS.items())
            self.run(f"cat > /etc/drbd.d/{resource}.res <<'EOF'\n{DRBD.format(name=resource, hosts=hosts)}EOF")
        # Pacemaker's, when its turn comes.
        self.run("systemctl disable --now corosync pacemaker")

    def serve(self, nfs: bool = False) -> None:
        """Dovecot on whatever /var/vmail is now, with the NFS settings when it is NFS."""
        settings = f"printf '{NFS_SETTINGS}' >" if nfs else "rm -f"
        self.run(f"{settings} /etc/dovecot/nfs.conf && chown vmail:vmail /var/vmail && systemctl restart dovecot")

    def crash(self) -> None:
        self.vm.crash()

    def remove(self) -> None:
        self.vm.remove()

    def message_ids(self) -> set[str]:
        found = self.run("grep -rhoa '^Message-ID: <[^>]*>' /var/vmail/*/*/Maildir/new || true")
        return {line.split("<", 1)[1].rstrip(">") for line in found.splitlines()}


class Deliveries:
    """``sessions`` LMTP sessions delivering to one guest, ``count`` messages in all or until
    the block ends; ``acknowledged`` holds the Message-ID of each message the guest took."""

    def __init__(self, address: str, sessions: int, tag: str, count: int | None = None):
        self.address, self.tag, self.count = address, tag, count
        self.issued = 0
        self.acknowledged: list[str] = []
        self.errors: list[str] = []
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._session, args=(index,)) for index in range(sessions)]

    def __enter__(self):
        self.started = time.monotonic()
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_):
        self.stopping.set()
        self.join()

    def join(self) -> None:
        for thread in self.threads:
            thread.join()
        self.seconds = time.monotonic() - self.started

    def _next_id(self) -> str | None:
        with self.lock:
            if self.stopping.is_set() or self.issued == self.count:
                return None
            self.issued += 1
            return f"{self.tag}-{self.issued}@bench.test"

    def _session(self, session: int) -> None:
        try:
            with smtplib.LMTP(self.address, 24, timeout=30) as lmtp:
                while message_id := self._next_id():
                    deliver(lmtp, session, message_id)
                    with self.lock:
                        self.acknowledged.append(message_id)
        except (OSError, smtplib.SMTPException) as error:
            self.errors.append(f"session {session}: {error}")


def deliver(lmtp: smtplib.LMTP, user: int, message_id: str) -> None:
    message = f"Message-ID: <{message_id}>\nSubject: {message_id}\n\n{BODY}"
    lmtp.sendmail("bench@bench.test", [f"u{user}@bench.test"], message)


def throughput(guest: Guest, messages: int, sessions: int, tag: str) -> float:
    """Messages per second, after a first message (which waits out an NFS server's grace period)."""
    first_delivery(guest, time.monotonic(), f"{tag}-first")
    progress(f"{tag}: {messages} messages over {sessions} LMTP sessions")
    with Deliveries(guest.address, sessions, tag, messages) as run:
        run.join()
    if run.errors or len(run.acknowledged) != messages:
        raise RuntimeError(f"{tag}: {len(run.acknowledged)} of {messages} delivered: {run.errors[:3]}")
    progress(f"{tag}: {messages / run.seconds:.1f} msg/s")
    return messages / run.seconds


def first_delivery(guest: Guest, since: float, message_id: str) -> float:
    """Seconds from ``since`` until ``guest`` takes a message over LMTP."""
    while True:
        try:
            with smtplib.LMTP(guest.address, 24, timeout=120) as lmtp:
                deliver(lmtp, 0, f"{message_id}@bench.test")
            return time.monotonic() - since
        except (OSError, smtplib.SMTPException):
            time.sleep(0.1)


def failover(rep1: Guest, rep2: Guest, sessions: int, take_over, tag: str) -> dict:
    """Crash rep1 while it takes mail, let ``take_over`` make rep2 serve, and count what rep1
    had acknowledged that rep2 does not hold."""
    progress(f"{tag}: {rep1.name} crashes under load, {rep2.name} takes over")
    with Deliveries(rep1.address, sessions, tag) as load:
        faults.wait_for(lambda: len(load.acknowledged) >= 100, 300, f"{tag}: mail before the crash", 0.2)
        crashed = time.monotonic()
        rep1.crash()
        take_over()
        takeover = first_delivery(rep2, crashed, f"{tag}-after")
    lost = set(load.acknowledged) - rep2.message_ids()
    return {"takeover_seconds": round(takeover, 2), "acknowledged": len(load.acknowledged), "lost": len(lost)}


def versions(guest: Guest) -> dict:
    kernel, dovecot, drbd = guest.run("uname -r; dovecot --version; modinfo -F version drbd").split("\n")[:3]
    return {"kernel": kernel, "dovecot": dovecot.split()[0], "drbd": drbd}


def reboot(guest: Guest) -> None:
    guest.boot()
    guest.wait_for_ssh()
    guest.run("systemctl stop dovecot && modprobe drbd && modprobe nfsd")


def measure_local(rep1: Guest, messages: int, sessions: int) -> float:
    rep1.run(f"{MKFS} /dev/vdc && mount /dev/vdc /var/vmail")
    rep1.serve()
    rate = throughput(rep1, messages, sessions, "local")
    rep1.run("systemctl stop dovecot && umount /var/vmail")
    return rate


def measure_nfs(rep1: Guest, rep2: Guest, messages: int, sessions: int) -> tuple[float, dict]:
    rep2.run(f"{MKFS} /dev/vdc && mount /dev/vdc {EXPORT} && chown vmail:vmail {EXPORT}"
             f" && printf '{NFS_SERVER}' > /etc/nfs.conf.d/lease.conf && systemctl restart nfs-server"
             f" && exportfs -o rw,sync,no_root_squash,no_subtree_check {rep1.address}:{EXPORT}")
    rep1.run(f"mount -t nfs4 -o vers=4.2,hard {rep2.address}:{EXPORT} /var/vmail")
    rep1.serve(nfs=True)
    rate = throughput(rep1, messages, sessions, "nfs")

    def take_over():
        rep2.run(f"mount --bind {EXPORT} /var/vmail")
        rep2.serve()

    crash = failover(rep1, rep2, sessions, take_over, "nfs-failover")
    rep2.run(f"systemctl stop dovecot && umount /var/vmail && exportfs -ua && umount {EXPORT}")
    return rate, crash


def measure_drbd(rep1: Guest, rep2: Guest, messages: int, sessions: int) -> tuple[float, dict]:
    """Both disks are empty: DRBD is told so (``--clear-bitmap``) instead of copying them."""
    for guest in (rep1, rep2):
        guest.run("drbdadm -- --force create-md r0 && drbdadm up r0")
    faults.wait_for(lambda: rep1.run("drbdadm cstate r0").strip() == "Connected", 120, "DRBD connects", 0.5)
    rep1.run(f"drbdadm -- --clear-bitmap new-current-uuid r0 && drbdadm primary r0 && {MKFS} /dev/drbd0"
             " && mount /dev/drbd0 /var/vmail")
    rep1.serve()
    rate = throughput(rep1, messages, sessions, "drbd")

    def take_over():
        rep2.run("until drbdadm primary r0 2>/dev/null; do sleep 0.1; done; mount /dev/drbd0 /var/vmail")
        rep2.serve()

    return rate, failover(rep1, rep2, sessions, take_over, "drbd-failover")


def split_brain(rep1: Guest, rep2: Guest) -> dict:
    """rep1 comes back after its crash and resyncs from rep2; then both are made primary while
    disconnected, each writes, and they reconnect."""
    progress("drbd: rep1 comes back and resyncs; then a split brain")
    started = time.monotonic()
    rep1.run("drbdadm up r0")
    faults.wait_for(lambda: rep1.run("drbdadm dstate r0").strip() == "UpToDate/UpToDate", 600,
                    "rep1 resyncs from rep2", 1)
    resync = time.monotonic() - started
    for guest in (rep1, rep2):
        guest.run("drbdadm disconnect r0")
    rep1.run("drbdadm primary r0 && mount /dev/drbd0 /var/vmail && touch /var/vmail/written-on-rep1 && sync")
    rep2.run("touch /var/vmail/written-on-rep2 && sync")
    for guest in (rep1, rep2):
        guest.run("drbdadm connect r0")
    time.sleep(5)
    states = {guest.name: guest.run("drbdadm cstate r0").strip() for guest in (rep1, rep2)}
    said = any("Split-Brain detected" in guest.run("dmesg") for guest in (rep1, rep2))
    return {"comeback_resync_seconds": round(resync, 1), "connection_states": states, "detected": said,
            "refused": all(state == "StandAlone" for state in states.values())}


def measure_pacemaker(rep1: Guest, rep2: Guest, sessions: int) -> dict:
    """DRBD's r1 (empty disks, a new filesystem) run by Pacemaker; the node holding the mail
    crashes under load."""
    guests = (rep1, rep2)
    progress("drbd+pacemaker: Corosync and Pacemaker take DRBD, /var/vmail and Dovecot")
    nodes = "".join(COROSYNC_NODE.format(name=guest.name, number=number, address=guest.address)
                    for number, guest in enumerate(guests, 1))
    for guest in guests:
        guest.run("systemctl disable --now dovecot; umount /var/vmail; drbdadm down r0;"
                  " wipefs -a -q /dev/vdc && drbdadm -- --force create-md r1 && drbdadm up r1"
                  f" && cat > /etc/corosync/corosync.conf <<'EOF'\n{COROSYNC.format(nodes=nodes)}EOF")
    faults.wait_for(lambda: rep1.run("drbdadm cstate r1").strip() == "Connected", 120, "DRBD r1 connects", 0.5)
    rep1.run(f"drbdadm -- --clear-bitmap new-current-uuid r1 && drbdadm primary r1 && {MKFS} /dev/drbd1"
             " && mount /dev/drbd1 /var/vmail && chown vmail:vmail /var/vmail && umount /var/vmail")
    for guest in guests:
        guest.run("drbdadm down r1 && systemctl start corosync pacemaker")
    faults.wait_for(lambda: "Online: [ rep1 rep2 ]" in rep1.run("crm_mon -1"), 300, "both nodes online", 1)
    rep1.run("crm_attribute --type crm_config --name stonith-enabled --update false"
             f" && cat > /root/resources.xml <<'EOF'\n{CIB_RESOURCES}EOF\n"
             f"cat > /root/constraints.xml <<'EOF'\n{CIB_CONSTRAINTS}EOF\n"
             "cibadmin --replace --scope resources --xml-file /root/resources.xml"
             " && cibadmin --replace --scope constraints --xml-file /root/constraints.xml && crm_verify -L")
    faults.wait_for(lambda: "is running on" in rep1.run("crm_resource --locate --resource dovecot"), 300,
                    "Pacemaker starts the mail", 1)
    holder = rep1.run("crm_resource --locate --resource dovecot").split()[-1]
    active, standby = (rep1, rep2) if holder == rep1.name else (rep2, rep1)
    # Started, for Pacemaker, may come before Dovecot listens: sessions that found no listener
    # ended at once, and the load never came (the round's first run).
    first_delivery(active, time.monotonic(), "pacemaker-first")
    crash = failover(active, standby, sessions, lambda: None, "pacemaker-failover")
    here = subprocess.run(["sh", "-c", PROCESS_START], capture_output=True, text=True, check=True).stdout
    starts = {"guest": int(standby.run(PROCESS_START)) / 1000, "this machine": int(here) / 1000}
    return crash | {"timeline": standby.run(TAKEOVER_STEPS).splitlines(), "process_start_ms": starts}


ROUNDS = ["local", "nfs", "drbd", "pacemaker"]


def rounds(text: str) -> list[str]:
    chosen = text.split(",")
    if unknown := [name for name in chosen if name not in ROUNDS]:
        raise argparse.ArgumentTypeError(f"no round {', '.join(unknown)}; the rounds are {','.join(ROUNDS)}")
    return chosen


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--messages", type=int, default=1000, help="messages per storage (default 1000)")
    parser.add_argument("--sessions", type=int, default=8, help="concurrent LMTP sessions (default 8)")
    parser.add_argument("--release", choices=sorted(DOVECOT), default="trixie", help="the guests' Debian release")
    parser.add_argument("--rounds", type=rounds, default=ROUNDS,
                        help=f"which to run, in this order (default all: {','.join(ROUNDS)})")
    options = parser.parse_args()
    lab = running_lab(options.inventory)
    rep1, rep2 = guests = [Guest(lab, name, address, options.release) for name, address in GUESTS.items()]
    rates, crashes, brain = {}, {}, None
    try:
        progress(f"booting rep1 and rep2 (Debian {options.release}), then installing Dovecot, DRBD, NFS and Pacemaker")
        for guest in guests:
            guest.boot()
        with ThreadPoolExecutor() as pool:
            list(pool.map(Guest.prepare, guests))
        found = versions(rep1)
        if "local" in options.rounds:
            rates["local"] = measure_local(rep1, options.messages, options.sessions)
        if "nfs" in options.rounds:
            rates["nfs"], crashes["nfs"] = measure_nfs(rep1, rep2, options.messages, options.sessions)
            reboot(rep1)
        if "drbd" in options.rounds:
            rates["drbd"], crashes["drbd"] = measure_drbd(rep1, rep2, options.messages, options.sessions)
            reboot(rep1)
            brain = split_brain(rep1, rep2)
        if "pacemaker" in options.rounds:
            crashes["drbd+pacemaker"] = measure_pacemaker(rep1, rep2, options.sessions)
    finally:
        for guest in guests:
            guest.remove()
    print(f"Debian {options.release} guests: kernel {found['kernel']}, Dovecot {found['dovecot']},"
          f" DRBD {found['drbd']}")
    if rates:
        print(f"{options.messages} messages of 4 KiB over {options.sessions} LMTP sessions, per storage of /var/vmail:")
        print(f"{'storage':8} {'msg/s':>7} {'vs local':>9}")
        for storage, rate in rates.items():
            versus = f"{rate / rates['local']:9.2f}" if "local" in rates else f"{'-':>9}"
            print(f"{storage:8} {rate:7.1f} {versus}")
    if crashes:
        print(f"\n{'crash':14} {'takeover s':>11} {'acknowledged':>13} {'lost':>5}")
        for storage, crash in crashes.items():
            print(f"{storage:14} {crash['takeover_seconds']:11.2f} {crash['acknowledged']:13} {crash['lost']:5}")
    if pacemaker := crashes.get("drbd+pacemaker"):
        for step in pacemaker["timeline"]:
            print(f"  {step}")
        starts = pacemaker["process_start_ms"]
        print(f"a process start, which the resource agents pay per command: {starts['guest']:.1f} ms on the"
              f" surviving guest, {starts['this machine']:.1f} ms on this machine")
    if brain:
        print(f"\nDRBD: the crashed node came back and resynced in {brain['comeback_resync_seconds']} s;"
              f" split brain detected: {brain['detected']}, refused: {brain['refused']}"
              f" ({brain['connection_states']})")
    write_json(options.json, {"release": options.release, "versions": found,
                              "messages": options.messages, "sessions": options.sessions, "msg_per_second": rates,
                              "crash": crashes, "drbd_split_brain": brain})
    return 0


if __name__ == "__main__":
    sys.exit(main())
