"""strongSwan steps: change a gateway's configuration and reload it, initiate, terminate."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import model_validator

from lab.schema.refs import ConfigPatch, NodeRef, Ref, SaRef
from lab.schema.types import Identifier
from lab.steps import Step, register

if TYPE_CHECKING:
    from lab.run.lab import RunningLab

GATEWAY = frozenset({"ipsec"})


@register
class SwanctlStep(Step):
    """Merge `set` into the gateway's strongSwan configuration, re-render it, `swanctl --load-all`.
    The patch is validated at load against the configuration it will meet (lab.schema.references)."""

    kind: Literal["swanctl"] = "swanctl"
    roles: ClassVar[frozenset[str] | None] = GATEWAY
    set: dict[str, Any]

    def refs(self) -> list[Ref]:
        return [NodeRef(("node",), self.node, self.roles), ConfigPatch(("set",), self.node, self.set)]

    def apply(self, lab: "RunningLab") -> None:
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
    roles: ClassVar[frozenset[str] | None] = GATEWAY
    child: Identifier | None = None
    ike: Identifier | None = None

    @model_validator(mode="after")
    def _one_of(self) -> "_SaStep":
        if not (self.child or self.ike):
            raise ValueError("name the CHILD_SA ('child') or the IKE_SA ('ike')")
        return self

    def refs(self) -> list[Ref]:
        return [NodeRef(("node",), self.node, self.roles), SaRef((), self.node, self.ike, self.child)]

    def argv(self) -> list[str]:
        argv = ["swanctl", f"--{self.kind}"]
        if self.child:
            argv += ["--child", self.child]
        if self.ike:
            argv += ["--ike", self.ike]
        return argv


@register
class InitiateStep(_SaStep):
    """Start negotiating; the outcome is for the checks to judge, so this never waits for it."""

    kind: Literal["initiate"] = "initiate"

    def apply(self, lab: "RunningLab") -> None:
        lab.charon(self.node).initiate(child=self.child, ike=self.ike)


@register
class TerminateStep(_SaStep):
    kind: Literal["terminate"] = "terminate"

    def apply(self, lab: "RunningLab") -> None:
        lab.charon(self.node).terminate(child=self.child, ike=self.ike)
