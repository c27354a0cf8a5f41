"""`loraledger dispute open|status|respond` against a real anvil through the real entry point: a client opens an
omission challenge from a saved answer, reads its status, the node answers with a proof file; bad input exits 2
with one `error:` line."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from attribution.records import Record
from attribution.records.receipt import sign_receipt
from attribution.records.tree import record_tree
from tests.fixtures.chain import AnvilNode, DeployedContracts
from tests.fixtures.cli import run_cli

COMMITMENT = b"\x01\x00\xd0" + b"cert"


def _run(d: DeployedContracts, deployment_file: Path, capsys: pytest.CaptureFixture[str],
         monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, str]:
    return run_cli(monkeypatch, capsys, *args, "--rpc-url", d.rpc_url, "--deployment", str(deployment_file))


def _answer(record: Record, receipt: bytes) -> dict[str, Any]:
    return {"request": {"prompt": "hi"}, "response": {"choices": [{"text": "hello"}], "attribution": {
        "seq": record.seq, "node": "0x" + record.node.hex(), "record": record.to_json(),
        "leaf": "0x" + record.leaf().hex(), "salt": "0x" + "00" * 32, "receipt": "0x" + receipt.hex()}}}


def test_open_status_respond(deployment: DeployedContracts, chain_snapshot: AnvilNode, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    d = deployment
    for key in [k for k in list(os.environ) if k.startswith("LORALEDGER_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    file = d.deployment.save(tmp_path / "deployment.json")
    first = d.ledger.next_seq(d.node.address)
    ts = int(chain_snapshot.w3.eth.get_block("latest")["timestamp"])
    records = [Record(d.chain_id, bytes.fromhex(d.ledger.address[2:]), bytes.fromhex(d.node.address[2:]), first + i,
                      b"\x07" * 32, b"\x00" * 32, (), (), 10, 20, ts, os.urandom(32)) for i in range(2)]
    tree = record_tree(records)
    d.ledger.post_batch(first, 2, tree.root_bytes, COMMITMENT, first_timestamp=ts, last_timestamp=ts)
    saved = tmp_path / "answer.json"
    saved.write_text(json.dumps(_answer(records[1], sign_receipt(records[1], d.node_key))))

    code, out, err = _run(d, file, capsys, monkeypatch, "dispute", "open", "--receipt", str(saved), "--json")
    assert code == 0, err
    opened = json.loads(out)
    assert (opened["kind"], opened["status"], opened["index"]) == ("omission", "open", first + 1)

    code, out, err = _run(d, file, capsys, monkeypatch, "dispute", "status", str(opened["dispute_id"]), "--json")
    assert code == 0 and json.loads(out)["status"] == "open", err

    proof = tmp_path / "proof.json"
    proof.write_text(json.dumps(["0x" + p.hex() for p in tree.get_proof_bytes(1)]))
    code, out, err = _run(d, file, capsys, monkeypatch, "dispute", "respond", str(opened["dispute_id"]), "--proof",
                          str(proof), "--json")
    assert code == 0, err
    assert json.loads(out)["status"] == "answered"

    # bad input: exit 2, one `error:` line naming the problem
    code, out, err = _run(d, file, capsys, monkeypatch, "dispute", "status", "999")
    assert code == 2 and err.strip().startswith("error: no dispute 999"), (code, err)
    saved.write_text("{}")
    code, out, err = _run(d, file, capsys, monkeypatch, "dispute", "open", "--receipt", str(saved))
    assert code == 2 and err.strip().startswith("error: cannot read"), (code, err)
    proof.write_text('["0x12"]')
    code, out, err = _run(d, file, capsys, monkeypatch, "dispute", "respond", "1", "--proof", str(proof))
    assert code == 2 and "not 32 bytes" in err, (code, err)
