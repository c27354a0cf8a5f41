"""Prometheus metrics of the dispute responder, in a registry the node's `/metrics` can include."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ResponderMetrics"]

_KINDS = ("omission", "availability")


class ResponderMetrics:
    """The responder's metrics (names prefixed `loraledger_disputes_`); `registry` as for `BatcherMetrics`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.seen = Counter("loraledger_disputes_challenges_seen", "Challenges opened against this node.",
                            ["kind"], registry=r)
        self.answered = Counter("loraledger_disputes_challenges_answered",
                                "Challenges this node answered on-chain (its challenger's bond is owed to it).",
                                ["kind"], registry=r)
        self.failed = Counter("loraledger_disputes_answer_failures",
                              "Answer attempts that failed (retried until the deadline).", ["kind", "reason"],
                              registry=r)
        self.unanswerable = Counter("loraledger_disputes_unanswerable",
                                    "ALARM: challenges this node cannot answer with what it holds.", ["kind"],
                                    registry=r)
        self.answer_seconds = Histogram("loraledger_disputes_answer_seconds",
                                        "Seconds from seeing a challenge to its answer's receipt.",
                                        buckets=(0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600, 6 * 3600), registry=r)
        self.open = Gauge("loraledger_disputes_open", "Challenges against this node still open on-chain.", registry=r)
        self.alarm = Gauge("loraledger_disputes_alarm",
                           "1 while a challenge against this node is unanswerable or near its deadline unanswered.",
                           registry=r)
        self.last_block = Gauge("loraledger_disputes_last_block", "Last block whose BatchDisputes events were read "
                                "at the confirmation depth.", registry=r)
        for kind in _KINDS:
            self.seen.labels(kind=kind)
            self.answered.labels(kind=kind)
            self.unanswerable.labels(kind=kind)
