"""strongswan.conf and swanctl.conf of one gateway, rendered with jinja2 from its GatewayConfig."""
from __future__ import annotations

from pathlib import Path

import jinja2

from lab.errors import LabError
from lab.schema.gateway import GatewayConfig
from lab.schema.ike import LOG_SUBSYSTEMS
from lab.strongswan import settings

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("lab.strongswan", "templates"),
    undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
# Credentials are installed as <name>.pem in swanctl/x509, x509ca and private.
_ENV.filters["add_pem"] = lambda name: f"{name}.pem"
_ENV.filters["q"] = settings.quote

# Every key the lab writes, as dotted paths: a rendered file with any other key is refused.
_ID = r"[A-Za-z][A-Za-z0-9_-]*"
STRONGSWAN_KEYS = [
    r"charon\.(load|port|port_nat_t|retransmit_(timeout|base|tries|limit)|keep_alive)",
    r"charon\.plugins\.vici\.socket",
    r"charon\.filelog\.lab\.(path|time_format|ike_name|append|flush_line|" + "|".join(LOG_SUBSYSTEMS) + ")",
    r"swanctl\.(socket|load)",
]
SWANCTL_KEYS = [
    rf"connections\.{_ID}\.(version|local_addrs|remote_addrs|proposals|local_port|remote_port|encap|mobike|fragmentation|"
    r"keyingtries|dpd_delay|dpd_timeout|rekey_time|reauth_time|over_time|rand_time|vips|pools|unique)",
    rf"connections\.{_ID}\.local\.(auth|id|certs)",
    rf"connections\.{_ID}\.remote\.(auth|id|cacerts|revocation)",
    rf"connections\.{_ID}\.children\.{_ID}\.(local_ts|remote_ts|esp_proposals|mode|start_action|dpd_action|"
    r"close_action|rekey_time|life_time|rand_time)",
    r"secrets\.ike-\d+\.(id-\d+|secret)",
    rf"pools\.{_ID}\.addrs",
]

# The plugins each strongSwan tool loads (lab.preflight checks that every one is installed).
# kernel-libipsec before kernel-netlink: the first IPsec backend registered wins, and this
# kernel has no XFRM, so ESP runs in userspace on the TUN device ipsec0. No updown plugin:
# libipsec installs its own routes, and nothing in a lab may run a script. curl fetches CRLs
# from a lab node (certificate scenarios).
CHARON_PLUGINS = ("random", "nonce", "openssl", "kdf", "pem", "pkcs1", "x509", "pubkey", "revocation",
                  "constraints", "curl", "kernel-libipsec", "kernel-netlink", "socket-default", "vici")
SWANCTL_PLUGINS = ("pem", "pkcs1", "x509", "pubkey", "openssl", "random")
PKI_PLUGINS = ("pem", "pkcs1", "pkcs8", "x509", "openssl", "random")


def strongswan_conf(node: str, run_id: str, config: GatewayConfig, socket: Path, log: Path) -> str:
    return _checked(_ENV.get_template("strongswan.conf.j2").render(
        node=node, run_id=run_id, charon=config.charon, socket=socket, log=log,
        charon_plugins=CHARON_PLUGINS, swanctl_plugins=SWANCTL_PLUGINS), STRONGSWAN_KEYS, "strongswan.conf")


def swanctl_conf(node: str, run_id: str, config: GatewayConfig) -> str:
    return _checked(_ENV.get_template("swanctl.conf.j2").render(
        node=node, run_id=run_id, connections=config.connections, secrets=config.secrets, pools=config.pools),
        SWANCTL_KEYS,
        "swanctl.conf")


def _checked(text: str, allowed: list[str], what: str) -> str:
    """The rendered file read back as charon reads it: only keys the lab writes may appear."""
    try:
        extra = settings.unexpected(text, allowed)
    except settings.SettingsError as exc:
        raise LabError(f"rendered {what} does not parse ({exc}); refusing to start charon with it") from None
    if extra:
        raise LabError(f"rendered {what} holds keys the lab never writes ({', '.join(extra)}); refusing it")
    return text
