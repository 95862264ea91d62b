"""`lab clean`: what only bookkeeping knows, of labs that are gone.

A lab's processes, namespaces, links, mounts and runtime files end with its sandbox
(lab.sandbox), whatever ended it: there is nothing of them to find. What can outlive a lab
is its seat in the training room, when its supervisor was killed: the state file still says
a lab runs. `lab clean` removes the seats of dead labs, the account's own (root: every
account's); a live lab is never touched, and results folders are the user's to keep.
"""
from __future__ import annotations

import os

from lab.workshop import state


def dead_seats() -> list[state.Seat]:
    seats = state.seats() if os.geteuid() == 0 else [state.Seat.mine()]
    dead = []
    for seat in seats:
        current = seat.read()
        if current is not None and not (current.get("pid") and state.alive(current["pid"], current.get("started_at"))):
            dead.append(seat)
    return dead
