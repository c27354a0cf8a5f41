"""The batcher: stored records -> sealed batches -> DA -> `postBatch` -> final (`machine`), its metrics
(`metrics`) and the pipeline status read from the store (`status`)."""

from attribution.batcher.config import BatcherConfig, BatcherError, BatcherInconsistent
from attribution.batcher.machine import Batcher
from attribution.batcher.status import pipeline_status

__all__ = ["Batcher", "BatcherConfig", "BatcherError", "BatcherInconsistent", "pipeline_status"]
