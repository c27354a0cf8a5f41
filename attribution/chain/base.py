"""The base of the contract wrappers: a bound contract with calls, transactions and decoded events.

`BoundContract` holds a `ChainClient`, an address and an ABI (its custom errors registered for decoding);
`_call` is an `eth_call`, `_tx` a signed transaction returning a `TxResult`, `events()` the decoded events read
with the paged `eth_getLogs` (`attribution.chain.logs`) from the deployment block.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils import event_abi_to_log_topic
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from attribution.chain.artifacts import ArtifactStore
from attribution.chain.client import ChainClient
from attribution.chain.errors import ChainError
from attribution.chain.logs import iter_logs
from attribution.chain.reverts import registry
from attribution.hashing import is_address, to_checksum_address


def b32(value: bytes | str) -> bytes:
    """32 bytes from bytes or `0x` hex (raises `ValueError` on another length)."""
    raw = bytes.fromhex(value[2:] if value.startswith("0x") else value) if isinstance(value, str) else bytes(value)
    if len(raw) != 32:
        raise ValueError(f"expected 32 bytes, got {len(raw)}")
    return raw


def checksum(address: str) -> str:
    """The EIP-55 checksummed form of `address` (raises `ValueError` for a malformed one)."""
    if not is_address(address):
        raise ValueError(f"{address!r} is not an address (0x + 40 hex digits)")
    return to_checksum_address(address)


@dataclass(frozen=True)
class TxResult:
    """A mined transaction: its hash, block, gas used and the raw receipt."""

    tx_hash: str
    block_number: int
    gas_used: int
    receipt: TxReceipt

    @classmethod
    def of(cls, receipt: TxReceipt) -> TxResult:
        """Build from a web3 receipt."""
        return cls(tx_hash=receipt["transactionHash"].to_0x_hex(), block_number=int(receipt["blockNumber"]),
                   gas_used=int(receipt["gasUsed"]), receipt=receipt)



@dataclass(frozen=True)
class EventLog:
    """A decoded contract event with where it happened (`args` keyed by the Solidity parameter names)."""

    name: str
    args: dict[str, Any]
    block_number: int
    log_index: int
    tx_hash: str

    def as_dict(self) -> dict[str, Any]:
        """`args` plus `block_number`, `log_index`, `tx_hash` (the shape of the older `*_events` helpers)."""
        return {**self.args, "block_number": self.block_number, "log_index": self.log_index, "tx_hash": self.tx_hash}


def _topic_value(abi_type: str, value: Any) -> bytes:
    """An indexed argument as its 32-byte topic (static types only: dynamic ones are stored hashed)."""
    if abi_type == "address":
        value = to_checksum_address(value)
    elif abi_type == "bytes32":
        value = b32(value)
    elif abi_type in ("string", "bytes") or abi_type.endswith("]") or abi_type.startswith("tuple"):
        raise ValueError(f"cannot filter on indexed {abi_type} (stored as a hash); filter after decoding instead")
    return abi_encode([abi_type], [value])


class BoundContract:
    """Base of the wrappers: a client, an address, an ABI (errors registered for decoding).

    `deploy_block` (set by `Deployment.bind`) is where event scans start by default; without it `events()` needs
    an explicit `from_block` (a scan from block 0 is refused by real RPCs and slow everywhere).
    """

    #: forge artifact whose ABI the wrapper uses.
    artifact_name: str = ""

    def __init__(self, client: ChainClient, address: str, abi: list[dict[str, Any]] | None = None,
                 store: ArtifactStore | None = None, deploy_block: int | None = None) -> None:
        if abi is None:
            abi = (store or ArtifactStore()).load(self.artifact_name).abi
        registry().add_abi(abi)
        self.client = client
        self.address = to_checksum_address(address)
        self.abi = abi
        self.deploy_block = deploy_block
        self.contract: Contract = client.contract(self.address, abi)
        self._event_abis: dict[str, dict[str, Any]] = {e["name"]: e for e in abi if e.get("type") == "event"}
        self._event_by_topic: dict[bytes, str] = {
            bytes(event_abi_to_log_topic(e)): n for n, e in self._event_abis.items()}  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.address})"

    def fn(self, name: str, *args: Any) -> ContractFunction:
        """The web3 function object `name(*args)`."""
        return self.contract.get_function_by_name(name)(*args)

    def _call(self, name: str, *args: Any) -> Any:
        return self.client.call(self.fn(name, *args))

    def _tx(self, name: str, *args: Any, account: LocalAccount | None = None) -> TxResult:
        return TxResult.of(self.client.transact(self.fn(name, *args), account=account))

    def with_account(self, account: LocalAccount) -> BoundContract:
        """The same contract, sending from `account` (a new client sharing nothing but the RPC URL)."""
        client = ChainClient(self.client.rpc_url, account)
        return type(self)(client, self.address, self.abi, deploy_block=self.deploy_block)

    def start_block(self, from_block: int | None) -> int:
        """Where an event scan starts: `from_block` when given, else the deployment block."""
        if from_block is not None:
            return int(from_block)
        if self.deploy_block is None:
            raise ValueError(f"{type(self).__name__}.events needs from_block (the deployment block): bind the wrapper "
                             "with Deployment.bind or pass from_block")
        return self.deploy_block

    def decode_log(self, entry: Any) -> EventLog | None:
        """Decode one raw log of this contract (None for a log of another event signature or address)."""
        topics = entry["topics"]
        if not topics or to_checksum_address(entry["address"]) != self.address:
            return None
        name = self._event_by_topic.get(bytes(topics[0]))
        if name is None:
            return None
        ev = self.contract.events[name]().process_log(entry)
        return EventLog(name=name, args=dict(ev["args"]), block_number=int(ev["blockNumber"]),
                        log_index=int(ev["logIndex"]), tx_hash=ev["transactionHash"].to_0x_hex())

    def events(self, names: str | Sequence[str] | None = None, *, from_block: int | None = None,
               to_block: int | str = "latest", reverse: bool = False, **indexed: Any) -> Iterator[EventLog]:
        """Decoded events in chain order (newest first with `reverse`), read with the paged `eth_getLogs`.

        `names`: one event, several, or None for all of this contract's events. `indexed` filters one event's
        indexed arguments by value (`node=addr`; a list means any of them). `from_block` defaults to the
        deployment block.
        """
        wanted = [names] if isinstance(names, str) else list(names) if names is not None else list(self._event_abis)
        unknown = [n for n in wanted if n not in self._event_abis]
        if unknown:
            raise ValueError(f"{type(self).__name__} has no event {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(self._event_abis))}")
        topics: list[Any] = [[k for k, n in self._event_by_topic.items() if n in wanted]]
        if indexed:
            if len(wanted) != 1:
                raise ValueError("indexed-argument filters need exactly one event name")
            inputs = [i for i in self._event_abis[wanted[0]]["inputs"] if i.get("indexed")]
            known = {i["name"] for i in inputs}
            if set(indexed) - known:
                raise ValueError(f"{wanted[0]} has no indexed argument {', '.join(sorted(set(indexed) - known))}; "
                                 f"indexed: {', '.join(sorted(known)) or 'none'}")
            for i in inputs:
                value = indexed.get(i["name"])
                if value is None:
                    topics.append(None)
                elif isinstance(value, list | tuple):
                    topics.append([_topic_value(i["type"], v) for v in value])
                else:
                    topics.append(_topic_value(i["type"], value))
        for entry in iter_logs(self.client, address=self.address, from_block=self.start_block(from_block),
                               to_block=to_block, topics=topics, reverse=reverse):
            decoded = self.decode_log(entry)
            if decoded is not None:
                yield decoded


    def receipt_events(self, tx: TxResult, name: str) -> list[dict[str, Any]]:
        """The arguments of every `name` event this contract emitted in `tx`."""
        out = []
        for entry in tx.receipt["logs"]:
            ev = self.decode_log(entry)
            if ev is not None and ev.name == name:
                out.append(ev.args)
        return out

    def _one_event(self, tx: TxResult, name: str) -> dict[str, Any]:
        found = self.receipt_events(tx, name)
        if not found:
            raise ChainError(f"tx {tx.tx_hash} emitted no {name} event; is {self.address} a {self.artifact_name}?")
        return found[0]


class Governed(BoundContract):
    """A contract under `Ownable2Step` governance (every contract but the ledger and the token)."""

    def governance(self) -> str:
        """The governance address (the owner: a TimelockController on a real chain)."""
        return str(self._call("governance"))

    def pending_governance(self) -> str:
        """The address offered governance and not yet accepted (zero address if none)."""
        return str(self._call("pendingOwner"))

    def transfer_governance(self, new_governance: str, *, account: LocalAccount | None = None) -> TxResult:
        """Governance only: offer governance to `new_governance` (who must `accept_governance`)."""
        return self._tx("transferOwnership", checksum(new_governance), account=account)

    def accept_governance(self, *, account: LocalAccount | None = None) -> TxResult:
        """The pending governance accepts."""
        return self._tx("acceptOwnership", account=account)
