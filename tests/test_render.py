"""strongswan.conf / swanctl.conf rendering: what the schema says, and nothing a value could add."""
from pathlib import Path

import pytest

from lab.errors import LabError
from lab.schema.gateway import Auth, CharonSettings, Child, Connection, GatewayConfig, Secret
from lab.schema.load import load_scenario
from lab.schema.locate import catalogue_names
from lab.strongswan import render, settings

SOCKET, LOG = Path("/tmp/r/gw1.vici"), Path("/out/gw1.charon.log")
SCRIPT_KEYS = {"start-scripts", "stop-scripts", "updown", "include"}


def node(**conn_overrides) -> GatewayConfig:
    conn = {"local_addrs": ["203.0.113.2"], "remote_addrs": ["198.51.100.2"],
            "local": {"id": "a.example.net"}, "remote": {"id": "b.example.net"},
            "children": {"net": {"local_ts": ["10.1.0.0/24"], "remote_ts": ["10.2.0.0/23"],
                                 "rekey_time": "10m", "life_time": 660}}}
    conn.update(conn_overrides)
    return GatewayConfig.model_validate({"connections": {"hq": conn},
                                         "secrets": [{"ids": ["a.example.net"], "secret": 'x"y\\z'}],
                                         "charon": {"retransmit_timeout": 0.5, "log": {"default": 1, "ike": 2}}})


def test_strongswan_conf_uses_libipsec_socket_and_log():
    keys = settings.keys(render.strongswan_conf("gw1", "abc123", node(), SOCKET, LOG))
    assert keys["charon.load"].index("kernel-libipsec") < keys["charon.load"].index("kernel-netlink")
    assert keys["charon.plugins.vici.socket"] == keys["swanctl.socket"] == "unix:///tmp/r/gw1.vici"
    assert keys["charon.filelog.lab.path"] == "/out/gw1.charon.log"
    assert keys["charon.retransmit_timeout"] == "0.5" and keys["charon.filelog.lab.ike"] == "2"


def test_swanctl_conf_connection_fields():
    keys = settings.keys(render.swanctl_conf("gw1", "abc123", node(dpd_delay=10, mobike=False,
                                                                   proposals=["aes128-sha256-ecp256"])))
    conn = "connections.hq."
    assert keys[conn + "local_addrs"] == "203.0.113.2" and keys[conn + "proposals"] == "aes128-sha256-ecp256"
    assert keys[conn + "dpd_delay"] == "10s" and keys[conn + "mobike"] == "no"
    assert keys[conn + "children.net.remote_ts"] == "10.2.0.0/23"
    assert keys[conn + "children.net.rekey_time"] == "600s" and keys[conn + "children.net.life_time"] == "660s"
    assert conn + "reauth_time" not in keys  # unset options stay unset
    assert keys["secrets.ike-1.secret"] == 'x"y\\z'  # read back exactly, quotes and backslashes escaped


def test_pubkey_auth_renders_certificate_files():
    config = node(local={"auth": "pubkey", "id": "a.example.net", "certs": ["branch"]},
                  remote={"auth": "pubkey", "id": "b.example.net", "cacerts": ["root"]})
    keys = settings.keys(render.swanctl_conf("gw1", "r", config))
    assert keys["connections.hq.local.auth"] == "pubkey" and keys["connections.hq.local.certs"] == "branch.pem"
    assert keys["connections.hq.remote.cacerts"] == "root.pem"
    assert config.credential_refs() == ({"branch"}, {"root"})


@pytest.mark.parametrize("name", catalogue_names())
def test_shipped_configs_hold_only_what_the_schema_writes(name):
    """Every gateway of every scenario, before and after its swanctl changes: no script key,
    and exactly the connections, children and secrets its model has."""
    sc = load_scenario(name)
    configs = dict(sc.gateways)
    for step in [*sc.spec.fault.steps, *sc.spec.fix.steps]:
        if step.kind == "swanctl":
            configs[f"{step.node} after {step.kind}"] = configs.get(step.node, sc.gateways[step.node]).patched(step.set)
    for label, config in configs.items():
        for text in (render.strongswan_conf(label.split()[0], "r", config, SOCKET, LOG),
                     render.swanctl_conf(label.split()[0], "r", config)):
            keys = settings.keys(text)
            assert not {part for key in keys for part in key.split(".")} & SCRIPT_KEYS, label
        swanctl = settings.keys(render.swanctl_conf("gw", "r", config))
        assert {k.split(".")[1] for k in swanctl if k.startswith("connections.")} == set(config.connections)
        assert len({k.split(".")[1] for k in swanctl if k.startswith("secrets.")}) == len(config.secrets)


HOSTILE = ['x\n}\ncharon { start-scripts { p = touch /tmp/ipsec-lab-pwned } }\n',
           'x" updown = "touch /tmp/ipsec-lab-pwned', "x } updown = touch /tmp/ipsec-lab-pwned",
           "x # comment", "include /etc/passwd", "x\\", '\\"\\n}']


@pytest.mark.parametrize("payload", HOSTILE)
def test_values_cannot_add_keys_even_past_validation(payload):
    """Models built without validation (model_construct) carry the payload into every string
    the templates write; each value reads back as exactly itself and no key appears."""
    child = Child.model_construct(local_ts=[payload], remote_ts=[payload], esp_proposals=[payload], mode=payload,
                                  start_action=payload, dpd_action=payload, close_action=payload,
                                  rekey_time=None, life_time=None, rand_time=None)
    conn = Connection.model_construct(
        version=payload, local_addrs=[payload], remote_addrs=[payload], proposals=[payload],
        local=Auth.model_construct(auth=payload, id=payload, certs=[], cacerts=[]),
        remote=Auth.model_construct(auth=payload, id=payload, certs=[], cacerts=[]), children={"net": child},
        local_port=payload, remote_port=None, encap=None, mobike=None, keyingtries=payload, dpd_delay=None,
        dpd_timeout=None, rekey_time=None, reauth_time=None, over_time=None, rand_time=None)
    config = GatewayConfig.model_construct(
        connections={"hq": conn}, secrets=[Secret.model_construct(ids=[payload], secret=payload)],
        charon=CharonSettings.model_construct(port=payload, port_nat_t=4500, retransmit_timeout=payload,
                                              retransmit_base=1.8, retransmit_tries=5, retransmit_limit=None,
                                              keep_alive=None, log={"default": payload}),
        trust=[], tunnel_mtu=None)
    swanctl = settings.keys(render.swanctl_conf("gw1", "r", config))
    assert swanctl["connections.hq.local.id"] == payload and swanctl["secrets.ike-1.secret"] == payload
    assert swanctl["connections.hq.children.net.esp_proposals"] == payload
    strongswan = settings.keys(render.strongswan_conf("gw1", "r", config, SOCKET, LOG))
    assert strongswan["charon.port"] == payload and strongswan["charon.filelog.lab.default"] == payload
    for keys in (swanctl, strongswan):
        assert not {part for key in keys for part in key.split(".")} & SCRIPT_KEYS


def test_a_key_the_lab_never_writes_is_refused():
    config = node()
    config.connections["hq"].children["net"].__dict__["mode"] = 'x"\n                updown = "y'
    text = render._ENV.get_template("swanctl.conf.j2").render(node="gw1", run_id="r", connections=config.connections,
                                                             secrets=config.secrets, pools=config.pools)
    assert "updown" not in settings.keys(text)  # the template's quoting already holds
    with pytest.raises(LabError, match="keys the lab never writes"):
        render._checked(text + "connections { hq { children { net { updown = x } } } }\n", render.SWANCTL_KEYS,
                        "swanctl.conf")
