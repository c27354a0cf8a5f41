"""The dispute responder: the node's own process answers every challenge against it (docs/disputes.md "Node side").

`answers` (omission proofs and chunks from the node's store, archive or DA, checked against the chain), `machine`
(the reorg-safe follower of `BatchDisputes` events that sends the answers through the tx manager), `metrics`.
"""

from attribution.responder.answers import AnswerSource, ChunkAnswer, ResponderError, Unanswerable
from attribution.responder.machine import Responder, ResponderConfig
from attribution.responder.metrics import ResponderMetrics

__all__ = ["AnswerSource", "ChunkAnswer", "Responder", "ResponderConfig", "ResponderError", "ResponderMetrics",
           "Unanswerable"]
