"""strongswan.conf and swanctl.conf of one node, rendered with jinja2 from its IpsecNode spec."""
from __future__ import annotations

from pathlib import Path

import jinja2

from lab.spec.ipsec import IpsecNode

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("lab.strongswan", "templates"),
    undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
# Credentials are installed as <name>.pem in swanctl/x509, x509ca and private.
_ENV.filters["add_pem"] = lambda name: f"{name}.pem"

# The plugins each strongSwan tool loads (lab.preflight checks that every one is installed).
# kernel-libipsec before kernel-netlink: the first IPsec backend registered wins, and this
# kernel has no XFRM, so ESP runs in userspace on the TUN device ipsec0. No updown plugin:
# libipsec installs its own routes, and nothing in a lab may run a script.
CHARON_PLUGINS = ("random", "nonce", "openssl", "kdf", "pem", "pkcs1", "x509", "pubkey", "revocation",
                  "constraints", "kernel-libipsec", "kernel-netlink", "socket-default", "vici")
SWANCTL_PLUGINS = ("pem", "pkcs1", "x509", "pubkey", "openssl", "random")
PKI_PLUGINS = ("pem", "pkcs1", "pkcs8", "x509", "openssl", "random")


def strongswan_conf(node: str, run_id: str, spec: IpsecNode, socket: Path, log: Path) -> str:
    return _ENV.get_template("strongswan.conf.j2").render(
        node=node, run_id=run_id, charon=spec.charon, socket=socket, log=log,
        charon_plugins=CHARON_PLUGINS, swanctl_plugins=SWANCTL_PLUGINS)


def swanctl_conf(node: str, run_id: str, spec: IpsecNode) -> str:
    return _ENV.get_template("swanctl.conf.j2").render(
        node=node, run_id=run_id, connections=spec.connections, secrets=spec.secrets)
