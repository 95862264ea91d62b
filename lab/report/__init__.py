"""A self-contained HTML report of a run or a workshop check: topology, checks, ladder diagrams."""
