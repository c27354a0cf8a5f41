"""The durable record store: the record log (`log.RecordStore`), the batches it holds for the batcher
(`batches`) and its errors (`errors`). The public names are importable from here."""

from attribution.store.log import *  # noqa: F403
from attribution.store.log import __all__  # noqa: F401
