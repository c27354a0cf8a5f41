"""F5: an RPC URL's key never reaches an error, a log line or a traceback: the tx manager (the batcher's warnings)
and `loraledger node run` (chain unreachable, chain id mismatch) name the endpoint only by `redact_url`."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import traceback

import pytest
from eth_account import Account

from attribution.chain.client import ChainClient
from attribution.chain.errors import RpcUnavailable
from attribution.chain.txmgr import TxManager
from tests.fixtures.chain import AnvilNode

SECRETS = ("PWPWPWPW", "KEYKEYKEYKEY", "QQQQQQQQQQ")
SECRET_URL = "https://user:PWPWPWPW@127.0.0.1:1/v2/KEYKEYKEYKEY?apikey=QQQQQQQQQQ"


def _clean(text: str) -> None:
    for s in SECRETS:
        assert s not in text, text[-2000:]


def test_txmgr_unreachable_rpc_error_has_no_key(anvil: AnvilNode) -> None:
    acct = Account.from_key(anvil.dev_keys[7])
    mgr = TxManager(ChainClient(anvil.rpc_url, acct), acct)
    mgr.client = ChainClient(SECRET_URL, acct)  # the RPC moves to a keyed endpoint that is down
    mgr.w3 = mgr.client.w3
    with pytest.raises(RpcUnavailable) as e:
        mgr.suggested_fees()
    assert "127.0.0.1:1" in str(e.value)
    _clean("".join(traceback.format_exception(e.value)))


def _node_run(tmp_path: pathlib.Path, model_dir: pathlib.Path, rpc_url: str, chain_id: int | None) -> str:
    chain = f'rpc_url = "{rpc_url}"\n' + (f"chain_id = {chain_id}\n" if chain_id is not None else "")
    cfg = tmp_path / "loraledger.toml"
    cfg.write_text(f"[chain]\n{chain}[engine]\nmodel_dir = \"{model_dir}\"\nmodel_name = \"tiny-llama\"\n"
                   "[adapters]\nrequire_registered = false\n")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LORALEDGER_")}
    proc = subprocess.run([sys.executable, "-c", "from node.cli import main; main()", "node", "run", "--config",
                           str(cfg), "--port", "1"], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env=environ)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout + proc.stderr


def test_node_run_chain_unreachable_hides_the_key(tmp_path: pathlib.Path, tiny_base_dir: pathlib.Path) -> None:
    out = _node_run(tmp_path, tiny_base_dir, SECRET_URL, None)
    assert "cannot read the chain at https://***@127.0.0.1:1/***" in out
    _clean(out)


def test_node_run_chain_id_mismatch_hides_the_key(tmp_path: pathlib.Path, tiny_base_dir: pathlib.Path,
                                                  anvil: AnvilNode) -> None:
    keyed = anvil.rpc_url.replace("http://", "http://user:PWPWPWPW@") + "/?apikey=QQQQQQQQQQ"
    out = _node_run(tmp_path, tiny_base_dir, keyed, 1)
    assert "http://***@127.0.0.1:" in out and "not 1" in out
    _clean(out)
