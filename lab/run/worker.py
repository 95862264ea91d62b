"""A call in a process of its own, forked from this one and entered into a new sandbox.

Every lab runs this way: a phase of `lab run` (lab.run.scheduler starts them side by side),
a serial phase, a benchmark's lab, a test's. A fork of a process that has imported the lab
costs milliseconds (starting a Python and importing it cost 0.4 s of CPU a phase), and the
child gets the validated scenario as it is, without reading any file again. `lab run`
starts no thread before it forks (a fork copies one thread, and a lock another held), and
the child opens its own standard streams.

The child follows its parent: SIGTERM when the parent goes (`lab run` killed, kill -9
included), which tears its lab down; if the child itself is killed, its sandbox goes with
it (lab.sandbox). SIGINT is the parent's to decide: it forwards SIGTERM.
"""
from __future__ import annotations

import os
import pickle
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from lab import sandbox
from lab.exitcodes import ExitCode
from lab.sandbox import kernel


class SandboxedChild:
    """`target(*args)` in a sandboxed child, driven like a Popen. `writable`: the folders it
    writes (its results); `output`: a file descriptor for its standard output and error
    (default: this process's); `returns`: its return value comes back through `result()`."""

    def __init__(self, target: Callable[..., Any], args: tuple = (), writable: tuple[Path, ...] = (),
                 output: int | None = None, returns: bool = False):
        result_r, result_w = os.pipe() if returns else (None, None)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            if result_r is not None:
                os.close(result_r)
            _child(parent, target, args, writable, output, result_w)
        if result_w is not None:
            os.close(result_w)
        self.pid = pid
        self._result = result_r
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if timeout is None:
            if self.returncode is None:
                self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
            return self.returncode
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker {self.pid} still runs after {timeout:g}s")
            time.sleep(0.01)  # a child's exit has no file descriptor to wait on
        return self.returncode

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def result(self) -> Any:
        """The target's return value (blocks until the child has ended). What it raised is raised
        here, with the child's traceback as a note; WorkerFailed when it ended with neither."""
        with os.fdopen(self._result, "rb") as stream:
            data = stream.read()
        code = self.wait()
        if not data:
            raise WorkerFailed(code)
        outcome, value, where = pickle.loads(data)
        if outcome == "raised":
            value.add_note(f"in the sandboxed worker:\n{where}")
            raise value
        return value


class WorkerFailed(Exception):
    def __init__(self, code: int):
        super().__init__(f"the lab's worker process exited ({code})")
        self.code = code


def call(target: Callable[..., Any], *args: Any, writable: tuple[Path, ...] = ()) -> Any:
    """`target(*args)` in a sandboxed child, its return value returned here; Ctrl-C or SIGTERM
    here stops the child first (its lab torn down), then raises KeyboardInterrupt."""
    child = SandboxedChild(target, args, writable, returns=True)
    try:
        return child.result()
    except KeyboardInterrupt:
        child.terminate()
        child.wait()
        raise


def _child(parent: int, target: Callable[..., Any], args: tuple, writable: tuple[Path, ...], output: int | None,
           result: int | None) -> None:
    """The forked child: never returns."""
    code = 1
    try:
        kernel.die_with_parent(signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(1)  # the parent died before the line above
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if output is not None:
            os.dup2(output, 1)
            os.dup2(output, 2)
        # Streams of its own: a lock on the parent's may have been held, by another thread, as it forked.
        sys.stdout = open(1, "w", buffering=1, closefd=False, errors="replace")
        sys.stderr = open(2, "w", buffering=1, closefd=False, errors="replace")
        sandbox.enter(sandbox.View(writable=writable))
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            outcome = ("returned", target(*args), "")
            code = 0
        except Exception as exc:  # the caller's to see (a test's assertion, a LabError)
            outcome = ("raised", exc, traceback.format_exc())
            if result is None:
                traceback.print_exc()
        if result is not None:
            with os.fdopen(result, "wb") as stream:
                try:
                    pickle.dump(outcome, stream)
                except Exception:  # not picklable: its text at least
                    pickle.dump(("raised", RuntimeError(repr(outcome[1])[:2000]), outcome[2]), stream)
    except KeyboardInterrupt:
        code = ExitCode.INTERRUPTED
    except sandbox.SandboxUnavailable as exc:
        print(f"no sandbox for the lab: {exc}", file=sys.stderr)
        code = ExitCode.ENVIRONMENT
    except BaseException:  # the parent reports the exit; the reason is in the output
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
