"""Folding dispute events into a dispute's state (`attribution.indexer.disputes.fold`) for the games the anvil tests
do not play: instant proofs (equivocation, commission with its reason), an answered availability challenge (the
chunk's keccak becomes its leaf), and payouts (`Withdrawn`) that are no dispute."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from attribution.indexer.disputes import fold

NODE = "0x" + "11" * 20
WHO = "0x" + "22" * 20
LEAF = "0x" + "ab" * 32


def row(n: int, event: str, dispute_id: int | None, **args: Any) -> SimpleNamespace:
    return SimpleNamespace(block_number=n, log_index=0, block_timestamp=1000 + n, tx_hash=bytes([n]) * 32,
                           event=event, dispute_id=dispute_id, args=json.dumps(args))


def test_instant_proofs_availability_answers_and_payouts_fold() -> None:
    got = fold([
        row(1, "FaultProven", 1, disputeId=1, kind=1, node=NODE, batchId=0, index=7, challenger=WHO,
            slashed=str(10**22), toChallenger=str(5 * 10**21), toTreasury=str(5 * 10**21)),
        row(2, "FaultProven", 2, disputeId=2, kind=2, node=NODE, batchId=4, index=9, challenger=WHO, slashed=0,
            toChallenger=0, toTreasury=0),
        row(2, "CommissionProven", 2, disputeId=2, batchId=4, leaf=LEAF, reason=3),
        row(3, "ChallengeOpened", 3, disputeId=3, kind=3, node=NODE, batchId=4, index=1, leaf="0x" + "00" * 32,
            challenger=WHO, bond=2 * 10**17, deadline=5000),
        row(4, "ChallengeAnswered", 3, disputeId=3, kind=3, node=NODE, answerer=NODE, bond=2 * 10**17,
            evidence=LEAF),
        row(5, "Withdrawn", None, account=NODE, amount=2 * 10**17),
    ])
    assert sorted(got) == [1, 2, 3]
    eq = got[1]
    assert (eq["kind"], eq["status"], eq["batchId"], eq["index"], eq["slashed"]) == \
        ("equivocation", "upheld", None, 7, str(10**22))
    assert eq["opened"] == eq["closed"] and eq["opened"]["blockNumber"] == 1
    com = got[2]
    assert (com["kind"], com["status"], com["reason"], com["leaf"], com["batchId"], com["slashed"]) == \
        ("commission", "upheld", "seq_out_of_range", LEAF, 4, "0")
    av = got[3]
    assert (av["kind"], av["status"], av["leaf"], av["evidence"], av["bond"]) == \
        ("availability", "answered", LEAF, LEAF, str(2 * 10**17))
    assert av["opened"]["blockNumber"] == 3 and av["closed"]["blockNumber"] == 4 and not av["markedUnavailable"]


def test_an_open_availability_challenge_has_no_leaf_yet() -> None:
    got = fold([row(1, "ChallengeOpened", 1, disputeId=1, kind=3, node=NODE, batchId=2, index=0,
                    leaf="0x" + "00" * 32, challenger=WHO, bond=1, deadline=9)])
    assert (got[1]["status"], got[1]["leaf"], got[1]["closed"], got[1]["deadline"]) == ("open", None, None, 9)
