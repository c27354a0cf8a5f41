"""Prometheus metrics of the batcher and the record store, in a registry the node's `/metrics` can include."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from attribution.store import BATCH_STATES

__all__ = ["BatcherMetrics"]


class BatcherMetrics:
    """The batcher's metrics (names prefixed `loraledger_batcher_` / `loraledger_store_`).

    Pass `registry` to put them in the node's registry; by default they get their own `CollectorRegistry`
    (`metrics.registry`), so several batchers in one process (tests) do not collide.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.backlog_records = Gauge("loraledger_batcher_backlog_records",
                                     "Records stored but not yet in a final batch.", registry=r)
        self.unbatched_records = Gauge("loraledger_batcher_unbatched_records",
                                       "Records stored but not yet sealed into a batch.", registry=r)
        self.batches = Gauge("loraledger_batcher_batches", "Batches by state.", ["state"], registry=r)
        for state in BATCH_STATES:
            self.batches.labels(state=state)
        self.last_final_seq = Gauge("loraledger_batcher_last_final_seq",
                                    "Last seq of the newest final batch (-1 when none).", registry=r)
        self.last_final_seq.set(-1)
        self.gas_per_batch = Histogram("loraledger_batcher_gas_per_batch", "L2 gas used by postBatch.",
                                       buckets=(5e4, 7.5e4, 1e5, 1.5e5, 2e5, 3e5, 5e5, 1e6), registry=r)
        self.gas_per_record = Gauge("loraledger_batcher_gas_per_record",
                                    "L2 gas per record of the last posted batch.", registry=r)
        self.l1_fee_wei = Gauge("loraledger_batcher_l1_fee_wei",
                                "L1 data fee (wei) of the last posted batch (OP chains).", registry=r)
        self.da_put_seconds = Histogram("loraledger_batcher_da_put_seconds", "DA put latency.",
                                        buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60), registry=r)
        self.tx_resubmissions = Counter("loraledger_batcher_tx_resubmissions",
                                        "postBatch transactions replaced with bumped fees.", registry=r)
        self.reorgs = Counter("loraledger_batcher_reorged_batches",
                              "Posted batches whose receipt vanished before final (re-submitted).", registry=r)
        self.errors = Counter("loraledger_batcher_errors", "Pipeline errors (retried with backoff).", ["kind"],
                              registry=r)
        self.resplits = Counter("loraledger_batcher_resplits", "Batches re-split after the DA refused the size.",
                                registry=r)
        self.store_full_rejections = Gauge("loraledger_store_full_rejections",
                                           "Records refused by the store's disk bound (since start).", registry=r)
        self.store_disk_alarm = Gauge("loraledger_store_disk_alarm",
                                      "1 while the store refuses records for disk space.", registry=r)
        self.store_used_bytes = Gauge("loraledger_store_used_bytes", "Bytes the record store uses.", registry=r)
        self.pruned_records = Counter("loraledger_store_pruned_records", "Record rows pruned after final.",
                                      registry=r)
