"""Move a local dev chain's clock (anvil only): pass a challenge window or a change delay without waiting for it.

A real chain's time cannot be moved, so anything that is not anvil is refused before a request changes state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from attribution.chain.client import ChainClient
from attribution.chain.errors import ChainError

__all__ = ["ClockAdvanced", "advance_clock"]

MAX_ADVANCE_S = 10 * 365 * 24 * 3600


@dataclass(frozen=True)
class ClockAdvanced:
    """The chain's head before and after."""

    before_timestamp: int
    timestamp: int
    block_number: int

    def to_json(self) -> dict[str, Any]:
        """JSON view."""
        return {"beforeTimestamp": self.before_timestamp, "timestamp": self.timestamp, "blockNumber": self.block_number}


def advance_clock(client: ChainClient, seconds: int) -> ClockAdvanced:
    """Mine one block `seconds` after the latest block's time on an anvil chain."""
    if not 0 < seconds <= MAX_ADVANCE_S:
        raise ChainError(f"seconds must be in 1..{MAX_ADVANCE_S}, got {seconds}")
    w3 = client.w3
    try:
        version = str(w3.provider.make_request("web3_clientVersion", []).get("result", ""))  # type: ignore[arg-type]
    except Exception as e:  # noqa: BLE001 - any transport failure: the chain is not reachable
        raise ChainError(f"cannot reach {client.safe_url}: {e}") from e
    if "anvil" not in version.lower():
        raise ChainError(f"{client.safe_url} runs {version or 'an unknown client'}, not anvil: only a local devnet's "
                         "clock can be moved")
    before = int(w3.eth.get_block("latest")["timestamp"])
    w3.provider.make_request("evm_setNextBlockTimestamp", [before + seconds])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    head = w3.eth.get_block("latest")
    return ClockAdvanced(before, int(head["timestamp"]), int(head["number"]))
