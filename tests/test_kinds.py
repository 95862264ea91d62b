"""The link, restart, serve and download kinds and the road-warrior settings as files say them:
what each accepts, what it refuses, and the Linux command it shows (no lab is built here;
tests/test_steps.py runs them on real labs)."""
import pytest
from pydantic import ValidationError

from lab.checks.download import DownloadCheck
from lab.schema.gateway import GatewayConfig
from lab.schema.refs import InterfaceRef, NodeRef
from lab.steps.link import LinkStep
from lab.steps.restart import RestartStep
from lab.steps.serve import ServeStep
from lab.strongswan import render, settings


def test_link_step():
    step = LinkStep(node="br", intf="wan1", state="down")
    assert step.linux() == "[br] ip link set dev wan1 down"
    assert InterfaceRef(("intf",), "br", "wan1") in step.refs()
    for bad in ({"state": "flap"}, {"intf": "wan1; reboot"}, {"intf": "x" * 16}):
        with pytest.raises(ValidationError):
            LinkStep.model_validate({"node": "br", "intf": "wan1", "state": "up", **bad})


def test_restart_step():
    assert RestartStep(node="gw2").signal == "TERM"
    crash = RestartStep(node="gw2", signal="KILL")
    assert crash.linux().startswith("[gw2] kill -KILL $(cat /run/charon.pid);")
    assert NodeRef(("node",), "gw2", frozenset({"ipsec"})) in crash.refs()
    with pytest.raises(ValidationError):
        RestartStep(node="gw2", signal="HUP")


@pytest.mark.parametrize("url", ["http://10.2.0.10/report.pdf", "http://10.2.0.10:8080/a/b-c_d.bin",
                                 "http://[fc00::10]/x", "http://198.51.100.1/"])
def test_download_urls_of_the_lab(url):
    check = DownloadCheck.model_validate({"from": "h1", "url": url, "within": 3})
    argv = check.argv()
    assert argv[0] == "curl" and argv[-1] == url and argv[argv.index("--max-time") + 1] == "3"
    assert check.linux().startswith("[h1] curl --silent --output /dev/null")


@pytest.mark.parametrize("url", ["https://10.2.0.10/x", "http://8.8.8.8/x", "http://10.2.0.10/../etc/passwd",
                                 "http://10.2.0.10/x y", "http://10.2.0.10/$(id)", "http://10.2.0.10:0/x",
                                 "http://10.2.0.10:70000/x", "file:///etc/passwd", "http://example.com/x",
                                 "http://10.2.0.10", 42, "http://10.2.0.10/x\n-o /tmp/y"])
def test_download_refuses_urls_outside_the_lab(url):
    with pytest.raises(ValidationError):
        DownloadCheck.model_validate({"from": "h1", "url": url})


def test_download_stall_is_judged_over_its_whole_window():
    stalls = DownloadCheck.model_validate({"from": "h1", "url": "http://10.2.0.10/x", "expect": "stalls", "within": 3})
    assert not stalls.eventually() and DownloadCheck.model_validate({"from": "h1", "url": "http://10.2.0.10/x"}).eventually()


def test_serve_files():
    step = ServeStep(node="h2", address="10.2.0.10", files={"index.html": 1000, "report.pdf": 2000000})
    assert step.linux() == ("[h2] truncate -s 1000 www/index.html; truncate -s 2000000 www/report.pdf; "
                            "python3 -m http.server --bind 10.2.0.10 --directory www 80")
    assert ServeStep(node="inet", address="198.51.100.1").linux().endswith("--directory pki/http 80")
    for files in ({"../x": 1}, {".x": 1}, {"a/b": 1}, {"x": 0}, {"x": 64 * 1024 * 1024 + 1}):
        with pytest.raises(ValidationError):
            ServeStep(node="h2", address="10.2.0.10", files=files)


def road_warrior_gateway(**conn) -> GatewayConfig:
    return GatewayConfig.model_validate({
        "connections": {"rw": {"local_addrs": ["203.0.113.2"], "remote_addrs": ["%any"], "pools": ["rw"],
                               "local": {"id": "vpn.example.net"}, "remote": {"id": "%any"},
                               "children": {"lan": {"local_ts": ["10.0.0.0/24"], "remote_ts": ["dynamic"]}},
                               **conn}},
        "pools": {"rw": {"addrs": "10.99.0.1-10.99.0.20"}}})


def test_pools_vips_and_unique_render():
    keys = settings.keys(render.swanctl_conf("gw", "abc123", road_warrior_gateway(unique="never")))
    assert keys["pools.rw.addrs"] == "10.99.0.1-10.99.0.20"
    assert keys["connections.rw.pools"] == "rw" and keys["connections.rw.unique"] == "never"
    assert keys["connections.rw.children.lan.remote_ts"] == "dynamic"
    client = road_warrior_gateway(vips=["0.0.0.0"], pools=[])
    assert settings.keys(render.swanctl_conf("rw1", "abc123", client))["connections.rw.vips"] == "0.0.0.0"


@pytest.mark.parametrize("bad", [{"pools": ["nowhere"]}, {"vips": ["8.8.8.8"]}, {"unique": "sometimes"},
                                 {"children": {"lan": {"local_ts": ["dynamic"], "remote_ts": ["any"]}}}])
def test_road_warrior_settings_refused(bad):
    with pytest.raises(ValidationError):
        road_warrior_gateway(**bad)


@pytest.mark.parametrize("addrs", ["8.8.8.0/24", "10.99.0.9-10.99.0.1", "10.99.0.1-fc00::1", "10.99.0.1 - x"])
def test_pool_addresses_refused(addrs):
    with pytest.raises(ValidationError):
        GatewayConfig.model_validate({"pools": {"rw": {"addrs": addrs}}})
