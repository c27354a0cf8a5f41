"""A small SDK for dApps: fetch a record and its proof (from a node or the indexer), verify it off-chain and with
`eth_call`, verify a saved answer, wait until a record is final, hand a receipt to a watcher (`send_receipt`).

Trust: the node and the indexer are only sources of data. Every answer they give is checked against the chain
(the root the ledger stores for the batch) and, for saved answers, against the DA payload too.

    from attribution.verify.client import LedgerClient
    client = LedgerClient("http://127.0.0.1:8545", da_url="http://127.0.0.1:3100")   # ledger from deployments/
    report = client.verify_answer("answer.json")
    print(report.text())
    assert report.ok
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from attribution import safejson
from attribution.chain.contracts import Ledger
from attribution.chain.disputes import BatchDisputes
from attribution.chain.errors import ChainError, DeploymentError
from attribution.chain.setup import connect
from attribution.da.client import DEFAULT_URL, DAClient
from attribution.errors import AttributionError
from attribution.hashing import to_checksum_address
from attribution.merkle import process_proof
from attribution.records import Record, RecordValidationError
from attribution.verify import DEFAULT_PAGE_BLOCKS, RecordNotPostedError, Verifier
from attribution.verify.answers import AnswerReport, SavedAnswer, load_answer, verify_answer

__all__ = ["ClientError", "RecordNotFinal", "RecordProof", "LedgerClient", "send_receipt"]


class ClientError(AttributionError):
    """The SDK could not get or check what was asked (source unreachable, bad answer from a node or indexer)."""


class RecordNotFinal(ClientError, TimeoutError):
    """The record did not become final before the timeout; its batch is not posted or not deep enough yet."""


@dataclass(frozen=True)
class RecordProof:
    """A record, the batch that holds it and its Merkle proof: all a dApp needs to check it against the chain."""

    record: Record
    batch_id: int
    proof: tuple[bytes, ...]
    source: str

    @classmethod
    def from_json(cls, obj: dict[str, Any], source: str) -> RecordProof:
        """From the indexer's or the node's record JSON (`record`, `batchId`/`batch_id`, `proof`)."""
        try:
            # the indexer says `batchId`; the node nests its batch, whose own `batch_id` is node-local: only the
            # on-chain id counts
            batch_id = obj.get("batchId")
            if batch_id is None and isinstance(obj.get("batch"), dict):
                batch_id = obj["batch"].get("onchain_batch_id", obj["batch"].get("onchainBatchId"))
            if batch_id is None or obj.get("proof") is None:
                raise RecordNotPostedError(f"{source} has no posted batch and proof for this record yet "
                                           f"(status {obj.get('status', 'unknown')})")
            return cls(Record.from_json(obj["record"]), int(batch_id),
                       tuple(bytes.fromhex(p[2:]) for p in obj["proof"]), source)
        except (KeyError, TypeError, ValueError, RecordValidationError) as e:
            raise ClientError(f"{source} answered a record JSON this SDK cannot read: {e}") from e


class LedgerClient:
    """Reads a ledger through one RPC and one DA endpoint; optional node and indexer URLs for record lookups."""

    def __init__(self, rpc_url: str, *, da_url: str = DEFAULT_URL, ledger: str | None = None,
                 from_block: int | None = None, node_url: str | None = None, indexer_url: str | None = None,
                 deployments_dir: Path | str | None = None, page_blocks: int = DEFAULT_PAGE_BLOCKS,
                 timeout_s: float = 30.0, disputes: str | None = None) -> None:
        try:
            ctx = connect(rpc_url, deployments_dir=deployments_dir, load_deployment=ledger is None,
                          timeout_s=timeout_s)
        except DeploymentError as e:
            raise ClientError(f"no ledger address: pass ledger= or a deployments_dir ({e})") from e
        except ChainError as e:
            raise ClientError(f"cannot read the chain: {e}") from e
        deploy_block = 0
        if ledger is None:
            deployment = ctx.need_deployment()
            ledger, deploy_block = deployment.address("AttributionLedger"), deployment.deploy_block
            disputes = disputes or deployment.addresses.get("BatchDisputes")
        self.ledger = Ledger(ctx.client, ledger)
        self.da = DAClient(da_url, timeout=timeout_s, max_retries=3, backoff=0.2)
        start = deploy_block if from_block is None else from_block
        # with the deployment's BatchDisputes, verify_answer also reports the batch's disputes
        self.verifier = Verifier(self.ledger, self.da, from_block=start, page_blocks=page_blocks,
                                 disputes=BatchDisputes(ctx.client, disputes, deploy_block=start) if disputes else None)
        self.node_url = node_url.rstrip("/") if node_url else None
        self.indexer_url = indexer_url.rstrip("/") if indexer_url else None
        self._http = httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        """Close the HTTP clients."""
        self._http.close()
        self.da.close()

    def __enter__(self) -> LedgerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- getting a record ---------------------------------------------------------------------------------

    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = self._http.get(url)
        except httpx.HTTPError as e:
            raise ClientError(f"GET {url}: {e}") from e
        if response.status_code == 404:
            raise RecordNotPostedError(f"GET {url}: 404 ({response.text[:200]})")
        if response.status_code != 200:
            raise ClientError(f"GET {url}: HTTP {response.status_code}: {response.text[:300]}")
        try:
            body = safejson.loads(response.content, what=f"GET {url}")  # a node or indexer we do not trust
        except safejson.JSONInputError as e:
            raise ClientError(str(e)) from e
        if not isinstance(body, dict):
            raise ClientError(f"GET {url}: expected a JSON object")
        return body

    def record(self, seq: int, node: str | None = None) -> RecordProof:
        """Record `seq` with its proof: from the indexer (needs `node`) when configured, else from the node."""
        if self.indexer_url is not None:
            if node is None:
                raise ClientError("the indexer needs the node address: record(seq, node=...)")
            url = f"{self.indexer_url}/v1/records/{to_checksum_address(node)}/{int(seq)}"
            return RecordProof.from_json(self._get_json(url), "indexer")
        if self.node_url is not None:
            return RecordProof.from_json(self._get_json(f"{self.node_url}/v1/attribution/records/{int(seq)}"),
                                         "node")
        if node is None:
            raise ClientError("no node or indexer URL: pass node= to open the record from DA")
        opened = self.verifier.verify_record(node, seq)
        if opened.record is None:
            raise ClientError(f"batch {opened.batch.batch_id} is {opened.batch.verdict.value}: "
                              f"{opened.batch.detail}")
        return RecordProof(opened.record, opened.batch.batch_id, tuple(opened.proof), "da")

    # -- checking it --------------------------------------------------------------------------------------

    def verify_offchain(self, rp: RecordProof) -> bool:
        """The proof takes the record's leaf to the root the ledger stores for the batch, and the batch is the
        record node's and covers its seq (one `batch(id)` view read; the hashing is local)."""
        try:
            batch = self.ledger.batch(rp.batch_id)
        except ChainError as e:
            raise ClientError(f"cannot read batch {rp.batch_id}: {e}") from e
        rec = rp.record
        covers = batch.first_seq <= rec.seq < batch.first_seq + batch.count
        same_node = batch.node.lower() == "0x" + rec.node.hex()
        return covers and same_node and process_proof(rec.leaf(), list(rp.proof)) == batch.root

    def verify_onchain(self, rp: RecordProof) -> bool:
        """`AttributionLedger.verifyRecord(batchId, record, proof)` by `eth_call`."""
        try:
            return self.ledger.verify_record(rp.batch_id, rp.record.abi_values(), list(rp.proof))
        except ChainError as e:
            raise ClientError(f"verifyRecord eth_call failed: {e}") from e

    def verify_answer(self, answer: dict[str, Any] | str | Path | SavedAnswer) -> AnswerReport:
        """Every step of `loraledger verify answer` on a saved answer (dict, JSON text, path or `SavedAnswer`)."""
        saved = answer if isinstance(answer, SavedAnswer) else load_answer(
            Path(answer) if isinstance(answer, str) and not answer.lstrip().startswith("{") else answer)
        return verify_answer(saved, self.verifier)

    def send_receipt(self, answer: dict[str, Any] | str | Path | SavedAnswer, watcher_url: str) -> dict[str, Any]:
        """`send_receipt(watcher_url, answer)` over this client's HTTP connection pool."""
        return send_receipt(watcher_url, answer, http=self._http)

    def wait_final(self, node: str, seq: int, *, confirmations: int = 12, timeout_s: float = 600.0,
                   poll_s: float = 2.0) -> RecordProof:
        """Block until record `seq` of `node` is in a posted batch `confirmations` blocks deep whose DA payload
        rebuilds the posted root; returns its proof. Raises `RecordNotFinal` on timeout."""
        deadline = time.monotonic() + timeout_s
        last = "not checked yet"
        while True:
            try:
                event = self.verifier.find_batch(to_checksum_address(node), seq)
                assert event.block_number is not None  # read from its BatchPosted log, which carries its block
                depth = self.ledger.client.block_number() - event.block_number + 1
                if depth >= confirmations:
                    check = self.verifier.check_event(event, keep_decoded=True)
                    opened = self.verifier.open_record(check, seq)
                    if not opened.ok or opened.record is None:
                        raise ClientError(f"batch {event.batch_id} is final but does not verify: "
                                          f"{check.verdict.value}: {check.detail}")
                    return RecordProof(opened.record, event.batch_id, tuple(opened.proof), "da")
                last = f"batch {event.batch_id} is {depth} of {confirmations} blocks deep"
            except RecordNotPostedError as e:
                last = str(e)
            if time.monotonic() >= deadline:
                raise RecordNotFinal(f"record {seq} of {node} not final after {timeout_s:.0f}s: {last}")
            time.sleep(poll_s)


def send_receipt(watcher_url: str, answer: dict[str, Any] | str | Path | SavedAnswer, *,
                 http: httpx.Client | None = None, timeout_s: float = 30.0) -> dict[str, Any]:
    """Hand a saved answer (dict, JSON text, path, or the `{record, receipt}` evidence) to a watcher
    (`loraledger watch`, `POST /receipts`): it holds the receipt and challenges the node if its record is not
    posted in time or a batch contradicts it. Needs no RPC. Returns the watcher's answer (`status` "held" or
    "duplicate", node, seq, leaf, equivocation); a refusal raises `ClientError` with the watcher's reason."""
    if isinstance(answer, SavedAnswer):
        body: Any = {"record": answer.record.to_json(), "receipt": "0x" + answer.receipt.hex()}
    elif isinstance(answer, dict):
        body = answer
    else:
        try:
            text = answer if isinstance(answer, str) and answer.lstrip().startswith("{") else \
                Path(answer).read_text()
            body = safejson.loads(text, what="the answer")
        except (OSError, safejson.JSONInputError) as e:
            raise ClientError(f"cannot read the answer: {e}") from e
    url = watcher_url.rstrip("/") + "/receipts"
    client = http or httpx.Client(timeout=timeout_s)
    try:
        response = client.post(url, json=body)
    except httpx.HTTPError as e:
        raise ClientError(f"POST {url}: {e}") from e
    finally:
        if http is None:
            client.close()
    try:
        out = response.json()
    except ValueError:
        out = None
    if response.status_code not in (200, 201) or not isinstance(out, dict) or "error" in out:
        err = out.get("error") if isinstance(out, dict) else None
        why = err.get("message") if isinstance(err, dict) else response.text[:300]
        raise ClientError(f"POST {url}: HTTP {response.status_code}: {why}")
    return out
