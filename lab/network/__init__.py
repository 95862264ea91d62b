"""The lab's nodes and links on Mininet: one namespace per node, nothing in the root namespace.

Mininet creates each veth pair from inside the first node's namespace with the
peer born in the second's, so lab interfaces never appear in the sandbox's own
namespace and their names only need to be unique per node. Segments with more than two
members meet on a Linux bridge inside a namespace of its own. Every command
inside a node goes through `exec`/`spawn` here (mnexec attaches to the node's
network and mount namespaces).
"""
from __future__ import annotations

import signal
import subprocess
import sys
from typing import Any

from mininet.node import Node

from lab.errors import LabError
from lab.preflight import declared
from lab.network.roles import ROLES
from lab.schema.topology import Topology

BRIDGE = "br0"
PYTHON = sys.executable  # the TCP relay runs as `python -m lab.transport.relay`


class Network:
    def __init__(self, topology: Topology, run_id: str):
        from mininet.log import setLogLevel
        from mininet.net import Mininet

        setLogLevel("error")
        self.topology = topology
        self.run_id = run_id
        # No controller, no switches, no Mininet addressing: the topology says it all.
        self._net = Mininet(controller=None, build=False, autoSetMacs=False, autoStaticArp=False)
        self.nodes: dict[str, Any] = {}
        try:
            for name in topology.nodes:
                # A private /run gives each charon its own pid file.
                self.nodes[name] = self._net.addHost(name, cls=Node, ip=None, privateDirs=["/run"])
            for link in topology.links:
                if len(link.ends) == 2:
                    a, b = link.ends
                    self._net.addLink(self.nodes[a.node], self.nodes[b.node], intfName1=a.intf, intfName2=b.intf)
                else:
                    self._bridge(link.name, link.ends)
            for name in topology.nodes:
                self._configure(name)
        except BaseException:
            self.stop()
            raise

    def _bridge(self, name: str, ends) -> None:
        bridge = self._net.addHost(name, cls=Node, ip=None)
        self.nodes[name] = bridge
        for i, end in enumerate(ends):
            self._net.addLink(self.nodes[end.node], bridge, intfName1=end.intf, intfName2=f"p{i}")
        self.exec(name, ["ip", "-batch", "-"], input="\n".join(
            [f"link add {BRIDGE} type bridge", f"link set dev {BRIDGE} up"]
            + [f"link set dev p{i} master {BRIDGE} up" for i in range(len(ends))]))

    def _configure(self, name: str) -> None:
        """What every node gets (addresses, routes, policy rules, nftables), then its role's part."""
        node = self.topology.nodes[name]
        cmds = ["link set lo up"]
        for link in self.topology.links:
            for end in link.ends:
                if end.node == name:
                    cmds += [f"addr add {addr} dev {end.intf}" for addr in end.addr]
                    if end.mtu is not None:
                        cmds.append(f"link set dev {end.intf} mtu {end.mtu}")
                    # veth would pass GSO super-segments of 64 KB; a capture should show
                    # what a wire carries: segments that fit the MTU.
                    cmds.append(f"link set dev {end.intf} gso_max_segs 1")
                    cmds.append(f"link set dev {end.intf} up")
        cmds += ["route add " + " ".join(route.ip_args()) for route in node.routes]
        cmds += ["rule add " + " ".join(rule.ip_args()) for rule in node.rules]
        self.exec(name, ["ip", "-batch", "-"], input="\n".join(cmds))
        if node.nft:
            self.exec(name, ["nft", "-f", "-"], input=node.nft)
        ROLES[node.role].configure(self, name, node)

    def spawn(self, node: str, argv: list[str], **kwargs: Any) -> subprocess.Popen:
        """A process inside the node's namespaces; the caller owns and stops it."""
        if not declared(argv[0]) and argv[0] != PYTHON:
            raise LabError(f"[{node}] {argv[0]}: not a program lab.preflight knows (add it there, with its package)")
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        return self.nodes[node].popen(argv, **kwargs)

    def exec(self, node: str, argv: list[str], input: str | None = None, check: bool = True,
             timeout: float = 30) -> subprocess.CompletedProcess:
        proc = self.spawn(node, argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise LabError(f"[{node}] {' '.join(argv)}: no answer within {timeout:g}s") from None
        result = subprocess.CompletedProcess(argv, proc.returncode, out, err)
        if check and proc.returncode != 0:
            detail = (err or out).strip()
            raise LabError(f"[{node}] {' '.join(argv)} failed ({proc.returncode}): {detail}")
        return result

    def mac(self, node: str, intf: str) -> str:
        # `ip -br link`: "wan@if2  UP  aa:bb:cc:dd:ee:ff <...>"
        return self.exec(node, ["ip", "-br", "link", "show", "dev", intf]).stdout.split()[2]

    def stop(self) -> None:
        """Links first, then the node shells; processes in the nodes must be stopped before."""
        self._net.stop()


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 3) -> None:
    """`sig`, then SIGKILL if it has not exited within `timeout` seconds; reaped either way."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
