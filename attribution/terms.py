"""An asset's terms as the AssetRegistry holds them, one type each: `AdapterTerms`, `DatasetTerms`.

The same types serve every reader: the chain wrapper (`AssetRegistry.adapter`: the terms in effect now), the
registry history (`RegistryHistory.adapter_at`: in effect at a time), the reward rule (`ScheduledRegistry` for
offline epochs) and the node's catalogue (what it checks a served adapter against). Fields a reader does not know
keep their defaults (an offline schedule has no content hash). No web3 here: the reward rule stays light.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AdapterTerms", "DatasetTerms"]


@dataclass(frozen=True)
class AdapterTerms:
    """An adapter's money-moving terms (owner, price, datasets and weights, active) and its identity.

    `active_from` is when it (re)became active (0 while deactivated; the chain wrapper's view only).
    """

    owner: str
    price_per_m_tokens: int
    dataset_ids: tuple[bytes, ...] = ()
    weights_bps: tuple[int, ...] = ()
    active: bool = True
    adapter_id: bytes = b""
    content_hash: bytes = b""
    base_model_id: bytes = b""
    uri: str = ""
    active_from: int = 0

    def fee(self, tokens: int) -> int:
        """The fee of `tokens` (prompt + completion) at this price, floored; 0 while inactive (DESIGN.md)."""
        return tokens * self.price_per_m_tokens // 1_000_000 if self.active else 0


@dataclass(frozen=True)
class DatasetTerms:
    """A dataset's contributors and their shares (basis points), and its identity."""

    contributors: tuple[str, ...]
    shares_bps: tuple[int, ...]
    dataset_id: bytes = b""
    owner: str = ""
    dataset_key: bytes = b""
    uri: str = ""
