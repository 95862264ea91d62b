"""The fault classes (catalogue.yaml), read and checked once: every fact a signature names exists,
every pattern compiles, every text is in English and Chinese."""
from __future__ import annotations

import re
from functools import cache
from importlib.resources import files
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from lab.schema.types import Text, Vendor  # as scenarios write them

FILE = files("lab.diagnose") / "catalogue.yaml"  # package data


class Fix(BaseModel):
    model_config = ConfigDict(extra="forbid")
    linux: str
    vendor: list[Vendor] = []


class Item(BaseModel):
    """One condition of a signature: a named fact, or a log line pattern."""

    model_config = ConfigDict(extra="forbid")
    fact: str | None = None
    log: str | None = None

    @field_validator("log")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            re.compile(pattern)
        return pattern


class Candidate(BaseModel):
    """A candidate cause, shown when this side's log matches `when` (always without it)."""

    model_config = ConfigDict(extra="forbid")
    when: str | None = None
    text: Text

    @field_validator("when")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            re.compile(pattern)
        return pattern


class FaultClass(BaseModel):
    model_config = ConfigDict(extra="forbid")
    step: Literal[1, 2, 3]
    title: Text
    signatures: list[list[Item]] = Field(min_length=1)
    also: list[Item] = []  # cited beside the evidence when present, never deciding
    resolved: bool = False  # a later success of the same peer in the same source supersedes the evidence
    fallback: bool = False  # tried after every other class, wherever it is written
    candidates: list[Candidate] = []  # the reason is on the other side: what it may be
    explanation: Text
    next: Text
    fix: Fix


class Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid")
    classes: dict[str, FaultClass]


@cache
def catalogue() -> Catalogue:
    from lab.diagnose.facts import FACTS  # the facts a signature may name

    cat = Catalogue.model_validate(yaml.safe_load(FILE.read_text()))
    named = {i.fact for c in cat.classes.values() for i in [*c.also, *(i for s in c.signatures for i in s)] if i.fact}
    unknown = named - set(FACTS)
    if unknown:
        raise ValueError(f"{FILE}: unknown facts {sorted(unknown)}; facts: {', '.join(sorted(FACTS))}")
    return cat


@cache
def compiled(pattern: str) -> re.Pattern:
    return re.compile(pattern)


@cache
def required_text(pattern: str) -> str:
    """A piece of text every match of `pattern` contains (its longest run of plain characters
    outside any alternation or repetition), or "": a cheap test before the regex on each line."""
    from re import _parser as parser

    try:
        parsed = parser.parse(pattern)
    except re.error:
        return ""
    best, run = "", ""
    for op, arg in parsed:
        if op is parser.LITERAL:
            run += chr(arg)
        else:
            best, run = max(best, run, key=len), ""
            if op is parser.BRANCH:
                return ""
    return max(best, run, key=len)


@cache
def class_steps() -> dict[str, int]:
    """Each class's step, read without checking facts (for the scenario schema)."""
    return {name: entry["step"] for name, entry in yaml.safe_load(FILE.read_text())["classes"].items()}


def class_names() -> list[str]:
    return list(class_steps())
