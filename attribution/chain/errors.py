"""Exceptions of the chain layer: RPC, artifacts, keys, deployments, and the base of decoded reverts.

`ContractRevert` is the base of every decoded revert; the classes of the contracts' custom errors (one per Solidity
name, e.g. `LedgerSeqGap`) are generated from the ABIs by `attribution.chain.reverts`, which reads the artifacts:
this module reads nothing, so `artifacts` can raise its errors without an import circle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attribution.errors import AttributionError

# ----------------------------------------------------------------------------------------------------------------
# Fixed exceptions
# ----------------------------------------------------------------------------------------------------------------


class ChainError(AttributionError):
    """Root of the chain layer's errors (RPC, artifacts, keys, reverts)."""


class RpcError(ChainError):
    """The node answered a JSON-RPC call with an error that is not a revert (bad nonce, no funds, bad params)."""


class ArtifactError(ChainError, FileNotFoundError):
    """A forge artifact is missing or unreadable; run `forge build` (or `make build`)."""


class ToolNotFound(ChainError, FileNotFoundError):
    """A Foundry binary (anvil, forge) is missing; run `make setup`."""


class RpcUnavailable(ChainError, ConnectionError):
    """The JSON-RPC endpoint did not answer; check the URL and that the node (or `loraledger devnet up`) runs."""


class SignerError(ChainError, PermissionError):
    """A signing key could not be loaded (bad keystore, wrong password, missing key)."""


class DevKeyRefused(ChainError, PermissionError):
    """An anvil dev key was offered for a chain other than the local devnet (chain id 31337)."""


class TransactionFailed(ChainError):
    """A transaction was mined with status 0 and no revert data could be recovered."""

    def __init__(self, message: str, tx_hash: str | None = None) -> None:
        super().__init__(message)
        self.tx_hash = tx_hash


class CommitmentNotFound(ChainError, LookupError):
    """A batch's DA commitment is not in its transaction's calldata: `postBatch` was not called directly by the node's
    key (a contract called it), or the RPC served another transaction; the batch cannot be read from DA this way."""


class DeploymentError(ChainError, LookupError):
    """The deployment file is missing, for another chain, or points at addresses without code; redeploy."""


class DevnetError(ChainError, RuntimeError):
    """The local devnet (anvil + DA server) could not be started, stopped or inspected."""


# ----------------------------------------------------------------------------------------------------------------
# Reverts
# ----------------------------------------------------------------------------------------------------------------


class ContractRevert(ChainError):
    """A call or transaction reverted. Subclasses are the contracts' custom errors, one per Solidity name."""

    #: Solidity error name (`LedgerSeqGap`); empty for the base class.
    error_name: str = ""

    def __init__(self, message: str, *, selector: bytes = b"", signature: str = "",
                 args_by_name: Mapping[str, Any] | None = None, data: bytes = b"") -> None:
        super().__init__(message)
        self.selector = selector
        self.signature = signature
        self.args_by_name: dict[str, Any] = dict(args_by_name or {})
        self.data = data
        self.tx_hash: str | None = None

    @property
    def values(self) -> tuple[Any, ...]:
        """The decoded arguments in declaration order."""
        return tuple(self.args_by_name.values())


class RevertedWithReason(ContractRevert):
    """`revert("...")` / `require(cond, "...")`: `Error(string)`; `.reason` holds the string."""

    error_name = "Error"

    @property
    def reason(self) -> str:
        """The revert string."""
        return str(self.args_by_name.get("reason", ""))


class Panicked(ContractRevert):
    """A Solidity panic (`Panic(uint256)`): assertion, arithmetic overflow, bad array index...; `.code` holds it."""

    error_name = "Panic"

    @property
    def code(self) -> int:
        """The panic code (0x11 overflow, 0x32 out-of-bounds index, ...)."""
        return int(self.args_by_name.get("code", 0))


class UnknownRevert(ContractRevert):
    """A revert whose selector is in none of the loaded ABIs (or an empty revert); `.data` holds the raw bytes."""
