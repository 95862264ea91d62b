"""The PKI a scenario asks for: CAs, intermediates and gateway certificates, made fresh each run."""
from __future__ import annotations

from pydantic import Field, model_validator

from lab.schema.types import CommonName, FileModel, Identifier, SubjectAltName


class Authority(FileModel):
    cn: CommonName
    # None: a self-signed root; otherwise the name of the issuing CA (an intermediate).
    issuer: Identifier | None = None


class Certificate(FileModel):
    cn: CommonName
    issuer: Identifier
    san: list[SubjectAltName] = Field(min_length=1, max_length=8)


class Pki(FileModel):
    """Names become file names (<name>.crt.pem in the run's folder): identifiers only."""

    cas: dict[Identifier, Authority] = Field({}, max_length=16)
    certs: dict[Identifier, Certificate] = Field({}, max_length=32)

    @model_validator(mode="after")
    def _issuers_exist(self) -> "Pki":
        for name, entry in [*self.cas.items(), *self.certs.items()]:
            if entry.issuer is not None and entry.issuer not in self.cas:
                raise ValueError(f"'{name}' is issued by unknown CA '{entry.issuer}'; allowed: {', '.join(self.cas) or 'none'}")
        seen: list[str] = []
        for name in self.cas:  # issuers must come first: roots, then what they sign
            issuer = self.cas[name].issuer
            if issuer is not None and issuer not in seen:
                raise ValueError(f"CA '{name}' is listed before its issuer '{issuer}'; allowed: issuers first")
            seen.append(name)
        overlap = set(self.cas) & set(self.certs)
        if overlap:
            raise ValueError(f"'{sorted(overlap)[0]}' names both a CA and a certificate; allowed: a name for each")
        return self
