"""Who a lab runs as on the host: an ordinary account and its subordinate ids, never root.

Inside a lab, root (uid 0) is the account that started it, and ids 1..N are that
account's subordinate range from /etc/subuid and /etc/subgid (tcpdump and charon change
groups, so one id is not enough). When `lab` is started by root, the lab runs as the
system account LAB_ACCOUNT instead, which `make setup` creates with a range of its own:
nothing of a lab is host root, CI's runs included.

Standard library only: `python3 -m lab.sandbox` and `lab doctor` run before anything else.
"""
from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path

LAB_ACCOUNT = "ipsec-lab"  # made by `make setup`, the account labs started by root run as
SUBUID, SUBGID = Path("/etc/subuid"), Path("/etc/subgid")
MIN_RANGE = 65536  # ids 0..65535 inside: every account a Debian system uses (nobody is 65534)


class SandboxUnavailable(Exception):
    """The machine cannot give this account a lab sandbox; the message says what to run."""


@dataclass(frozen=True)
class Range:
    start: int
    count: int


@dataclass(frozen=True)
class LabIdentity:
    """The host ids a lab maps to: uid/gid of the account (root inside), then its ranges."""

    name: str
    uid: int
    gid: int
    subuids: Range
    subgids: Range
    privileged_writer: bool  # root writes the maps itself; an account uses newuidmap/newgidmap

    def uid_map(self) -> str:
        return f"0 {self.uid} 1\n1 {self.subuids.start} {self.subuids.count - 1}\n"

    def gid_map(self) -> str:
        return f"0 {self.gid} 1\n1 {self.subgids.start} {self.subgids.count - 1}\n"

    def map_args(self, pid: int) -> tuple[list[str], list[str]]:
        """newuidmap and newgidmap arguments for process `pid`."""
        def args(outer: int, sub: Range) -> list[str]:
            return [str(pid), "0", str(outer), "1", "1", str(sub.start), str(sub.count - 1)]
        return args(self.uid, self.subuids), args(self.gid, self.subgids)


def _range(path: Path, name: str, number: int) -> Range | None:
    """The account's first range in /etc/subuid-style `path` (entries by name or by number)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        owner, _, rest = line.partition(":")
        start, _, count = rest.partition(":")
        if owner in (name, str(number)) and start.isdigit() and count.isdigit() and int(count) >= MIN_RANGE:
            return Range(int(start), MIN_RANGE)
    return None


def setup_command(name: str) -> str:
    return (f"as root, in the lab's checkout: make system ACCOUNTS={name}   (or by hand: usermod --add-subuids "
            f"FIRST-LAST --add-subgids FIRST-LAST {name}, a free range of 65536)")


def lab_identity() -> LabIdentity:
    """The identity of labs this process starts."""
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam(LAB_ACCOUNT)
        except KeyError:
            raise SandboxUnavailable(f"labs started by root run as the account '{LAB_ACCOUNT}', which does not "
                                     f"exist; create it with: make setup") from None
        name, uid, gid, privileged = LAB_ACCOUNT, account.pw_uid, account.pw_gid, True
    else:
        uid, gid = os.geteuid(), os.getegid()
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = str(uid)
        privileged = False
    subuids, subgids = _range(SUBUID, name, uid), _range(SUBGID, name, gid) or _range(SUBGID, name, uid)
    if subuids is None or subgids is None:
        which = " and ".join(str(p) for p, r in ((SUBUID, subuids), (SUBGID, subgids)) if r is None)
        raise SandboxUnavailable(f"the account '{name}' has no range of at least {MIN_RANGE} subordinate ids "
                                 f"in {which}; a lab maps its ids there. Fix: {setup_command(name)}")
    return LabIdentity(name, uid, gid, subuids, subgids, privileged)


def hand_to_lab(folder: Path) -> None:
    """A folder this process made, for a lab to write: when root made it, the lab's account owns it."""
    if os.geteuid() == 0:
        lab = lab_identity()
        os.chown(folder, lab.uid, lab.gid)
