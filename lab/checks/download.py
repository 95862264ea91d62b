"""An HTTP download between lab hosts, through the tunnel: whether every byte arrives."""
from __future__ import annotations

import re
import shlex
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

from lab.checks import Check, Probe, register
from lab.schema.refs import NodeRef, Ref
from lab.schema.types import NodeName, lab_address

if TYPE_CHECKING:
    from lab.run.lab import RunningLab

_URL = re.compile(r"http://([0-9.]{7,15}|\[[0-9a-fA-F:]{2,39}\])(?::(\d{1,5}))?(/[A-Za-z0-9._/-]{0,200})")
URL_ALLOWED = "http://ADDRESS[:PORT]/PATH: an address of the lab's ranges, a path of letters, digits, '.', '_', '-', '/'"


def _url(value: Any) -> str:
    found = _URL.fullmatch(value) if isinstance(value, str) else None
    if found is None or ".." in found.group(3) or (found.group(2) and not 1 <= int(found.group(2)) <= 65535):
        raise PydanticCustomError("url", "'{value}' is not a URL a check may fetch; allowed: {allowed}",
                                  {"value": str(value)[:80], "allowed": URL_ALLOWED})
    lab_address(found.group(1).strip("[]"))  # a lab address: nothing outside the lab is ever fetched
    return value


Url = Annotated[str, BeforeValidator(_url)]
# curl's report of one transfer: HTTP status, bytes received, Content-Length, seconds to the
# first byte and in all
WRITE_OUT = "%{http_code}|%{size_download}|%header{content-length}|%{time_starttransfer}|%{time_total}"


@register
class DownloadCheck(Check):
    """`curl` on a lab host fetches `url`. complete: the whole body (as its Content-Length
    says) arrives within the window. stalls: the server answered (HTTP 200 and a length), yet
    the body is still incomplete when the window ends (one attempt that lasts the window): a
    transfer that stopped, not a server that is missing or refuses."""

    kind: Literal["download"] = "download"
    from_: NodeName = Field(alias="from")
    url: Url
    expect: Literal["complete", "stalls"] = "complete"

    def refs(self) -> list[Ref]:
        return [NodeRef(("from",), self.from_)]

    def eventually(self) -> bool:
        return self.expect == "complete"

    def expectation(self) -> str:
        return f"download {self.url} on {self.from_} {self.expect}"

    def describe(self) -> dict[str, str]:
        if self.expect == "complete":
            return {"en": f"{self.from_} downloads {self.url} to the end", "zh": f"{self.from_} 能完整下载 {self.url}"}
        return {"en": f"{self.from_}'s download of {self.url} stalls", "zh": f"{self.from_} 下载 {self.url} 时停滞"}

    def argv(self) -> list[str]:
        seconds = max(0.5, self.within)
        return ["curl", "--silent", "--output", "/dev/null", "--max-time", f"{seconds:g}", "--write-out",
                WRITE_OUT, self.url]

    def linux(self, folder: str = "") -> str:
        return f"[{self.from_}] " + shlex.join(self.argv())

    def probe(self, lab: "RunningLab") -> Probe:
        proc = lab.exec(self.from_, self.argv(), check=False, timeout=max(0.5, self.within) + 10)
        fields = proc.stdout.strip().split("|")
        if len(fields) != 5 or not all(f.replace(".", "").isdigit() for f in fields[:2] + fields[3:]):
            return Probe(False, f"{self.from_}: curl exited {proc.returncode} without a report")
        status, got, length, first, total = fields
        answered = status == "200" and length.isdigit()
        whole = answered and int(got) == int(length)
        if not answered:
            observed = f"{self.from_}: GET {self.url}: no HTTP 200 with a length (status {status}, curl exit {proc.returncode})"
        else:
            observed = (f"{self.from_}: GET {self.url}: HTTP 200, {got} of {length} bytes in {float(total):.2f} s "
                        f"(first byte after {float(first):.3f} s)" + ("" if whole else f", curl exit {proc.returncode}"))
        holds = whole if self.expect == "complete" else answered and not whole
        return Probe(holds, observed, measured={"bytes": int(got), "seconds": float(total)})
