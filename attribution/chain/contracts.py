"""Typed wrappers over the deployed contracts: one class per contract, methods in Python types.

Each wrapper is bound to a `ChainClient` (connection + default signer) and an address; views return plain Python
values or small frozen dataclasses, state-changing methods return a `TxResult` (receipt + what the event said).
Reverts raise the decoded custom error, e.g. `errors.error_class("LedgerSeqGap")` with `.args_by_name`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils import event_abi_to_log_topic
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from attribution.chain.artifacts import ArtifactStore, keccak
from attribution.chain.client import ChainClient
from attribution.chain.errors import ChainError, registry
from attribution.chain.logs import iter_logs

#: ABI types of the attribution record (v1), DESIGN.md field order.
RECORD_TYPES: tuple[str, ...] = ("uint256", "address", "address", "uint64", "bytes32", "bytes32", "bytes32[]",
                                 "uint16[]", "uint32", "uint32", "uint64", "bytes32")
RECORD_FIELDS: tuple[str, ...] = ("chainId", "ledger", "node", "seq", "modelId", "adapterId", "datasetIds",
                                  "weightsBps", "promptTokens", "completionTokens", "timestamp", "ioHash")


def _b32(value: bytes | str) -> bytes:
    raw = bytes.fromhex(value[2:] if value.startswith("0x") else value) if isinstance(value, str) else bytes(value)
    if len(raw) != 32:
        raise ValueError(f"expected 32 bytes, got {len(raw)}")
    return raw


def record_tuple(values: Sequence[Any]) -> tuple[Any, ...]:
    """Normalize the 12 record values (DESIGN.md order) for ABI encoding: checksummed addresses, 32-byte ids."""
    if len(values) != len(RECORD_FIELDS):
        raise ValueError(f"a record has {len(RECORD_FIELDS)} values ({', '.join(RECORD_FIELDS)}), got {len(values)}")
    (chain_id, ledger, node, seq, model_id, adapter_id, dataset_ids, weights, prompt, completion, ts, io_hash) = values
    return (int(chain_id), Web3.to_checksum_address(ledger), Web3.to_checksum_address(node), int(seq),
            _b32(model_id), _b32(adapter_id), [_b32(d) for d in dataset_ids], [int(w) for w in weights],
            int(prompt), int(completion), int(ts), _b32(io_hash))


def record_leaf_local(values: Sequence[Any]) -> bytes:
    """The StandardMerkleTree leaf of a record computed in Python (must equal `Ledger.record_leaf`)."""
    return keccak(keccak(abi_encode(list(RECORD_TYPES), list(record_tuple(values)))))


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
class PostedBatch:
    """What `postBatch` did: the new batch id and the transaction."""

    batch_id: int
    tx: TxResult


@dataclass(frozen=True)
class Batch:
    """A posted batch as stored by the ledger (`IAttributionLedger.Batch`)."""

    batch_id: int
    root: bytes
    da_commitment_hash: bytes
    node: str
    first_seq: int
    count: int
    posted_at: int


@dataclass(frozen=True)
class Dataset:
    """A registered dataset."""

    dataset_id: bytes
    owner: str
    contributors: tuple[str, ...]
    shares_bps: tuple[int, ...]
    uri: str


@dataclass(frozen=True)
class BaseModel:
    """A registered base model."""

    model_id: bytes
    owner: str
    uri: str


@dataclass(frozen=True)
class Adapter:
    """A registered adapter with its dataset provenance and price."""

    adapter_id: bytes
    owner: str
    base_model_id: bytes
    dataset_ids: tuple[bytes, ...]
    weights_bps: tuple[int, ...]
    price_per_m_tokens: int
    uri: str
    active: bool


@dataclass(frozen=True)
class NodeStake:
    """A node's stake in the NodeRegistry."""

    bonded: int
    unbonding: int
    unbondable_at: int


@dataclass(frozen=True)
class Proposal:
    """A reward root proposal (`IRewardDistributor.Proposal`)."""

    epoch: int
    root: bytes
    total: int
    payload_commitment_hash: bytes
    proposed_at: int
    claimable_at: int
    vetoed: bool


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
        value = Web3.to_checksum_address(value)
    elif abi_type == "bytes32":
        value = _b32(value)
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
        self.address = Web3.to_checksum_address(address)
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

    def _start_block(self, from_block: int | None) -> int:
        if from_block is not None:
            return int(from_block)
        if self.deploy_block is None:
            raise ValueError(f"{type(self).__name__}.events needs from_block (the deployment block): bind the wrapper "
                             "with Deployment.bind or pass from_block")
        return self.deploy_block

    def decode_log(self, entry: Any) -> EventLog | None:
        """Decode one raw log of this contract (None for a log of another event signature or address)."""
        topics = entry["topics"]
        if not topics or Web3.to_checksum_address(entry["address"]) != self.address:
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
        for entry in iter_logs(self.client, address=self.address, from_block=self._start_block(from_block),
                               to_block=to_block, topics=topics, reverse=reverse):
            decoded = self.decode_log(entry)
            if decoded is not None:
                yield decoded


class Token(BoundContract):
    """An ERC-20 (the DevToken on devnets: owner-mintable)."""

    artifact_name = "DevToken"

    def balance_of(self, account: str) -> int:
        """`account`'s balance."""
        return int(self._call("balanceOf", Web3.to_checksum_address(account)))

    def allowance(self, owner: str, spender: str) -> int:
        """What `spender` may still pull from `owner`."""
        return int(self._call("allowance", Web3.to_checksum_address(owner), Web3.to_checksum_address(spender)))

    def total_supply(self) -> int:
        """Total supply."""
        return int(self._call("totalSupply"))

    def approve(self, spender: str, amount: int, *, account: LocalAccount | None = None) -> TxResult:
        """Allow `spender` to pull `amount`."""
        return self._tx("approve", Web3.to_checksum_address(spender), int(amount), account=account)

    def transfer(self, to: str, amount: int, *, account: LocalAccount | None = None) -> TxResult:
        """Send `amount` to `to`."""
        return self._tx("transfer", Web3.to_checksum_address(to), int(amount), account=account)

    def mint(self, to: str, amount: int, *, account: LocalAccount | None = None) -> TxResult:
        """DevToken owner only: mint `amount` to `to`."""
        return self._tx("mint", Web3.to_checksum_address(to), int(amount), account=account)


class AssetRegistry(BoundContract):
    """Datasets, base models and adapters with their provenance and price."""

    artifact_name = "AssetRegistry"

    def register_dataset(self, dataset_id: bytes | str, contributors: Sequence[str], shares_bps: Sequence[int],
                         uri: str = "", *, account: LocalAccount | None = None) -> TxResult:
        """Register a dataset owned by the sender."""
        return self._tx("registerDataset", _b32(dataset_id), [Web3.to_checksum_address(c) for c in contributors],
                        [int(s) for s in shares_bps], uri, account=account)

    def update_dataset(self, dataset_id: bytes | str, contributors: Sequence[str], shares_bps: Sequence[int],
                       uri: str = "", *, account: LocalAccount | None = None) -> TxResult:
        """Owner only: replace a dataset's contributors, shares and uri."""
        return self._tx("updateDataset", _b32(dataset_id), [Web3.to_checksum_address(c) for c in contributors],
                        [int(s) for s in shares_bps], uri, account=account)

    def register_base_model(self, model_id: bytes | str, uri: str = "", *,
                            account: LocalAccount | None = None) -> TxResult:
        """Register a base model owned by the sender."""
        return self._tx("registerBaseModel", _b32(model_id), uri, account=account)

    def update_base_model(self, model_id: bytes | str, uri: str, *, account: LocalAccount | None = None) -> TxResult:
        """Owner only: change a base model's uri."""
        return self._tx("updateBaseModel", _b32(model_id), uri, account=account)

    def register_adapter(self, adapter_id: bytes | str, base_model_id: bytes | str, dataset_ids: Sequence[bytes | str],
                         weights_bps: Sequence[int], price_per_m_tokens: int, uri: str = "", *,
                         account: LocalAccount | None = None) -> TxResult:
        """Register an adapter (starts active) owned by the sender."""
        return self._tx("registerAdapter", _b32(adapter_id), _b32(base_model_id), [_b32(d) for d in dataset_ids],
                        [int(w) for w in weights_bps], int(price_per_m_tokens), uri, account=account)

    def update_adapter(self, adapter_id: bytes | str, dataset_ids: Sequence[bytes | str], weights_bps: Sequence[int],
                       price_per_m_tokens: int, uri: str = "", *, account: LocalAccount | None = None) -> TxResult:
        """Owner only: replace an adapter's provenance, price and uri."""
        return self._tx("updateAdapter", _b32(adapter_id), [_b32(d) for d in dataset_ids],
                        [int(w) for w in weights_bps], int(price_per_m_tokens), uri, account=account)

    def set_adapter_active(self, adapter_id: bytes | str, active: bool, *,
                           account: LocalAccount | None = None) -> TxResult:
        """Owner only: (de)activate an adapter."""
        return self._tx("setAdapterActive", _b32(adapter_id), bool(active), account=account)

    def dataset(self, dataset_id: bytes | str) -> Dataset:
        """A dataset (raises `RegistryUnknownDataset` if not registered)."""
        owner, contributors, shares, uri = self._call("dataset", _b32(dataset_id))
        return Dataset(_b32(dataset_id), owner, tuple(contributors), tuple(int(s) for s in shares), uri)

    def base_model(self, model_id: bytes | str) -> BaseModel:
        """A base model (raises `RegistryUnknownBaseModel` if not registered)."""
        owner, uri = self._call("baseModel", _b32(model_id))
        return BaseModel(_b32(model_id), owner, uri)

    def adapter(self, adapter_id: bytes | str) -> Adapter:
        """An adapter (raises `RegistryUnknownAdapter` if not registered)."""
        owner, base, datasets, weights, price, uri, active = self._call("adapter", _b32(adapter_id))
        return Adapter(_b32(adapter_id), owner, bytes(base), tuple(bytes(d) for d in datasets),
                       tuple(int(w) for w in weights), int(price), uri, bool(active))

    def dataset_exists(self, dataset_id: bytes | str) -> bool:
        """Whether the dataset is registered."""
        return bool(self._call("datasetExists", _b32(dataset_id)))

    def base_model_exists(self, model_id: bytes | str) -> bool:
        """Whether the base model is registered."""
        return bool(self._call("baseModelExists", _b32(model_id)))

    def adapter_exists(self, adapter_id: bytes | str) -> bool:
        """Whether the adapter is registered."""
        return bool(self._call("adapterExists", _b32(adapter_id)))


class NodeRegistry(BoundContract):
    """Node operators' stake; `is_active(node)` decides who may post batches."""

    artifact_name = "NodeRegistry"

    def bond(self, amount: int, *, account: LocalAccount | None = None) -> TxResult:
        """Bond `amount` of the stake token (approve the registry first; see `approve_and_bond`)."""
        return self._tx("bond", int(amount), account=account)

    def approve_and_bond(self, token: Token, amount: int, *, account: LocalAccount | None = None) -> TxResult:
        """Approve the registry to pull `amount`, then bond it."""
        token.approve(self.address, amount, account=account)
        return self.bond(amount, account=account)

    def request_unbond(self, amount: int, *, account: LocalAccount | None = None) -> TxResult:
        """Move `amount` from bonded to unbonding."""
        return self._tx("requestUnbond", int(amount), account=account)

    def withdraw(self, *, account: LocalAccount | None = None) -> TxResult:
        """Withdraw unbonded stake after the delay."""
        return self._tx("withdraw", account=account)

    def slash(self, node: str, amount: int, to: str, *, account: LocalAccount | None = None) -> TxResult:
        """Governance only: slash `amount` of `node`'s stake to `to`."""
        return self._tx("slash", Web3.to_checksum_address(node), int(amount), Web3.to_checksum_address(to),
                        account=account)

    def set_min_bond(self, amount: int, *, account: LocalAccount | None = None) -> TxResult:
        """Governance only: set the minimum bond."""
        return self._tx("setMinBond", int(amount), account=account)

    def set_unbonding_delay(self, delay_s: int, *, account: LocalAccount | None = None) -> TxResult:
        """Governance only: set the unbonding delay."""
        return self._tx("setUnbondingDelay", int(delay_s), account=account)

    def is_active(self, node: str) -> bool:
        """Whether `node` may post batches."""
        return bool(self._call("isActive", Web3.to_checksum_address(node)))

    def node(self, node: str) -> NodeStake:
        """`node`'s stake."""
        bonded, unbonding, at = self._call("node", Web3.to_checksum_address(node))
        return NodeStake(int(bonded), int(unbonding), int(at))

    def min_bond(self) -> int:
        """The minimum bonded stake of an active node."""
        return int(self._call("minBond"))

    def unbonding_delay(self) -> int:
        """The unbonding delay in seconds."""
        return int(self._call("unbondingDelay"))

    def stake_token(self) -> str:
        """The stake token's address."""
        return str(self._call("stakeToken"))

    def governance(self) -> str:
        """The governance address."""
        return str(self._call("governance"))


class Ledger(BoundContract):
    """The AttributionLedger: gap-free batches per node, record leaves and proofs."""

    artifact_name = "AttributionLedger"

    def post_batch(self, first_seq: int, count: int, root: bytes | str, da_commitment: bytes, *,
                   account: LocalAccount | None = None) -> PostedBatch:
        """Post the sender's next batch; returns the new batch id (from the `BatchPosted` event)."""
        tx = self._tx("postBatch", int(first_seq), int(count), _b32(root), bytes(da_commitment), account=account)
        events = self.contract.events.BatchPosted().process_receipt(tx.receipt)
        if not events:
            raise ChainError(f"postBatch tx {tx.tx_hash} emitted no BatchPosted event; is {self.address} the ledger?")
        return PostedBatch(batch_id=int(events[0]["args"]["batchId"]), tx=tx)

    def next_seq(self, node: str) -> int:
        """The seq that `node`'s next batch must start at."""
        return int(self._call("nextSeq", Web3.to_checksum_address(node)))

    def batch_count(self) -> int:
        """Number of batches posted (= latest batch id)."""
        return int(self._call("batchCount"))

    def batch(self, batch_id: int) -> Batch:
        """A posted batch (raises `LedgerUnknownBatch` for an unknown id)."""
        root, da_hash, node, first_seq, count, posted_at = self._call("batch", int(batch_id))
        return Batch(int(batch_id), bytes(root), bytes(da_hash), node, int(first_seq), int(count), int(posted_at))

    def registry(self) -> str:
        """The NodeRegistry address the ledger consults."""
        return str(self._call("registry"))

    def record_leaf(self, record_values: Sequence[Any]) -> bytes:
        """The on-chain leaf of a record (12 values in DESIGN.md order)."""
        return bytes(self._call("recordLeaf", record_tuple(record_values)))

    def verify_record(self, batch_id: int, record_values: Sequence[Any], proof: Sequence[bytes | str]) -> bool:
        """Whether batch `batch_id` attributes the record with this proof."""
        return bool(self._call("verifyRecord", int(batch_id), record_tuple(record_values), [_b32(p) for p in proof]))

    def batch_posted_events(self, from_block: int | None = None, to_block: int | str = "latest",
                            node: str | None = None) -> list[dict[str, Any]]:
        """`BatchPosted` events in a block range (optionally of one node) as plain dicts (paged `eth_getLogs`;
        `from_block` defaults to the deployment block)."""
        filters: dict[str, Any] = {"node": node} if node else {}
        return [ev.as_dict() for ev in self.events("BatchPosted", from_block=from_block, to_block=to_block,
                                                   **filters)]

    def batch_id_for(self, node: str, seq: int, from_block: int | None = None) -> int | None:
        """The id of the batch of `node` that covers `seq`, or None when `seq` is not posted yet.

        For crash recovery: a node whose `next_seq` moved past its pending batch learns here which batch landed.
        Reads `BatchPosted` newest first, so a recent batch is found without scanning the whole history.
        """
        if seq >= self.next_seq(node):
            return None
        for ev in self.events("BatchPosted", from_block=from_block, reverse=True, node=node):
            first, count = int(ev.args["firstSeq"]), int(ev.args["count"])
            if first <= seq < first + count:
                return int(ev.args["batchId"])
            if first + count <= seq:
                return None  # batches are gap-free and in order: older ones end even earlier
        return None


class RewardDistributor(BoundContract):
    """Cumulative Merkle reward claims with a challenge window and a guardian veto."""

    artifact_name = "RewardDistributor"

    def propose_root(self, epoch: int, root: bytes | str, total: int, payload_commitment: bytes = b"", *,
                     account: LocalAccount | None = None) -> TxResult:
        """Poster only: propose the cumulative root of `epoch`."""
        return self._tx("proposeRoot", int(epoch), _b32(root), int(total), bytes(payload_commitment), account=account)

    def veto_root(self, epoch: int, *, account: LocalAccount | None = None) -> TxResult:
        """Guardian only: veto the latest proposal in its window."""
        return self._tx("vetoRoot", int(epoch), account=account)

    def claim(self, account_addr: str, cumulative_amount: int, expected_root: bytes | str,
              proof: Sequence[bytes | str], *, account: LocalAccount | None = None) -> TxResult:
        """Pay `account_addr` its unclaimed reward (anyone may send)."""
        return self._tx("claim", Web3.to_checksum_address(account_addr), int(cumulative_amount), _b32(expected_root),
                        [_b32(p) for p in proof], account=account)

    def fund(self, amount: int, *, account: LocalAccount | None = None) -> TxResult:
        """Pull `amount` reward tokens from the sender (approve first)."""
        return self._tx("fund", int(amount), account=account)

    def set_shares(self, node_share_bps: int, adapter_share_bps: int, *,
                   account: LocalAccount | None = None) -> TxResult:
        """Governance only: set the reward split."""
        return self._tx("setShares", int(node_share_bps), int(adapter_share_bps), account=account)

    def set_challenge_window(self, window_s: int, *, account: LocalAccount | None = None) -> TxResult:
        """Governance only: set the challenge window of future proposals."""
        return self._tx("setChallengeWindow", int(window_s), account=account)

    def current_root(self) -> bytes:
        """The claimable root (zero bytes if none)."""
        return bytes(self._call("currentRoot"))

    def current_epoch(self) -> int:
        """The epoch of the claimable root."""
        return int(self._call("currentEpoch"))

    def latest_epoch(self) -> int:
        """The latest proposed epoch."""
        return int(self._call("latestEpoch"))

    def proposal(self, epoch: int) -> Proposal:
        """The proposal of `epoch` (all zero if none)."""
        root, total, commitment_hash, proposed_at, claimable_at, vetoed = self._call("proposal", int(epoch))
        return Proposal(int(epoch), bytes(root), int(total), bytes(commitment_hash), int(proposed_at),
                        int(claimable_at), bool(vetoed))

    def claim_leaf(self, account_addr: str, cumulative_amount: int) -> bytes:
        """The leaf of `(account, cumulativeAmount)`."""
        return bytes(self._call("claimLeaf", Web3.to_checksum_address(account_addr), int(cumulative_amount)))

    def claimed(self, account_addr: str) -> int:
        """Total paid to `account_addr` so far."""
        return int(self._call("claimed", Web3.to_checksum_address(account_addr)))

    def total_funded(self) -> int:
        """Everything ever funded."""
        return int(self._call("totalFunded"))

    def token(self) -> str:
        """The reward token's address."""
        return str(self._call("token"))

    def shares(self) -> tuple[int, int]:
        """(nodeShareBps, adapterShareBps)."""
        return int(self._call("nodeShareBps")), int(self._call("adapterShareBps"))

    def challenge_window(self) -> int:
        """The challenge window in seconds."""
        return int(self._call("challengeWindow"))

    def roles(self) -> dict[str, str]:
        """governance, poster, guardian, treasury."""
        return {r: str(self._call(r)) for r in ("governance", "poster", "guardian", "treasury")}
