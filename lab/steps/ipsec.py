"""strongSwan steps: change a node's configuration and reload it, initiate, terminate."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import model_validator

from lab.steps import Step, register

if TYPE_CHECKING:
    from lab.lab import Lab


@register
class Swanctl(Step):
    """Merge `set` into the node's strongSwan configuration, re-render it, `swanctl --load-all`."""

    kind: Literal["swanctl"] = "swanctl"
    roles: ClassVar[set[str] | None] = {"ipsec"}
    set: dict[str, Any]

    def apply(self, lab: "Lab") -> None:
        lab.charon(self.node).change(self.set)

    def linux(self) -> str:
        node = f"[{self.node}]"
        conf = {k: v for k, v in self.set.items() if k not in ("charon", "tunnel_mtu")}
        parts = [f"{node} swanctl.conf: {_flat(conf)}; swanctl --load-all"] if conf else []
        if "charon" in self.set:
            parts.append(f"{node} strongswan.conf: {_flat(self.set['charon'])}; restart charon")
        if "tunnel_mtu" in self.set:
            mtu = self.set["tunnel_mtu"]
            parts.append(f"{node} restart charon" + (f"; ip link set dev ipsec0 mtu {mtu}" if mtu else
                                                     " (ipsec0 keeps libipsec's default MTU, 1400)"))
        return "; ".join(parts)


def _flat(patch: Any, prefix: str = "") -> str:
    """`secrets[0].secret = x, connections.hq.proposals = [...]`: what an edit changes."""
    if isinstance(patch, dict):
        return ", ".join(_flat(v, f"{prefix}.{k}" if prefix else str(k)) for k, v in patch.items())
    if isinstance(patch, list) and patch and all(isinstance(v, dict) for v in patch):
        return ", ".join(_flat(v, f"{prefix}[{i}]") for i, v in enumerate(patch))
    return f"{prefix} = {patch}"


class _SaStep(Step):
    roles: ClassVar[set[str] | None] = {"ipsec"}
    child: str | None = None
    ike: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> "_SaStep":
        if not (self.child or self.ike):
            raise ValueError("name the CHILD_SA ('child') or the IKE_SA ('ike')")
        return self

    def argv(self) -> list[str]:
        argv = ["swanctl", f"--{self.kind}"]
        if self.child:
            argv += ["--child", self.child]
        if self.ike:
            argv += ["--ike", self.ike]
        return argv


@register
class Initiate(_SaStep):
    """Start negotiating; the outcome is for the checks to judge, so this never waits for it."""

    kind: Literal["initiate"] = "initiate"

    def apply(self, lab: "Lab") -> None:
        lab.charon(self.node).initiate(child=self.child, ike=self.ike)


@register
class Terminate(_SaStep):
    kind: Literal["terminate"] = "terminate"

    def apply(self, lab: "Lab") -> None:
        lab.charon(self.node).terminate(child=self.child, ike=self.ike)
