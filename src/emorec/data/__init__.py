"""Reading, cleaning, splitting and tokenizing corpora."""

from emorec.data.prepare import PreparedData, prepare
from emorec.data.readers import read_file

__all__ = ["PreparedData", "prepare", "read_file"]
