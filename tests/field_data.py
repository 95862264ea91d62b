"""The public field data the tests read (captures, and strongSwan's own failure tests; made by
nobody here): tests/data, part of the repository, with the origin and licence of every file in
tests/data/SOURCES. A checkout without it (an sdist cut down, a sparse clone) skips the tests
that read it, saying so."""
from pathlib import Path

import pytest

FIELD = Path(__file__).resolve().parent / "data"
NEEDED = pytest.mark.skipif(not (FIELD / "captures").is_dir() or not (FIELD / "strongswan-tests").is_dir(),
                            reason=f"the public field data is not in this checkout ({FIELD}: see tests/data/SOURCES "
                                   "in the repository)")
