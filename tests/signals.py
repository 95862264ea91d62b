"""Commands started as from a terminal, whatever started the suite."""
import signal


def as_from_a_terminal() -> None:
    """preexec_fn: SIGINT at its default. A suite started in the background (`make test &`, a CI
    runner) hands its children SIGINT ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
