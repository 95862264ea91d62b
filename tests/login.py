"""Commands started as a person starts them, whatever started the suite."""
import signal

# An ordinary account's search path after login on Debian (login.defs ENV_PATH): no sbin.
LOGIN_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games"


def as_from_a_terminal() -> None:
    """preexec_fn: SIGINT at its default. A suite started in the background (`make test &`, a CI
    runner) hands its children SIGINT ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
