"""Errors of the running lab, as opposed to bad input (lab.spec.SpecError)."""


class LabError(RuntimeError):
    """The lab could not be built or driven; this is never a scenario verdict."""
