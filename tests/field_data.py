"""Where the public field data is (captures and strongSwan's own failure tests, made by nobody
here): beside the checkout in ../shared/field-data, as on this project's machine; a checkout made
elsewhere (a clone in a temporary folder) finds the machine's /work/shared/field-data, and
IPSEC_LAB_FIELD_DATA names any other place."""
import os
from pathlib import Path

from tests import repo

PLACES = [repo.ROOT.parent / "shared" / "field-data", Path("/work/shared/field-data")]
FIELD = (Path(os.environ["IPSEC_LAB_FIELD_DATA"]) if os.environ.get("IPSEC_LAB_FIELD_DATA")
         else next((place for place in PLACES if place.is_dir()), PLACES[0]))
