"""`loraledger bench serving --peers`: only the rows issue 24 compares, interleaved, with the GEMM choice's own effect.

A run on the small model (4 requests, one round) writes ours base-only and 32-adapter rows on the selected GEMM
path plus base-only on plain `F.linear`, names the GEMM path and the machine, and no other row; `peer_ratios`
divides the right rows (ours / vLLM, 32 adapters / base) and is empty when vLLM did not run.
"""

from __future__ import annotations

import json
import os
import pathlib

import pytest
import torch

from inference import gemm
from node.bench import serving
from node.bench.serving_report import Result, peer_ratios


def test_peer_ratios_divide_the_right_rows() -> None:
    res = Result("medium")
    res.add("base", "", 60.0)
    res.add("mixed_32", "", 57.0)
    assert peer_ratios(res) == {}  # no vLLM rows: nothing to compare with
    res.add("vllm_base", "", 50.0)
    res.add("vllm_mixed_32", "", 25.0)
    res.add("base_plain", "", 40.0)
    r = peer_ratios(res)
    assert r["ours base / vLLM base"] == pytest.approx(1.2)
    assert r["ours 32 adapters / vLLM 32 adapters"] == pytest.approx(2.28)
    assert r["ours 32 adapters / ours base"] == pytest.approx(0.95)
    assert r["vLLM 32 adapters / vLLM base"] == pytest.approx(0.5)
    assert r["ours base: selected GEMM / plain F.linear"] == pytest.approx(1.5)
    assert r["ours base, plain F.linear / vLLM base"] == pytest.approx(0.8)
    assert "ours base / vLLM base, LoRA disabled" not in r  # --vllm-no-lora did not run
    res.add("vllm_base_nolora", "", 80.0)
    r = peer_ratios(res)
    assert r["ours base / vLLM base, LoRA disabled"] == pytest.approx(0.75)
    assert r["vLLM base, LoRA on / LoRA disabled"] == pytest.approx(0.625)


def test_vllm_no_lora_needs_peers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        serving.main(["--vllm-no-lora"])
    assert e.value.code == 2 and "--vllm-no-lora goes with --peers" in capsys.readouterr().err


def test_peers_run_writes_only_the_compared_rows(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(gemm.ENV, raising=False)
    threads = torch.get_num_threads()
    path = tmp_path / "peers.json"
    try:
        assert serving.main(["--models", "small", "--peers", "--rounds", "1", "--requests", "4", "--json",
                             str(path)]) == 0
    finally:
        torch.set_num_threads(threads)
    out = json.loads(path.read_text())
    chosen = gemm.selected(torch.device("cpu"), torch.float32)
    assert out["gemm"] == chosen and out["cpu"]["model"] and len(out["loadavg"]) == 3
    rows = out["models"]["small"]["rows"]
    want = {"base", "mixed_32"} | ({"base_plain"} if chosen == "onednn" else set())
    assert set(rows) == want and all(r["tok_s"] > 0 for r in rows.values())
    assert rows["base"]["label"] == f"ours, base only, GEMM {chosen}"
    assert gemm.ENV not in os.environ  # the run put the variable back as it found it
