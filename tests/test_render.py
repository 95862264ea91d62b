"""strongswan.conf / swanctl.conf rendering from node specs."""
from pathlib import Path

from lab.spec.load import load_scenario
from lab.spec.ipsec import IpsecNode
from lab.strongswan import render


def node(**conn_overrides) -> IpsecNode:
    conn = {"local_addrs": ["203.0.113.2"], "remote_addrs": ["198.51.100.2"],
            "local": {"id": "a.example.net"}, "remote": {"id": "b.example.net"},
            "children": {"net": {"local_ts": ["10.1.0.0/24"], "remote_ts": ["10.2.0.0/23"],
                                 "rekey_time": "10m", "life_time": 660}}}
    conn.update(conn_overrides)
    return IpsecNode.model_validate({"connections": {"hq": conn},
                                     "secrets": [{"ids": ["a.example.net"], "secret": 'x"y\\z'}],
                                     "charon": {"retransmit_timeout": 0.5, "log": {"default": 1, "ike": 2}}})


def test_strongswan_conf_uses_libipsec_socket_and_log():
    text = render.strongswan_conf("gw1", "abc123", node(), Path("/tmp/r/gw1.vici"), Path("/out/gw1.charon.log"))
    load = next(line for line in text.splitlines() if line.strip().startswith("load ="))
    assert load.index("kernel-libipsec") < load.index("kernel-netlink")
    assert "socket = unix:///tmp/r/gw1.vici" in text and text.count("unix:///tmp/r/gw1.vici") == 2
    assert "path = /out/gw1.charon.log" in text
    assert "retransmit_timeout = 0.5" in text and "ike = 2" in text


def test_swanctl_conf_connection_fields():
    text = render.swanctl_conf("gw1", "abc123", node(dpd_delay=10, mobike=False, proposals=["aes128-sha256-ecp256"]))
    assert "local_addrs = 203.0.113.2" in text
    assert "proposals = aes128-sha256-ecp256" in text
    assert "dpd_delay = 10s" in text and "mobike = no" in text
    assert "remote_ts = 10.2.0.0/23" in text
    assert "rekey_time = 600s" in text and "life_time = 660s" in text
    assert "reauth_time" not in text  # unset options stay unset
    assert 'secret = "x\\"y\\\\z"' in text


def test_every_shipped_node_renders(tmp_path):
    sc = load_scenario("ts-mismatch")
    for name, raw in sc.ipsec.items():
        text = render.swanctl_conf(name, "r", IpsecNode.model_validate(raw))
        assert text.count("{") == text.count("}")


def test_pubkey_auth_renders_certificate_files():
    spec = node(local={"auth": "pubkey", "id": "a.example.net", "certs": ["branch"]},
                remote={"auth": "pubkey", "id": "b.example.net", "cacerts": ["root"]})
    text = render.swanctl_conf("gw1", "r", spec)
    assert "auth = pubkey" in text and "certs = branch.pem" in text and "cacerts = root.pem" in text
    assert spec.credential_refs() == ({"branch"}, {"root"})
