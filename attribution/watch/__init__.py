"""The challenger side of the disputes (`loraledger watch`): follow every node's batches, verify them from DA,
take clients' receipts, and open the dispute each lie calls for (docs/disputes.md, "Watcher")."""

from attribution.watch.receipts import HeldReceipt, ReceiptRejected, parse_evidence
from attribution.watch.state import WatchState, WatchStateError
from attribution.watch.watcher import RoundStats, WatchConfig, Watcher

__all__ = ["HeldReceipt", "ReceiptRejected", "RoundStats", "WatchConfig", "WatchState", "WatchStateError",
           "Watcher", "parse_evidence"]
