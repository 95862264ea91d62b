"""ipsec-lab: IPsec field problems rebuilt as runnable labs on Mininet + strongSwan."""

# The one place the version is written: pyproject.toml reads it, `lab --version` prints it.
__version__ = "0.2.0"
