"""What the explorer's pages are told: chain id, contract addresses, the reward token, and the L2 RPC and DA URLs
they suggest (the verify page shows them and lets the user change them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from attribution.chain.deploy import Contracts, Deployment
from attribution.errors import AttributionError

__all__ = ["ExplorerConfig", "ExplorerError", "explorer_config", "origin_of"]


class ExplorerError(AttributionError, ValueError):
    """The explorer cannot start or answer as asked; the message names the setting or parameter to fix."""


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of an http(s) URL, or None when it is not one (CSP sources are origins)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c in parts.netloc for c in " ;,'\"*"):
        return None
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class ExplorerConfig:
    """The explorer's settings, and the contracts it reads."""

    chain_id: int
    rpc_url: str
    da_url: str
    deploy_block: int
    ledger: str
    registry: str | None
    distributor: str
    node_registry: str
    token: str
    token_symbol: str
    token_decimals: int
    contracts: Contracts

    def __post_init__(self) -> None:
        for name, url in (("rpc_url", self.rpc_url), ("da_url", self.da_url)):
            if origin_of(url) is None:
                raise ExplorerError(f"explorer {name} {url!r} is not an http(s) URL the browser can reach; pass "
                                    "--public-rpc-url / --public-da-url")

    def to_json(self) -> dict[str, Any]:
        """What `/v1/explorer/config` answers."""
        return {"chainId": self.chain_id, "rpcUrl": self.rpc_url, "daUrl": self.da_url.rstrip("/"),
                "deployBlock": self.deploy_block, "ledger": self.ledger, "registry": self.registry,
                "distributor": self.distributor, "nodeRegistry": self.node_registry,
                "token": {"address": self.token, "symbol": self.token_symbol, "decimals": self.token_decimals}}


def explorer_config(deployment: Deployment, contracts: Contracts, *, rpc_url: str, da_url: str) -> ExplorerConfig:
    """The config of `deployment` (bound as `contracts`), suggesting `rpc_url` and `da_url` to the browser."""
    token = contracts.token
    symbol = str(token.contract.functions.symbol().call())
    decimals = int(token.contract.functions.decimals().call())
    return ExplorerConfig(chain_id=contracts.ledger.client.chain_id, rpc_url=rpc_url, da_url=da_url,
                          deploy_block=deployment.deploy_block, ledger=contracts.ledger.address,
                          registry=deployment.addresses.get("AssetRegistry"), distributor=contracts.rewards.address,
                          node_registry=contracts.nodes.address, token=token.address, token_symbol=symbol,
                          token_decimals=decimals, contracts=contracts)
