"""The network builder alone: bridged segments, NAT nodes, routes, in namespaces only."""
import pytest

from lab.network import Network
from lab.run.worker import call
from lab.schema.topology import Topology

pytestmark = pytest.mark.lab

TOPOLOGY = Topology.model_validate({
    "name": "t", "title": {"en": "t", "zh": "t"},
    "nodes": {
        "a": {"role": "host", "routes": [{"dst": "default", "via": "10.9.0.254"}]},
        "b": {"role": "host", "routes": [{"dst": "default", "via": "10.9.0.254"}]},
        "nat": {"role": "nat", "nat": {"outside": "out", "udp_timeout": 7}},
        # No route back to 10.9.0.0/24: replies reach the LAN only through the NAT.
        "srv": {"role": "host"},
    },
    "links": [
        {"name": "lan", "ends": [{"node": "a", "intf": "eth0", "addr": ["10.9.0.1/24"]},
                                 {"node": "b", "intf": "eth0", "addr": ["10.9.0.2/24"]},
                                 {"node": "nat", "intf": "in", "addr": ["10.9.0.254/24"]}]},
        {"ends": [{"node": "nat", "intf": "out", "addr": ["198.51.100.2/30"]},
                  {"node": "srv", "intf": "eth0", "addr": ["198.51.100.1/30"]}]},
    ],
})


def ping(net: Network, node: str, dst: str) -> bool:
    return net.exec(node, ["ping", "-n", "-c1", "-W1", dst], check=False).returncode == 0


def test_bridge_nat_and_namespaces(no_leaks):
    call(_bridge_nat_and_namespaces)


def _bridge_nat_and_namespaces():
    net = Network(TOPOLOGY, "t0")
    try:
        assert ping(net, "a", "10.9.0.2")           # across the bridge
        assert ping(net, "b", "10.9.0.254")
        assert ping(net, "a", "198.51.100.1")       # only works if masqueraded
        entries = net.exec("nat", ["conntrack", "-L", "-p", "icmp"], check=False).stdout
        assert "src=10.9.0.1" in entries and "dst=198.51.100.2" in entries
        assert net.exec("nat", ["sysctl", "-n", "net.netfilter.nf_conntrack_udp_timeout"]).stdout.strip() == "7"
        assert "br0" in net.exec("lan", ["ip", "-br", "link"]).stdout
        # the lab's interfaces exist in the nodes, not in the sandbox's own namespace
        assert "eth0" in net.exec("a", ["ip", "-br", "link"]).stdout
        assert not ping(net, "srv", "10.9.0.1")     # the inside is not routable from outside
    finally:
        net.stop()
