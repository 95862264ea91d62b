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


def strongswan_conf(node: str, run_id: str, spec: IpsecNode, socket: Path, log: Path) -> str:
    return _ENV.get_template("strongswan.conf.j2").render(
        node=node, run_id=run_id, charon=spec.charon, socket=socket, log=log)


def swanctl_conf(node: str, run_id: str, spec: IpsecNode) -> str:
    return _ENV.get_template("swanctl.conf.j2").render(
        node=node, run_id=run_id, connections=spec.connections, secrets=spec.secrets)
