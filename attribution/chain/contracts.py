"""Typed wrappers over the deployed contracts: one class per contract, methods in Python types.

Each wrapper is bound to a `ChainClient` (connection + default signer) and an address; views return plain Python
values or small frozen dataclasses, state-changing methods return a `TxResult` (receipt + what the event said).
Reverts raise the decoded custom error, e.g. `reverts.error_class("LedgerSeqGap")` with `.args_by_name`.
`AssetRegistry` lives in `attribution.chain.assets` (re-exported here), the common base in `attribution.chain.base`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount

from attribution.chain.assets import AssetKind, AssetRegistry, adapter_id_for, dataset_id_for
from attribution.chain.base import BoundContract, EventLog, Governed, TxResult, b32, checksum
from attribution.chain.batch import PostedBatch
from attribution.chain.commitments import posted_commitment
from attribution.chain.errors import ChainError
from attribution.hashing import to_checksum_address
from attribution.records.record import RECORD_FIELDS

__all__ = [
    "AssetKind", "AssetRegistry", "BoundContract", "EventLog",
    "FeeDeposit", "Governed", "Ledger", "NodeRegistry", "NodeStake", "PostedBatch", "Proposal", "RewardDistributor",
    "Timelock", "TimelockOperation", "Token", "TxResult", "adapter_id_for", "dataset_id_for", "record_tuple",
]


def record_tuple(values: Sequence[Any]) -> tuple[Any, ...]:
    """Normalize the 12 record values (DESIGN.md order) for ABI encoding: checksummed addresses, 32-byte ids."""
    if len(values) != len(RECORD_FIELDS):
        raise ValueError(f"a record has {len(RECORD_FIELDS)} values ({', '.join(RECORD_FIELDS)}), got {len(values)}")
    (chain_id, ledger, node, seq, model_id, adapter_id, dataset_ids, weights, prompt, completion, ts, io_hash) = values
    return (int(chain_id), to_checksum_address(ledger), to_checksum_address(node), int(seq),
            b32(model_id), b32(adapter_id), [b32(d) for d in dataset_ids], [int(w) for w in weights],
            int(prompt), int(completion), int(ts), b32(io_hash))


@dataclass(frozen=True)
class NodeStake:
    """A node's stake in the NodeRegistry."""

    bonded: int
    unbonding: int
    unbondable_at: int
    exit_at: int = 0


@dataclass(frozen=True)
class Proposal:
    """A reward root proposal (`IRewardDistributor.Proposal`): `total` = previous total + `debited`; covers the
    blocks up to `end_block`; `claimable_at` is 0 until it is sealed."""

    epoch: int
    root: bytes
    total: int
    debited: int
    payload_commitment_hash: bytes
    end_block: int
    proposed_at: int
    claimable_at: int
    pages: int
    released_pages: int
    vetoed: bool


@dataclass(frozen=True)
class FeeDeposit:
    """What `depositFees` did: the amount credited (what arrived) and the node's credit afterwards."""

    node: str
    credited: int
    credit: int
    tx: TxResult


class Token(BoundContract):
    """An ERC-20 (the DevToken on devnets: owner-mintable)."""

    artifact_name = "DevToken"

    def balance_of(self, account: str) -> int:
        """`account`'s balance."""
        return int(self._call("balanceOf", to_checksum_address(account)))

    def allowance(self, owner: str, spender: str) -> int:
        """What `spender` may still pull from `owner`."""
        return int(self._call("allowance", to_checksum_address(owner), to_checksum_address(spender)))

    def total_supply(self) -> int:
        """Total supply."""
        return int(self._call("totalSupply"))

    def approve(self, spender: str, amount: int, *, account: LocalAccount | None = None) -> TxResult:
        """Allow `spender` to pull `amount`."""
        return self._tx("approve", to_checksum_address(spender), int(amount), account=account)

    def transfer(self, to: str, amount: int, *, account: LocalAccount | None = None) -> TxResult:
        """Send `amount` to `to`."""
        return self._tx("transfer", to_checksum_address(to), int(amount), account=account)

    def mint(self, to: str, amount: int, *, account: LocalAccount | None = None) -> TxResult:
        """DevToken owner only: mint `amount` to `to`."""
        return self._tx("mint", to_checksum_address(to), int(amount), account=account)



class NodeRegistry(Governed):
    """Node operators' stake; `is_active(node)` decides who may post batches."""

    artifact_name = "NodeRegistry"

    def bond(self, amount: int, *, account: LocalAccount | None = None) -> TxResult:
        """Bond `amount` of the stake token (approve the registry first; see `approve_and_bond`); the node is
        credited with what actually arrived (the `Bonded` event's `amount`)."""
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
        """Slasher only (the disputes contract; governance cannot): slash `amount` of `node`'s stake to `to`."""
        return self._tx("slash", to_checksum_address(node), int(amount), to_checksum_address(to),
                        account=account)

    def set_slasher(self, slasher: str, *, account: LocalAccount | None = None) -> TxResult:
        """Governance only (timelocked on a real chain): set the only address that may slash."""
        return self._tx("setSlasher", checksum(slasher), account=account)

    def slasher(self) -> str:
        """The only address that may slash (the zero address: nobody)."""
        return str(self._call("slasher"))

    def set_min_bond(self, amount: int, *, account: LocalAccount | None = None) -> TxResult:
        """Governance only: set the minimum bond."""
        return self._tx("setMinBond", int(amount), account=account)

    def set_unbonding_delay(self, delay_s: int, *, account: LocalAccount | None = None) -> TxResult:
        """Governance only: set the unbonding delay."""
        return self._tx("setUnbondingDelay", int(delay_s), account=account)

    def is_active(self, node: str) -> bool:
        """Whether `node` may post batches."""
        return bool(self._call("isActive", to_checksum_address(node)))

    def node(self, node: str) -> NodeStake:
        """`node`'s stake."""
        bonded, unbonding, at, exit_at = self._call("node", to_checksum_address(node))
        return NodeStake(int(bonded), int(unbonding), int(at), int(exit_at))

    def min_bond(self) -> int:
        """The minimum bonded stake of an active node."""
        return int(self._call("minBond"))

    def unbonding_delay(self) -> int:
        """The unbonding delay in seconds."""
        return int(self._call("unbondingDelay"))

    def stake_token(self) -> str:
        """The stake token's address."""
        return str(self._call("stakeToken"))

    def has_exited(self, node: str) -> bool:
        """Whether `node` has left: no bonded stake and its exit time (`NodeStake.exit_at`) has passed."""
        return bool(self._call("hasExited", checksum(node)))

    def limits(self) -> dict[str, int]:
        """MIN_UNBONDING_DELAY and MAX_UNBONDING_DELAY."""
        return {n: int(self._call(n)) for n in ("MIN_UNBONDING_DELAY", "MAX_UNBONDING_DELAY")}



class Ledger(BoundContract):
    """The AttributionLedger: gap-free batches per node, record leaves and proofs."""

    artifact_name = "AttributionLedger"

    def post_batch(self, first_seq: int, count: int, root: bytes | str, da_commitment: bytes, *,
                   first_timestamp: int | None = None, last_timestamp: int | None = None,
                   account: LocalAccount | None = None) -> PostedBatch:
        """Post the sender's next batch, whose records' timestamps lie in `[first_timestamp, last_timestamp]`
        (each defaults to where the sender's previous batch ended, which is always accepted but covers only
        records of that second); returns the posted batch as its `BatchPosted` event says (new id, block, tx)."""
        if first_timestamp is None or last_timestamp is None:
            sender = (account or self.client.account)
            prev = self.last_record_timestamp(sender.address) if sender is not None else 0
            first_timestamp = prev if first_timestamp is None else first_timestamp
            last_timestamp = prev if last_timestamp is None else last_timestamp
        tx = self._tx("postBatch", int(first_seq), int(count), int(first_timestamp), int(last_timestamp),
                      b32(root), bytes(da_commitment), account=account)
        events = self.contract.events.BatchPosted().process_receipt(tx.receipt)
        if not events:
            raise ChainError(f"postBatch tx {tx.tx_hash} emitted no BatchPosted event; is {self.address} the ledger?")
        return PostedBatch.from_log(events[0], bytes(da_commitment))  # what this call posted

    def next_seq(self, node: str, *, block: int | str = "latest") -> int:
        """The seq that `node`'s next batch must start at (as of `block`)."""
        return int(self.client.call(self.fn("nextSeq", to_checksum_address(node)), block=block))

    def batch_count(self) -> int:
        """Number of batches posted (= latest batch id)."""
        return int(self._call("batchCount"))

    def batch(self, batch_id: int) -> PostedBatch:
        """A posted batch as the ledger stores it (raises `LedgerUnknownBatch` for an unknown id)."""
        return PostedBatch.from_stored(batch_id, self._call("batch", int(batch_id)))

    def last_record_timestamp(self, node: str) -> int:
        """The last record timestamp of `node`'s latest batch: its next batch may not start earlier."""
        return int(self._call("lastRecordTimestamp", checksum(node)))

    def last_post_block(self, node: str) -> int:
        """The block of `node`'s latest batch (0 if none): its credit stays until a settled epoch covers it."""
        return int(self._call("lastPostBlock", checksum(node)))

    def limits(self) -> dict[str, int]:
        """MAX_BATCH_RECORDS and MAX_COMMITMENT_BYTES (the batcher caps batches to fit both)."""
        return {n: int(self._call(n)) for n in ("MAX_BATCH_RECORDS", "MAX_COMMITMENT_BYTES")}

    def registry(self) -> str:
        """The NodeRegistry address the ledger consults."""
        return str(self._call("registry"))

    def record_leaf(self, record_values: Sequence[Any]) -> bytes:
        """The on-chain leaf of a record (12 values in DESIGN.md order)."""
        return bytes(self._call("recordLeaf", record_tuple(record_values)))

    def verify_record(self, batch_id: int, record_values: Sequence[Any], proof: Sequence[bytes | str]) -> bool:
        """Whether batch `batch_id` attributes the record with this proof."""
        return bool(self._call("verifyRecord", int(batch_id), record_tuple(record_values), [b32(p) for p in proof]))

    def batch_posted_events(self, from_block: int | None = None, to_block: int | str = "latest",
                            node: str | None = None) -> list[dict[str, Any]]:
        """`BatchPosted` events in a block range (optionally of one node) as plain dicts (paged `eth_getLogs`;
        `from_block` defaults to the deployment block), each with its `daCommitment` read from the posting
        transaction's calldata (`attribution.chain.commitments`)."""
        filters: dict[str, Any] = {"node": node} if node else {}
        return [{**ev.as_dict(), "daCommitment": posted_commitment(self, ev.tx_hash, ev.args["daCommitmentHash"])}
                for ev in self.events("BatchPosted", from_block=from_block, to_block=to_block, **filters)]

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



class RewardDistributor(Governed):
    """Prepaid node fee credit, per-epoch debits, cumulative Merkle reward claims with a challenge window."""

    artifact_name = "RewardDistributor"

    # -- fee credit -------------------------------------------------------------------------------------------

    def deposit_fees(self, node: str, amount: int, *, account: LocalAccount | None = None) -> FeeDeposit:
        """Add to `node`'s fee credit, pulling `amount` from the sender (approve first; see
        `approve_and_deposit`). Anyone may top up any node."""
        tx = self._tx("depositFees", checksum(node), int(amount), account=account)
        ev = self._one_event(tx, "FeesDeposited")
        return FeeDeposit(str(ev["node"]), int(ev["amount"]), int(ev["credit"]), tx)

    def approve_and_deposit(self, token: Token, node: str, amount: int, *,
                            account: LocalAccount | None = None) -> FeeDeposit:
        """Approve the distributor to pull `amount`, then deposit it as `node`'s fee credit."""
        token.approve(self.address, amount, account=account)
        return self.deposit_fees(node, amount, account=account)

    def withdraw_fee_credit(self, to: str, *, account: LocalAccount | None = None) -> int:
        """Node only, after it exited the NodeRegistry and once a settled epoch covers its last batch: send all its
        unused credit to `to`; returns the amount."""
        tx = self._tx("withdrawFeeCredit", checksum(to), account=account)
        return int(self._one_event(tx, "FeeCreditWithdrawn")["amount"])

    def fee_credit(self, node: str) -> int:
        """`node`'s unused fee credit now (deposits minus debits not released, minus withdrawals)."""
        return int(self._call("feeCredit", checksum(node)))

    def credit_at(self, node: str, block_number: int) -> int:
        """`node`'s credit for an epoch ending at `block_number`: deposits up to that block minus every debit and
        withdrawal so far. What the rule debits at most; later deposits do not count."""
        return int(self._call("creditAt", checksum(node), int(block_number)))

    def total_withdrawn(self) -> int:
        """Everything withdrawn by exited nodes."""
        return int(self._call("totalWithdrawn"))

    def total_deposited(self) -> int:
        """Everything ever credited by `depositFees`."""
        return int(self._call("totalDeposited"))

    def total_debited(self) -> int:
        """The debits of all proposals not vetoed (= the latest non-vetoed root's total)."""
        return int(self._call("totalDebited"))

    def total_claimed(self) -> int:
        """Everything paid out by `claim`."""
        return int(self._call("totalClaimed"))

    # -- epochs -----------------------------------------------------------------------------------------------

    def propose_root(self, epoch: int, end_block: int, root: bytes | str, total: int,
                     payload_commitment: bytes = b"", *, account: LocalAccount | None = None) -> TxResult:
        """Poster only: open `epoch`'s proposal covering the blocks up to `end_block` (< the current block)."""
        return self._tx("proposeRoot", int(epoch), int(end_block), b32(root), int(total), bytes(payload_commitment),
                        account=account)

    def add_debits(self, epoch: int, nodes: Sequence[str], debits: Sequence[int], *,
                   account: LocalAccount | None = None) -> TxResult:
        """Poster only: one page (at most `MAX_PAGE_NODES`) of debits of the open proposal."""
        return self._tx("addDebits", int(epoch), [checksum(n) for n in nodes], [int(d) for d in debits],
                        account=account)

    def seal_root(self, epoch: int, *, account: LocalAccount | None = None) -> TxResult:
        """Poster only: close the open proposal (its total is checked) and start its challenge window."""
        return self._tx("sealRoot", int(epoch), account=account)

    def propose_paged(self, epoch: int, end_block: int, root: bytes | str, total: int, payload_commitment: bytes,
                      nodes: Sequence[str], debits: Sequence[int], *, page_size: int | None = None,
                      account: LocalAccount | None = None) -> list[TxResult]:
        """Open, page and seal `epoch`: `debits[i]` is taken from `nodes[i]`'s credit at the end block, in pages
        of at most `MAX_PAGE_NODES`. Returns the transactions."""
        size = int(page_size or self.limits()["MAX_PAGE_NODES"])
        txs = [self.propose_root(epoch, end_block, root, total, payload_commitment, account=account)]
        for i in range(0, len(nodes), size):
            txs.append(self.add_debits(epoch, nodes[i:i + size], debits[i:i + size], account=account))
        txs.append(self.seal_root(epoch, account=account))
        return txs

    def veto_root(self, epoch: int, *, account: LocalAccount | None = None) -> int:
        """Guardian only: veto the latest proposal (open or in its window); returns what its pages debited (given
        back by `release_all`)."""
        tx = self._tx("vetoRoot", int(epoch), account=account)
        return int(self._one_event(tx, "RootVetoed")["debited"])

    def release_debits(self, epoch: int, page: int, nodes: Sequence[str], debits: Sequence[int], *,
                       account: LocalAccount | None = None) -> int:
        """Anyone: give page `page` of vetoed `epoch` back to its nodes; returns the amount released."""
        tx = self._tx("releaseDebits", int(epoch), int(page), [checksum(n) for n in nodes], [int(d) for d in debits],
                      account=account)
        return int(self._one_event(tx, "DebitsReleased")["released"])

    def pages_of(self, epoch: int, from_block: int | None = None) -> list[tuple[list[str], list[int]]]:
        """The (nodes, debits) of each page of `epoch`'s latest proposal, from its `DebitsAdded` events."""
        pages: dict[int, tuple[list[str], list[int]]] = {}
        for ev in self.events("DebitsAdded", from_block=from_block, epoch=int(epoch)):
            page = int(ev.args["page"])
            if page == 0:
                pages = {}  # a proposal again after a veto starts its pages over
            pages[page] = ([str(n) for n in ev.args["nodes"]], [int(d) for d in ev.args["debits"]])
        return [pages[i] for i in sorted(pages)]

    def release_all(self, epoch: int, *, account: LocalAccount | None = None) -> int:
        """Release every page of vetoed `epoch` not yet released; returns the total released."""
        p = self.proposal(epoch)
        pages = self.pages_of(epoch)
        released = 0
        for i in range(p.released_pages, p.pages):
            released += self.release_debits(epoch, i, *pages[i], account=account)
        return released

    def claim(self, account_addr: str, cumulative_amount: int, expected_root: bytes | str,
              proof: Sequence[bytes | str], *, account: LocalAccount | None = None) -> TxResult:
        """Pay `account_addr` its unclaimed reward (anyone may send)."""
        return self._tx("claim", checksum(account_addr), int(cumulative_amount), b32(expected_root),
                        [b32(p) for p in proof], account=account)

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
        (root, total, debited, commitment_hash, end_block, proposed_at, claimable_at, pages, released,
         vetoed) = self._call("proposal", int(epoch))
        return Proposal(int(epoch), bytes(root), int(total), int(debited), bytes(commitment_hash), int(end_block),
                        int(proposed_at), int(claimable_at), int(pages), int(released), bool(vetoed))

    def proposal_debits(self, epoch: int) -> dict[str, int]:
        """node -> debit of `epoch`'s latest proposal, summed over its pages (empty if none)."""
        out: dict[str, int] = {}
        for nodes, debits in self.pages_of(epoch):
            for n, d in zip(nodes, debits, strict=True):
                out[n] = out.get(n, 0) + d
        return out

    def claim_leaf(self, account_addr: str, cumulative_amount: int) -> bytes:
        """The leaf of `(account, cumulativeAmount)`."""
        return bytes(self._call("claimLeaf", checksum(account_addr), int(cumulative_amount)))

    def claimed(self, account_addr: str) -> int:
        """Total paid to `account_addr` so far."""
        return int(self._call("claimed", checksum(account_addr)))

    # -- governance -------------------------------------------------------------------------------------------

    def set_shares(self, node_share_bps: int, adapter_share_bps: int, *,
                   account: LocalAccount | None = None) -> TxResult:
        """Governance only: set the reward split."""
        return self._tx("setShares", int(node_share_bps), int(adapter_share_bps), account=account)

    def set_challenge_window(self, window_s: int, *, account: LocalAccount | None = None) -> TxResult:
        """Governance only: set the challenge window of future proposals."""
        return self._tx("setChallengeWindow", int(window_s), account=account)

    def set_poster(self, poster: str, *, account: LocalAccount | None = None) -> TxResult:
        """Governance only: set the poster (never the guardian)."""
        return self._tx("setPoster", checksum(poster), account=account)

    def set_guardian(self, guardian: str, *, account: LocalAccount | None = None) -> TxResult:
        """Governance only: set the guardian (never the poster)."""
        return self._tx("setGuardian", checksum(guardian), account=account)

    def set_treasury(self, treasury: str, *, account: LocalAccount | None = None) -> TxResult:
        """Governance only: set the treasury."""
        return self._tx("setTreasury", checksum(treasury), account=account)

    def token(self) -> str:
        """The reward token's address."""
        return str(self._call("token"))

    def node_registry(self) -> str:
        """The NodeRegistry that says whether a node has exited."""
        return str(self._call("nodeRegistry"))

    def ledger(self) -> str:
        """The AttributionLedger whose `lastPostBlock` locks a node's credit."""
        return str(self._call("ledger"))

    def shares(self) -> tuple[int, int]:
        """(nodeShareBps, adapterShareBps)."""
        return int(self._call("nodeShareBps")), int(self._call("adapterShareBps"))

    def challenge_window(self) -> int:
        """The challenge window in seconds."""
        return int(self._call("challengeWindow"))

    def roles(self) -> dict[str, str]:
        """governance, poster, guardian, treasury."""
        return {r: str(self._call(r)) for r in ("governance", "poster", "guardian", "treasury")}

    def limits(self) -> dict[str, int]:
        """MIN_CHALLENGE_WINDOW, MAX_CHALLENGE_WINDOW, MAX_PAGE_NODES."""
        return {n: int(self._call(n)) for n in ("MIN_CHALLENGE_WINDOW", "MAX_CHALLENGE_WINDOW", "MAX_PAGE_NODES")}


class Timelock(BoundContract):
    """The GovernanceTimelock (OpenZeppelin `TimelockController` with a delay floor of unbonding delay + challenge
    window, read live, and the guardian as canceller): governance of every contract on a real chain.

    A governance call is scheduled by a proposer and executed after `min_delay` seconds by an executor:
    `op = timelock.schedule_call(target, "setShares", 1000, 3000)`, wait, then `timelock.execute_call(op)`.
    """

    artifact_name = "GovernanceTimelock"

    def bind_floor(self, node_registry: str, distributor: str, *, account: LocalAccount | None = None) -> TxResult:
        """Deployer only, once: bind the contracts whose unbonding delay and challenge window make the floor."""
        return self._tx("bindFloor", checksum(node_registry), checksum(distributor), account=account)

    def delay_floor(self) -> int:
        """Unbonding delay + challenge window (0 before `bind_floor`): no operation is scheduled with less."""
        return int(self._call("delayFloor"))

    def cancel(self, op: TimelockOperation, *, account: LocalAccount | None = None) -> TxResult:
        """Canceller only (proposers and the guardian): cancel a scheduled operation."""
        return self._tx("cancel", self.operation_id(op), account=account)

    ROLES = ("PROPOSER_ROLE", "EXECUTOR_ROLE", "CANCELLER_ROLE", "DEFAULT_ADMIN_ROLE")

    def min_delay(self) -> int:
        """The minimum delay between scheduling and executing, in seconds."""
        return int(self._call("getMinDelay"))

    def role(self, name: str) -> bytes:
        """The role id of `PROPOSER_ROLE`, `EXECUTOR_ROLE`, `CANCELLER_ROLE` or `DEFAULT_ADMIN_ROLE`."""
        if name not in self.ROLES:
            raise ValueError(f"unknown role {name!r}; one of {', '.join(self.ROLES)}")
        return bytes(self._call(name))

    def has_role(self, name: str, account: str) -> bool:
        """Whether `account` holds role `name` (`EXECUTOR_ROLE` held by the zero address: anyone executes)."""
        return bool(self._call("hasRole", self.role(name), checksum(account)))

    @staticmethod
    def operation(target: BoundContract, fn_name: str, *args: Any, salt: bytes = bytes(32),
                  predecessor: bytes = bytes(32)) -> TimelockOperation:
        """The operation calling `target.fn_name(*args)` (value 0)."""
        data = target.contract.encode_abi(fn_name, args=list(args))
        return TimelockOperation(target.address, bytes.fromhex(data[2:]), b32(predecessor), b32(salt))

    def operation_id(self, op: TimelockOperation) -> bytes:
        """`hashOperation` of `op`."""
        return bytes(self._call("hashOperation", op.target, 0, op.data, op.predecessor, op.salt))

    def schedule(self, op: TimelockOperation, delay_s: int | None = None, *,
                 account: LocalAccount | None = None) -> bytes:
        """Proposer only: schedule `op` (delay default and floor: `min_delay`); returns its operation id."""
        delay = self.min_delay() if delay_s is None else int(delay_s)
        self._tx("schedule", op.target, 0, op.data, op.predecessor, op.salt, delay, account=account)
        return self.operation_id(op)

    def execute(self, op: TimelockOperation, *, account: LocalAccount | None = None) -> TxResult:
        """Executor only (or anyone when the zero address holds EXECUTOR_ROLE): run `op` once it is ready."""
        return self._tx("execute", op.target, 0, op.data, op.predecessor, op.salt, account=account)

    def is_ready(self, op: TimelockOperation) -> bool:
        """Whether `op` is scheduled and its delay has passed."""
        return bool(self._call("isOperationReady", self.operation_id(op)))

    def is_done(self, op: TimelockOperation) -> bool:
        """Whether `op` was executed."""
        return bool(self._call("isOperationDone", self.operation_id(op)))


@dataclass(frozen=True)
class TimelockOperation:
    """One call through the timelock: target, calldata, predecessor and salt (value is always 0)."""

    target: str
    data: bytes
    predecessor: bytes
    salt: bytes
