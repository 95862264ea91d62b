"""`python -m lab.sandbox.runas ACCOUNT -- PROGRAM ARGS...`: root starts a program as an ordinary
account (a trainer starting a trainee's lab: `lab start --for`), with that account's groups,
home and environment.

It runs in a mount namespace of its own in which the lab's code (this Python and its
package) can be reached even where it lies under a folder the account may not pass, as a
checkout under /root would: that folder is covered by an empty tmpfs with the code bound
back in, read-only, at its own path. Nothing else of the host changes for the account.
Standard library only.
"""
from __future__ import annotations

import os
import pwd
import sys
from pathlib import Path

from lab.sandbox import bind_in, kernel, overlays, python_paths


def main(argv: list[str]) -> None:
    if os.geteuid() != 0 or len(argv) < 3 or argv[1] != "--":
        sys.exit("usage (root only): python -m lab.sandbox.runas ACCOUNT -- PROGRAM ARGS...")
    try:
        account = pwd.getpwnam(argv[0])
    except KeyError:
        sys.exit(f"no account '{argv[0][:40]}'")
    if account.pw_uid == 0:
        sys.exit("runas is for ordinary accounts, not root")
    groups = os.getgrouplist(account.pw_name, account.pw_gid)
    code = list(python_paths())
    kernel.unshare(kernel.CLONE_NEWNS)
    kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)
    # opened in the new namespace (a bind's source must be a mount of it), before anything is covered
    fds = {path: os.open(path, os.O_PATH | os.O_DIRECTORY) for path in code}
    bind_in(fds, overlays(code, account.pw_uid, set(groups), scratch=()))
    os.setgroups(groups)
    os.setresgid(account.pw_gid, account.pw_gid, account.pw_gid)
    os.setresuid(account.pw_uid, account.pw_uid, account.pw_uid)
    home = Path(account.pw_dir)
    os.chdir(home if home.is_dir() else "/")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUDO_", "XDG_"))}
    env.update(HOME=str(home), USER=account.pw_name, LOGNAME=account.pw_name)
    os.execvpe(argv[2], argv[2:], env)


if __name__ == "__main__":
    main(sys.argv[1:])
