"""Ledger cost benchmark (`loraledger bench ledger-cost`, `scripts/bench/bench_ledger_cost.py`).

On a fresh `anvil --network optimism` with the contracts deployed and the real DA server (KZG on), posts batches
of 1k, 10k and 100k real records (LLB2 payload put to DA, real commitment, real Merkle root) with the batcher's
transaction manager, and reports L2 gas per record and the L1 data fee. Beside it, measured in the same run: the
naive design of one event-emitting transaction per record (the record's ABI encoding logged by a minimal
contract), on a sample of records.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from eth_account import Account
from rich.console import Console
from rich.table import Table

from attribution.chain.artifacts import ArtifactStore, ensure_built
from attribution.chain.client import ChainClient
from attribution.chain.deploy import ONE_TOKEN, bond_node, deploy_all, devnet_deploy_config
from attribution.chain.keys import DEV_ROLE_INDEX, dev_keys
from attribution.chain.txmgr import TxManager, TxMgrConfig
from attribution.da.client import DAClient
from attribution.devnet.da_process import DAServerProcess
from attribution.devnet.processes import start_anvil
from attribution.hashing import keccak256
from attribution.records import Profile, Record, RecordColumns
from attribution.records.payload import encode_columns
from attribution.records.tree import record_tree

logger = logging.getLogger(__name__)

SIZES = (1_000, 10_000, 100_000)
TARGET_GAS_PER_RECORD_100K = 1.5

# A minimal contract for the naive baseline: LOG1(calldata, topic) and stop. Hand-assembled so the benchmark
# needs no compiler: runtime = CALLDATASIZE 0 0 CALLDATACOPY PUSH32 topic CALLDATASIZE 0 LOG1 STOP.
_TOPIC = keccak256(b"RecordAttributed(bytes)")
_RUNTIME = bytes.fromhex("3660006000377f") + bytes(_TOPIC) + bytes.fromhex("366000a100")
_INIT = bytes.fromhex(f"60{len(_RUNTIME):02x}80600b6000396000f3") + _RUNTIME


def _columns(n: int, chain_id: int, ledger: bytes, node: bytes, first_seq: int, seed: int) -> RecordColumns:
    """n realistic records: 16 adapters (each with 1-3 datasets) plus the bare base model."""
    import numpy as np

    rng = random.Random(seed)
    model = rng.randbytes(32)
    profiles = [Profile(model, b"\x00" * 32)]
    for _ in range(16):
        k = rng.randint(1, 3)
        cuts = sorted(rng.randint(0, 10_000) for _ in range(k - 1))
        weights = tuple(b - a for a, b in zip([0, *cuts], [*cuts, 10_000], strict=True))
        profiles.append(Profile(model, rng.randbytes(32), tuple(rng.randbytes(32) for _ in range(k)), weights))
    g = np.random.default_rng(seed)
    return RecordColumns(
        chain_id, ledger, node, tuple(profiles), seqs=np.arange(first_seq, first_seq + n, dtype=np.uint64),
        profile_idx=g.integers(0, len(profiles), n), prompt_tokens=g.integers(1, 4096, n, dtype=np.uint32),
        completion_tokens=g.integers(1, 1024, n, dtype=np.uint32),
        timestamps=np.uint64(1_760_000_000) + np.arange(first_seq, first_seq + n, dtype=np.uint64),
        io_hashes=g.integers(0, 256, (n, 32), dtype=np.uint8))


def run(quick: bool, naive_samples: int | None = None, console: Console | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the JSON result."""
    console = console or Console(stderr=True)
    t_start = time.monotonic()
    ensure_built()
    naive_samples = naive_samples or (20 if quick else 100)
    chain = start_anvil(gas_limit=100_000_000)
    anvil, url = chain.proc, chain.rpc_url
    tmp = Path(tempfile.mkdtemp(prefix="ledger-cost-"))
    da = DAServerProcess(tmp / "da", kzg_workers=min(2, os.cpu_count() or 1))
    try:
        da.start(wait_kzg=True)
        keys = dev_keys()
        deployer = Account.from_key(keys[DEV_ROLE_INDEX["deployer"]])
        node = Account.from_key(keys[DEV_ROLE_INDEX["node"]])
        client = ChainClient(url, deployer)
        dep = deploy_all(client, devnet_deploy_config(), ArtifactStore())
        bond_node(dep, client, node, mint=10_000 * ONE_TOKEN)
        node_client = ChainClient(url, node)
        ledger = dep.bind(node_client).ledger
        txmgr = TxManager(node_client, node, TxMgrConfig(confirmations=1, poll_s=0.05))
        ledger_b, node_b = bytes.fromhex(ledger.address[2:]), bytes.fromhex(node.address[2:])
        rows: list[dict[str, Any]] = []
        seq = 0
        with DAClient(da.url, timeout=300) as dac:
            for n in SIZES:
                cols = _columns(n, client.chain_id, ledger_b, node_b, seq, seed=n)
                t0 = time.monotonic()
                payload = encode_columns(cols)
                root = bytes.fromhex(record_tree(cols).root[2:])
                t_seal = time.monotonic() - t0
                t0 = time.monotonic()
                commitment = dac.put(payload)
                t_da = time.monotonic() - t0
                ts = cols.timestamps
                data = ledger.contract.encode_abi(
                    "postBatch", args=[seq, n, int(ts.min()), int(ts.max()), root, commitment])
                receipt, tx = txmgr.send_and_confirm(ledger.address, bytes.fromhex(data[2:]))
                gas = int(receipt["gasUsed"])
                l1 = txmgr.l1_fee(receipt, tx.raw)
                rows.append({"records": n, "payload_bytes": len(payload), "commitment_bytes": len(commitment),
                             "gas": gas, "gas_per_record": gas / n, "l1_fee_wei": l1,
                             "l1_fee_wei_per_record": None if l1 is None else l1 / n,
                             "seal_s": round(t_seal, 3), "da_put_s": round(t_da, 3)})
                seq += n
                console.print(f"[dim]{n} records: {gas} gas ({gas / n:.3f}/record)[/]")
            # analysis only: the same 100k batch posted with a constant-size 97-byte commitment (an
            # EigenDA-style certificate that does not grow with the payload), to show the certificate's share
            cols = _columns(SIZES[-1], client.chain_id, ledger_b, node_b, seq, seed=1)
            root = bytes.fromhex(record_tree(cols).root[2:])
            small = b"\x01\x00\xd0" + keccak256(encode_columns(cols)) * 2 + bytes(30)
            ts = cols.timestamps
            data = ledger.contract.encode_abi(
                "postBatch", args=[seq, SIZES[-1], int(ts.min()), int(ts.max()), root, small])
            receipt, _ = txmgr.send_and_confirm(ledger.address, bytes.fromhex(data[2:]))
            constant_cert_gas = int(receipt["gasUsed"])
            seq += SIZES[-1]
        # the naive design: one transaction per record, the record's ABI encoding in an event
        deploy_receipt = node_client.send({"data": _INIT})
        sink = str(deploy_receipt["contractAddress"])
        sample = _columns(naive_samples, client.chain_id, ledger_b, node_b, 0, seed=7)
        naive_gas, naive_l1 = 0, 0
        for i in range(naive_samples):
            record: Record = sample[i]
            receipt, tx = txmgr.send_and_confirm(sink, record.abi_encode())
            naive_gas += int(receipt["gasUsed"])
            naive_l1 += txmgr.l1_fee(receipt, tx.raw) or 0
        naive = naive_gas / naive_samples
    finally:
        da.stop()
        anvil.terminate()
        anvil.wait(timeout=10)
    by_size = {str(r["records"]): r["gas_per_record"] for r in rows}
    result: dict[str, Any] = {
        "benchmark": "ledger-cost", "quick": quick, "chain": "anvil --network optimism",
        "gas_per_record": by_size, "naive_gas_per_record": naive,
        "naive_l1_fee_wei_per_record": naive_l1 / naive_samples, "naive_samples": naive_samples,
        "batches": rows, "target_gas_per_record_100k": TARGET_GAS_PER_RECORD_100K,
        "meets_target": by_size["100000"] <= TARGET_GAS_PER_RECORD_100K,
        "ratio_naive_over_batched_100k": naive / by_size["100000"], "elapsed_s": round(time.monotonic() - t_start, 1),
        "analysis_constant_size_cert_gas_per_record_100k": constant_cert_gas / SIZES[-1],
    }
    return result


def print_table(result: dict[str, Any], console: Console) -> None:
    """The human-readable table."""
    table = Table(title="ledger cost: postBatch vs one event-emitting tx per record (anvil --network optimism)")
    for col in ("records", "payload", "commitment", "L2 gas", "gas/record", "L1 fee/record (wei)", "vs naive"):
        table.add_column(col, justify="right")
    naive = result["naive_gas_per_record"]
    for r in result["batches"]:
        l1 = "-" if r["l1_fee_wei_per_record"] is None else f"{r['l1_fee_wei_per_record']:.1f}"
        table.add_row(f"{r['records']:,}", f"{r['payload_bytes']:,} B", f"{r['commitment_bytes']:,} B",
                      f"{r['gas']:,}", f"{r['gas_per_record']:.3f}", l1, f"{naive / r['gas_per_record']:,.0f}×")
    table.add_row(f"naive ({result['naive_samples']} txs)", "-", "-", "-", f"{naive:,.0f}",
                  f"{result['naive_l1_fee_wei_per_record']:.1f}", "1×")
    console.print(table)
    console.print(f"analysis: the 100k batch with a constant-size 97-byte commitment instead of the devnet "
                  f"certificate: {result['analysis_constant_size_cert_gas_per_record_100k']:.3f} gas/record")
    ok = "meets" if result["meets_target"] else "MISSES"
    console.print(f"100k records: {result['gas_per_record']['100000']:.3f} gas/record, {ok} the target of "
                  f"≤ {TARGET_GAS_PER_RECORD_100K}; elapsed {result['elapsed_s']} s")


def main(argv: list[str] | None = None) -> int:
    """Entry point: `loraledger bench ledger-cost [--quick] [--json PATH] [--naive-samples N]`."""
    parser = argparse.ArgumentParser(prog="loraledger bench ledger-cost", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer naive transactions (under 3 minutes)")
    parser.add_argument("--json", type=Path, default=None, help="write the result as JSON here")
    parser.add_argument("--naive-samples", type=int, default=None, help="naive transactions to average")
    args = parser.parse_args(argv)
    console = Console()
    result = run(args.quick, args.naive_samples, Console(stderr=True))
    print_table(result, console)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0
