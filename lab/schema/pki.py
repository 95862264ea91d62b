"""The PKI a scenario asks for: CAs, intermediates and gateway certificates, made fresh each run.

Subjects (a CN or a whole DN), key type and size, validity relative to the run (so a scenario
can hold an expired or a not-yet-valid certificate without touching any clock), and per CA a
CRL listing revoked certificates, published at a URL a lab node serves.
"""
from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from lab.schema.types import CommonName, FileModel, Identifier, SubjectAltName, is_dn, lab_address

_OFFSET = re.compile(r"([+-]?)(\d{1,5})([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_OFFSET = 20 * 365 * 86400
DEFAULT_SIZE = {"ecdsa": 256, "rsa": 2048, "ed25519": None}
# `pki --gen` on a 2-core machine, seconds per key (mean of 3; RSA's prime search varies,
# 48 RSA 4096 keys took 72 s). A scenario's keys are made before its first phase, each run.
KEYGEN_SECONDS = {("rsa", 2048): 0.2, ("rsa", 3072): 0.4, ("rsa", 4096): 1.5,
                  ("ecdsa", 256): 0.02, ("ecdsa", 384): 0.02, ("ed25519", None): 0.02}
KEYGEN_COST = "RSA 4096: 1.5 s a key, 3072: 0.4 s, 2048: 0.2 s, ECDSA and Ed25519: 0.02 s"
MAX_KEYGEN_SECONDS = 12  # eight RSA 4096 keys; ike-fragmentation has four


def _offset(value: Any) -> int:
    """Seconds relative to the run: -30d (thirty days ago), +2d, 365d."""
    match = _OFFSET.fullmatch(str(value))
    seconds = int(match.group(2)) * _UNITS[match.group(3)] * (-1 if match.group(1) == "-" else 1) if match else None
    if seconds is None or abs(seconds) > MAX_OFFSET:
        raise PydanticCustomError("offset", "'{value}' is not a time relative to the run; allowed: -30d, +2h, 365d "
                                  "(within 20 years)", {"value": str(value)[:40]})
    return seconds


def _subject_dn(value: Any) -> str:
    if not isinstance(value, str) or not is_dn(value):
        raise PydanticCustomError("dn", "'{value}' is not a distinguished name; allowed: RDNs such as "
                                  "C=CN, O=Lab, CN=hq.example.net", {"value": str(value)[:60]})
    return value


Offset = Annotated[int, BeforeValidator(_offset)]
SubjectDn = Annotated[str, BeforeValidator(_subject_dn)]


class Key(FileModel):
    type: Literal["ecdsa", "rsa", "ed25519"] = "ecdsa"
    size: Literal[256, 384, 2048, 3072, 4096] | None = None  # ecdsa 256/384, rsa 2048-4096, ed25519 none

    @model_validator(mode="after")
    def _fits(self) -> "Key":
        allowed = {"ecdsa": {None, 256, 384}, "rsa": {None, 2048, 3072, 4096}, "ed25519": {None}}[self.type]
        if self.size not in allowed:
            raise ValueError(f"{self.type} keys of {self.size} bits; allowed: "
                             f"{', '.join(str(s) for s in sorted(s for s in allowed if s)) or 'no size'}")
        return self

    def seconds(self) -> float:
        """What making this key costs, as measured (KEYGEN_SECONDS)."""
        return KEYGEN_SECONDS[(self.type, self.size or DEFAULT_SIZE[self.type])]

    def pki_args(self) -> list[str]:
        size = self.size or DEFAULT_SIZE[self.type]
        return ["--type", self.type] + (["--size", str(size)] if size else [])


class Validity(FileModel):
    not_before: Offset = -3600
    not_after: Offset = 30 * 86400

    @model_validator(mode="after")
    def _ordered(self) -> "Validity":
        if self.not_after <= self.not_before:
            raise ValueError("not_after comes before not_before; allowed: a validity that ends after it starts")
        return self


class Crl(FileModel):
    """A CRL of this CA, issued fresh each run, listing `revoked` certificates; `url` is the CRL
    distribution point written into every certificate the CA issues (a lab node serves it)."""

    url: Annotated[str, BeforeValidator(lambda v: _crl_url(v))]
    revoked: list[Identifier] = Field([], max_length=16)


# the file name is where the run's CRL is written and served from: a plain name, never . or ..
_URL = re.compile(r"http://([0-9.]+)(?::(\d{1,5}))?/([A-Za-z0-9_-][A-Za-z0-9_.-]{0,63})")


def _crl_url(value: Any) -> str:
    match = _URL.fullmatch(str(value))
    if not match or not 1 <= int(match.group(2) or 80) <= 65535:
        raise PydanticCustomError("url", "'{value}' is not a CRL URL; allowed: http://<lab address>[:port]/<file>, "
                                  "the file a plain name (letters, digits, '_', '-', '.'; not starting with '.'), "
                                  "the port 1 to 65535", {"value": str(value)[:60]})
    lab_address(match.group(1))  # a lab address, as everywhere
    return str(value)


class Authority(FileModel):
    cn: CommonName | None = None
    dn: SubjectDn | None = None  # the whole subject; else CN=<cn>
    # None: a self-signed root; otherwise the name of the issuing CA (an intermediate).
    issuer: Identifier | None = None
    key: Key = Key()
    valid: Validity = Validity()
    crl: Crl | None = None

    @model_validator(mode="after")
    def _named(self) -> "Authority":
        if (self.cn is None) == (self.dn is None):
            raise ValueError("give the subject as cn or as dn; allowed: one of them")
        return self

    def subject(self) -> str:
        return self.dn or f"CN={self.cn}"


class Certificate(Authority):
    issuer: Identifier
    san: list[SubjectAltName] = Field(min_length=1, max_length=8)
    serial: Annotated[str, BeforeValidator(lambda v: _serial(v))] | None = None


def _serial(value: Any) -> str:
    text = str(value)
    if not re.fullmatch(r"[0-9a-f]{1,16}", text):
        raise PydanticCustomError("serial", "'{value}' is not a serial; allowed: 1 to 16 lower-case hex digits",
                                  {"value": text[:30]})
    return text


class Pki(FileModel):
    """Names become file names (<name>.crt.pem in the run's folder): identifiers only."""

    cas: dict[Identifier, Authority] = Field({}, max_length=16)
    certs: dict[Identifier, Certificate] = Field({}, max_length=32)

    def keygen_seconds(self) -> float:
        return sum(entry.key.seconds() for entry in [*self.cas.values(), *self.certs.values()])

    @model_validator(mode="after")
    def _consistent(self) -> "Pki":
        for name, entry in [*self.cas.items(), *self.certs.items()]:
            if entry.issuer is not None and entry.issuer not in self.cas:
                raise ValueError(f"'{name}' is issued by unknown CA '{entry.issuer}'; allowed: {', '.join(self.cas) or 'none'}")
        seen: list[str] = []
        for name in self.cas:  # issuers must come first: roots, then what they sign
            issuer = self.cas[name].issuer
            if issuer is not None and issuer not in seen:
                raise ValueError(f"CA '{name}' is listed before its issuer '{issuer}'; allowed: issuers first")
            seen.append(name)
        files: dict[str, str] = {}
        for name, ca in self.cas.items():
            if ca.crl is not None:
                file = ca.crl.url.rsplit("/", 1)[1]
                if file in files:
                    raise ValueError(f"CAs '{files[file]}' and '{name}' publish their CRLs as {file} (one would "
                                     "overwrite the other); allowed: a file name for each")
                files[file] = name
        seconds = self.keygen_seconds()
        if seconds > MAX_KEYGEN_SECONDS:
            raise ValueError(f"its {len(self.cas) + len(self.certs)} keys take about {seconds:.0f} s to generate "
                             f"each run ({KEYGEN_COST}); allowed: at most {MAX_KEYGEN_SECONDS} s")
        overlap = set(self.cas) & set(self.certs)
        if overlap:
            raise ValueError(f"'{sorted(overlap)[0]}' names both a CA and a certificate; allowed: a name for each")
        for name, ca in self.cas.items():
            for revoked in ca.crl.revoked if ca.crl else []:
                if self.certs.get(revoked) is None or self.certs[revoked].issuer != name:
                    raise ValueError(f"CA '{name}' revokes '{revoked}', which it did not issue; allowed: "
                                     f"{', '.join(c for c, cert in self.certs.items() if cert.issuer == name) or 'none'}")
        return self

