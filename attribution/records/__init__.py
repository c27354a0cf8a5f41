"""Attribution records: the record and its leaf (`record`), the `LLB2` batch payload (`payload`), the node's signed
receipt (`receipt`) and the Merkle tree over records (`tree`). The record's names are importable from here."""

from attribution.records.record import *  # noqa: F403
from attribution.records.record import __all__  # noqa: F401
