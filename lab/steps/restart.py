"""A gateway's IKE daemon stops and starts again: a reboot, a crash, an upgrade."""
from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from lab.steps import Step, register

if TYPE_CHECKING:
    from lab.run.lab import RunningLab


@register
class RestartStep(Step):
    """charon stopped and started again on the node, its configuration loaded as before
    (`swanctl --load-all`). `signal: TERM` is an orderly restart: charon deletes its SAs and
    tells its peers (DELETE). `signal: KILL` is a crash or a power cut: the peers are told
    nothing and keep SAs this gateway no longer has, until their DPD notices."""

    kind: Literal["restart"] = "restart"
    roles: ClassVar[frozenset[str] | None] = frozenset({"ipsec"})
    signal: Literal["TERM", "KILL"] = "TERM"

    def apply(self, lab: "RunningLab") -> None:
        lab.charon(self.node).restart(kill=self.signal == "KILL")

    def linux(self) -> str:
        # /run is private to the node: its pid file names this gateway's charon only
        return (f"[{self.node}] kill -{self.signal} $(cat /run/charon.pid); /usr/lib/ipsec/charon & "
                "swanctl --load-all")
