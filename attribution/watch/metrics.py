"""Prometheus metrics of the watcher (names prefixed `loraledger_watch_`), in their own registry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge

if TYPE_CHECKING:
    from attribution.watch.state import WatchState

__all__ = ["WatchMetrics"]


class WatchMetrics:
    """Counters of what the watcher saw and did, gauges of what it holds."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.cursor = Gauge("loraledger_watch_cursor_block", "Last block followed (confirmed).", registry=r)
        self.last_round = Gauge("loraledger_watch_last_round_timestamp", "Unix time of the last finished round.",
                                registry=r)
        self.batches = Counter("loraledger_watch_batches_checked", "Batches verified from DA, by first verdict.",
                               ["verdict"], registry=r)
        self.receipts = Counter("loraledger_watch_receipts_received", "Receipts handed in, by result (held, "
                                "duplicate, or the problem a refusal names).", ["result"], registry=r)
        self.receipts_held = Gauge("loraledger_watch_receipts", "Receipts in the state, by state.", ["state"],
                                   registry=r)
        self.challenges = Counter("loraledger_watch_challenges", "Disputes acted on, by kind and outcome (open, "
                                  "upheld, answered, failed).", ["kind", "outcome"], registry=r)
        self.open_challenges = Gauge("loraledger_watch_open_challenges", "Challenges waiting for the node's answer.",
                                     registry=r)
        self.slashed = Counter("loraledger_watch_slashed_stake", "Stake slashed by the watcher's disputes (token "
                               "base units).", registry=r)
        self.withdrawn = Counter("loraledger_watch_withdrawn_wei", "Bonds and refunds withdrawn.", registry=r)
        self.reorgs = Counter("loraledger_watch_reorgs", "Reorgs rolled back.", registry=r)
        self.errors = Counter("loraledger_watch_errors", "Round steps that failed and are retried.", ["kind"],
                              registry=r)

    def observe_state(self, state: WatchState) -> None:
        """Refresh the gauges from the state file."""
        counts = state.receipt_counts()
        for s in ("held", "in_batch", "challenged"):
            self.receipts_held.labels(state=s).set(counts.get(s, 0))
        self.open_challenges.set(len(state.challenges("open")))
