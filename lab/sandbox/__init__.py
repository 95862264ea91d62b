"""Every lab in a kernel sandbox of its own: user, mount, PID, network, IPC and UTS namespaces.

Why these and not fewer:
- user: root inside (Mininet, charon, tcpdump need it) is an ordinary account outside
  (lab.sandbox.identity): a node's root cannot read a root-only host file, signal another
  account's process or enter another account's lab.
- mount: the host's file system is read-only inside, with a private /tmp, /run and
  /dev/shm; only the folders the lab writes (its results) are writable.
- PID: the lab's first process is the namespace's init. When it dies, by any signal, a
  crash or the OOM killer, the kernel ends every process of the lab, and with the last
  of them go the lab's network namespaces, links, TUN devices and mounts: nothing is left
  behind by construction, not by bookkeeping.
- network: nothing of a lab appears in the host's namespace, not even for a moment.

Why Python's own system calls (lab.sandbox.kernel) rather than `unshare` or `bwrap`: a
phase worker is forked from a process that has the lab imported (lab.run.worker), so the
sandbox must be entered by a running Python, not by exec'ing a wrapper; bubblewrap maps a
single id (tcpdump and charon change groups), and util-linux `unshare` cannot make the
host read-only. Only newuidmap/newgidmap (Debian's uidmap) are used, as `unshare
--map-auto` uses them, because only they may map an account's subordinate ids.

The process that enters stays outside as the sandbox's parent, passing signals in and its
exit status out; its child is the init (reaps orphans, passes signals on); the init's child
returns from `enter` and does the work. Standard library only.
"""
from __future__ import annotations

import os
import resource
import select
import signal
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lab.sandbox import kernel
from lab.sandbox.identity import LabIdentity, SandboxUnavailable, lab_identity

__all__ = ["View", "enter", "outer_pid", "join_argv", "SandboxUnavailable", "lab_identity", "LabIdentity",
           "python_paths", "search_path"]

NEWUIDMAP, NEWGIDMAP = "/usr/bin/newuidmap", "/usr/bin/newgidmap"
SCRATCH = ("/tmp", "/run", "/dev/shm")  # private and empty in every sandbox
NAMESPACES = (kernel.CLONE_NEWUSER | kernel.CLONE_NEWNS | kernel.CLONE_NEWPID | kernel.CLONE_NEWNET
              | kernel.CLONE_NEWIPC | kernel.CLONE_NEWUTS)
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
NSENTER = "/usr/bin/nsenter"
# A root's search path, ahead of the account's own: Mininet and the lab's nodes run ifconfig, ip,
# nft, sysctl... by name, and an ordinary account's login PATH has no sbin.
ROOT_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
_outer: int | None = None  # in a sandbox: the host's number of the process waiting outside it


@dataclass(frozen=True)
class View:
    """What of the host a sandbox sees besides the read-only file system: folders it writes
    (the lab's results), and folders it must read that the lab's account may not reach (a
    checkout under /root, when root started the lab). Absolute paths, existing folders."""

    writable: tuple[Path, ...] = ()
    readable: tuple[Path, ...] = field(default_factory=lambda: python_paths())
    # The highest SCHED_FIFO priority the lab may give its processes (captures ahead of the rest):
    # in a user namespace only the RLIMIT_RTPRIO set before it allows that, and only root may raise it.
    realtime_priority: int = 10


def python_paths() -> tuple[Path, ...]:
    """This Python and the lab's package: what a sandbox runs `python -m lab...` from."""
    package = Path(__file__).resolve().parent.parent.parent
    found = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, package)}
    return tuple(sorted(p for p in found if p.is_dir()))


def enter(view: View, identity: LabIdentity | None = None) -> None:
    """Move this (single-threaded) process into a new sandbox. Returns in the sandbox's worker
    process, as root of its user namespace; the process that called it never returns: it
    waits outside and exits with the worker's status. Raises SandboxUnavailable (nothing made)
    when the machine or the account cannot have one."""
    identity = identity or lab_identity()
    paths = [*view.writable, *view.readable]
    for path in paths:
        if not path.is_absolute() or not path.is_dir():
            raise SandboxUnavailable(f"{path}: not an absolute path of an existing folder")
    _allow_realtime(view.realtime_priority)
    follows = kernel.parent_death_signal(), os.getppid()
    _enter_namespaces(identity)
    # Opened while this process still has its host ids (root may pass folders the lab's account
    # may not), then bound in from these wherever they end up covered.
    fds = {path: os.open(path, os.O_PATH | os.O_DIRECTORY) for path in paths}
    covered = overlays(paths, identity.uid, {identity.gid})
    # Root of the namespace before anything is made: a file made by an unmapped id is refused.
    os.setgroups([])
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    if follows[0]:  # changing ids cleared it: this process follows its parent again
        kernel.die_with_parent(follows[0])
        if os.getppid() != follows[1]:
            os._exit(1)  # the parent went while it was cleared
    _make_view(fds, covered, set(view.writable))
    os.chdir("/")
    os.environ["PATH"] = search_path(os.environ.get("PATH", ""))
    global _outer
    _outer = os.getpid()  # still the host's number: this process stays outside the new PID namespace
    _become_init_and_worker()


def search_path(given: str) -> str:
    """PATH in a sandbox: root's folders first, then the rest of `given`."""
    rest = [p for p in given.split(os.pathsep) if p and p not in ROOT_PATH]
    return os.pathsep.join([*ROOT_PATH, *dict.fromkeys(rest)])


def _allow_realtime(priority: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_RTPRIO)
    wanted = min(priority, hard) if os.geteuid() != 0 else priority
    if wanted > soft:
        try:
            resource.setrlimit(resource.RLIMIT_RTPRIO, (wanted, max(wanted, hard)))
        except (ValueError, OSError):
            pass  # the lab runs all the same, its captures at normal priority


def outer_pid() -> int | None:
    """Inside a sandbox, the host pid through which it is entered (see `join_argv`); else None."""
    return _outer


def join_argv(outer: int) -> list[str]:
    """The command that joins the sandbox of process `outer` (user, mount, network and PID
    namespaces, as its root) from the host; what follows it runs inside. Only the account that
    started the sandbox, and root, may: the kernel refuses anyone else."""
    return [NSENTER, f"--target={outer}", "--user", "--mount", "--net", f"--pid=/proc/{outer}/ns/pid_for_children",
            "--"]


def _enter_namespaces(identity: LabIdentity) -> None:
    """unshare, with the id maps written from outside (a process may not map itself)."""
    go_r, go_w = os.pipe()
    done_r, done_w = os.pipe()
    helper = os.fork()
    if helper == 0:  # outside: waits for the namespace, then writes its maps
        os.close(go_w)
        os.close(done_r)
        code = 1
        try:
            if os.read(go_r, 1) == b"1":
                _write_maps(os.getppid(), identity)
                code = 0
        except BaseException as exc:  # reported through the pipe, then the parent raises
            os.write(done_w, str(exc).encode()[:500])
        finally:
            os._exit(code)
    os.close(go_r)
    os.close(done_w)
    try:
        kernel.unshare(NAMESPACES)
    except OSError as exc:
        os.write(go_w, b"0")
        os.waitpid(helper, 0)
        raise SandboxUnavailable(f"cannot create the lab's namespaces ({exc}); "
                                 "check `sysctl user.max_user_namespaces` (must be above 0)") from None
    os.write(go_w, b"1")
    os.close(go_w)
    _, status = os.waitpid(helper, 0)
    said = os.read(done_r, 1000).decode(errors="replace")
    os.close(done_r)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SandboxUnavailable(f"cannot map the lab's ids to {identity.name}: {said or 'the helper died'}")


def _write_maps(pid: int, identity: LabIdentity) -> None:
    if identity.privileged_writer:
        Path(f"/proc/{pid}/uid_map").write_text(identity.uid_map())
        Path(f"/proc/{pid}/gid_map").write_text(identity.gid_map())
        return
    uid_args, gid_args = identity.map_args(pid)
    for program, args in ((NEWUIDMAP, uid_args), (NEWGIDMAP, gid_args)):
        proc = subprocess.run([program, *args], capture_output=True, text=True, timeout=10)
        if proc.returncode != 0:
            raise OSError(f"{program} {' '.join(args)}: {proc.stderr.strip()[-300:]}")


def _searchable(path: Path, uid: int, gids: set[int]) -> bool:
    """Whether an account may pass through folder `path` (in a sandbox it has no other group)."""
    st = path.stat()
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid in gids:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def overlays(paths: list[Path], uid: int, gids: set[int], scratch: tuple[str, ...] = SCRATCH) -> list[Path]:
    """Folders to cover with an empty tmpfs so that `paths` below them can be reached: the
    first ancestor of each that the account may not pass (outside the private scratch
    folders, whose tmpfs already makes them reachable); the shallowest of nested ones."""
    points: set[Path] = set()
    for path in paths:
        for ancestor in reversed(path.parents[:-1]):  # from just below / down to the parent
            if str(ancestor) in scratch:
                break
            if not _searchable(ancestor, uid, gids):
                points.add(ancestor)
                break
    return sorted(p for p in points if not any(q in p.parents for q in points))


def _make_view(fds: dict[Path, int], covered: list[Path], writable: set[Path]) -> None:
    """Host read-only and without setuid, private scratch folders, the folders of `fds` bound in."""
    kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)  # nothing propagates back
    kernel.mount_setattr("/", set_=kernel.MOUNT_ATTR_RDONLY | kernel.MOUNT_ATTR_NOSUID, recursive=True)
    for folder in SCRATCH:
        if os.path.isdir(folder):
            kernel.mount("tmpfs", folder, "tmpfs", kernel.MS_NOSUID | kernel.MS_NODEV, "mode=1777")
    bind_in(fds, covered, writable)


def bind_in(fds: dict[Path, int], covered: list[Path], writable: set[Path] = frozenset()) -> None:
    """In this process's own mount namespace: an empty tmpfs over each of `covered`, then each
    folder of `fds` (opened before) bound back at its own path, read-only unless in `writable`."""
    for point in covered:
        kernel.mount("tmpfs", str(point), "tmpfs", kernel.MS_NOSUID | kernel.MS_NODEV, "mode=0755")
    for path, fd in fds.items():
        os.makedirs(path, mode=0o755, exist_ok=True)  # inside a tmpfs when it was covered
        kernel.mount(f"/proc/self/fd/{fd}", str(path), None, kernel.MS_BIND | kernel.MS_REC)
        if path in writable:
            kernel.mount_setattr(str(path), clear=kernel.MOUNT_ATTR_RDONLY)
        else:
            kernel.mount_setattr(str(path), set_=kernel.MOUNT_ATTR_RDONLY)
        os.close(fd)


def _become_init_and_worker() -> None:
    """parent (outside, waits) -> init (PID 1: reaps, passes signals) -> worker (returns)."""
    alive_r, alive_w = os.pipe()  # the init's way to know its parent is still there
    init = os.fork()
    if init != 0:
        os.close(alive_r)
        _wait_and_exit(init)
    os.close(alive_w)
    kernel.die_with_parent(signal.SIGKILL)
    if select.select([alive_r], [], [], 0)[0]:  # the parent died before the line above
        os._exit(1)
    kernel.mount("proc", "/proc", "proc", kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC)
    worker = os.fork()
    if worker == 0:
        os.close(alive_r)
        for sig in FORWARDED:
            signal.signal(sig, signal.SIG_DFL)
        return
    _wait_and_exit(worker, reap_all=True)


def _wait_and_exit(child: int, reap_all: bool = False) -> None:
    """Pass signals to `child`, wait for it (as init: reaping every orphan meanwhile) and exit
    with its status; never returns."""
    for sig in FORWARDED:
        signal.signal(sig, lambda signum, frame: _forward(child, signum))
    while True:
        try:
            pid, status = os.waitpid(-1 if reap_all else child, 0)
        except ChildProcessError:
            os._exit(1)
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            os._exit(code if code >= 0 else 128 - code)


def _forward(child: int, signum: int) -> None:
    try:
        os.kill(child, signum)
    except ProcessLookupError:
        pass
