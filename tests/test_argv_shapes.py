"""Every command shape a `command` check may run (lab.schema.argv), checked against the programs:
each word and option is in the program's manual, and each shape runs for real in a lab node,
through the check itself, and exits 0."""
import gzip
import itertools
import re
import subprocess
from pathlib import Path

import pytest

from lab.schema import argv as shapes
from lab.schema.argv import SHAPES, Shape

MAN = Path("/usr/share/man/man8")
# where each program documents its words (swanctl's options are in its --help, per command)
MANUALS = {"ip": ["ip", "ip-route", "ip-rule", "ip-address", "ip-link", "ip-neighbour"], "nft": ["nft"],
           "conntrack": ["conntrack"], "sysctl": ["sysctl"], "swanctl": ["swanctl"]}


# options whose example only holds together with another's: a packet from h1 that came in on gw1's lan
TOGETHER = {("ip", "iif"): ["from", "10.1.0.10", "iif", "lan"]}


def _examples(shape: Shape) -> list[list[str]]:
    """The shape's words in every spelling with its required slots; then each optional slot, each
    option (with what it requires) and each option before the subcommand once."""
    out = []
    required = [v.example for v, optional in shape.slots if not optional]
    for words in itertools.product(*shape.words):
        out.append([shape.program, *words, *required])
    words = [spellings[0] for spellings in shape.words]
    if any(optional for _, optional in shape.slots):
        out.append([shape.program, *words, *(v.example for v, _ in shape.slots)])
    for name, option in shape.options.items():
        needed = [option.requires[0], *shape.options[option.requires[0]].example_value()] if option.requires else []
        out.append([shape.program, *words, *required, *TOGETHER.get((shape.program, name), [*needed, name,
                                                                                           *option.example_value()])])
    if all(optional for _, optional in shape.slots):  # one shape per program carries the options before it
        for name in shape.before:
            out.append([shape.program, name, *words])
    return out


def _every_example() -> list[list[str]]:
    seen, out = set(), []
    for shape in (s for group in SHAPES.values() for s in group):
        for example in _examples(shape):
            if tuple(example) not in seen:
                seen.add(tuple(example))
                out.append(example)
    return out


EXAMPLES = _every_example()


def test_every_example_is_a_shape_the_schema_accepts():
    for example in EXAMPLES:
        assert shapes.refusal(example) is None, example
    assert len(EXAMPLES) > 100


def _manual(program: str) -> str:
    pages = [MAN / f"{page}.8.gz" for page in MANUALS[program]]
    if not all(p.exists() for p in pages):
        pytest.skip(f"the manual of {program} is not installed")
    text = "\n".join(gzip.open(p, "rt", errors="replace").read() for p in pages)
    text = re.sub(r"\\f(\(..|\[[^]]*\]|.)", "", text)  # troff font changes
    return text.replace("\\-", "-").replace("\\(em", "-").replace("\\&", "")


def _documented(word: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w])", text) is not None


@pytest.mark.parametrize("program", sorted(SHAPES))
def test_every_word_and_option_is_in_the_manual(program):
    manual = _manual(program)
    for shape in SHAPES[program]:
        text = manual
        if program == "swanctl":  # the manual lists commands; each command's --help its options
            shown = subprocess.run(["swanctl", shape.words[0][0], "--help"], capture_output=True, text=True, timeout=10)
            text += shown.stdout + shown.stderr
        words = [w for spellings in shape.words for w in spellings] + list(shape.options) + list(shape.before)
        undocumented = [w for w in words if not _documented(w, text)]
        assert not undocumented, f"{shape.usage()}: {undocumented} not in {MANUALS[program]}"


# nft objects the examples list, the one an example names made before it (in ip, the family nft
# assumes when none is given, and in inet, the examples' family; a set and a map share names)
NFT_OBJECTS = {
    "chain": "chain probe { }", "set": "set probe { type ipv4_addr; }",
    "map": "map probe { type ipv4_addr : verdict; }", "counter": "counter probe { }",
    "quota": "quota probe { 10 mbytes }", "limit": "limit probe { rate 10/second }",
}


@pytest.mark.lab
def test_every_shape_runs_in_a_lab_node(lab_dir, no_leaks):
    from lab.run.worker import call

    failed = call(_every_shape, lab_dir, writable=(lab_dir,))
    assert not failed, "\n".join(failed)


def _every_shape(tmp_path) -> list[str]:
    from lab.checks.command import CommandCheck
    from lab.run.lab import RunningLab
    from lab.schema.load import load_scenario

    failed = []
    with RunningLab(load_scenario("psk-mismatch"), tmp_path, "argvshapes") as lab:
        lab.charon("gw1").initiate(child="net")
        for example in EXAMPLES:
            if example[0] == "nft":
                body = next((NFT_OBJECTS[w] for w in example if w in NFT_OBJECTS), NFT_OBJECTS["chain"])
                tables = "".join(f"table {family} probe {{\n  {body}\n}}\n" for family in ("ip", "inet"))
                lab.exec("gw1", ["nft", "-f", "-"], input=f"flush ruleset\n{tables}")
            check = CommandCheck.model_validate({"node": "gw1", "argv": example, "pattern": "."})
            probe = check.probe(lab)
            if probe.measured["exit"] != 0:
                failed.append(f"{' '.join(example)}: {probe.observed}")
    return failed
