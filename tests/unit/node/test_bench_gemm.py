"""`loraledger bench gemm`: every choice timed at every M in one run, the ratios taken against plain `F.linear`.

Quick mode on the small model: the JSON holds plain and oneDNN timings at M 1 and 64 and per shape, oneDNN's
products equal plain's to fp32 rounding, bf16 runs only where the CPU computes it natively (else the row says why
it was skipped), the machine is named; bad arguments exit 2 with the fix.
"""

from __future__ import annotations

import json
import pathlib

import pytest
import torch

from node.bench import gemm as bench_gemm

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="this torch build has no oneDNN")


def test_quick_run_writes_every_choice(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "gemm.json"
    assert bench_gemm.main(["--quick", "--model", "small", "--choices", "plain,onednn,engine,bf16", "--json",
                            str(path)]) == 0
    out = json.loads(path.read_text())
    assert out["rows"] == [1, 64] and out["threads"] == 1 and out["cpu"]["model"]
    for name in ("plain", "onednn", "engine"):
        for m in ("1", "64"):
            r = out["results"][name][m]
            assert r["us"] > 0 and set(r["shape_us"]) == set(bench_gemm.SHAPES)
            assert sum(r["shape_us"].values()) <= r["us"]
    assert out["max_abs_diff_vs_plain"]["onednn"] < 1e-3
    native_bf16 = bool({"avx512_bf16", "amx_bf16"} & set(out["cpu"]["flags"]))
    assert ("bf16" in out["results"]) is native_bf16
    if not native_bf16:
        assert "neither AVX-512 BF16 nor AMX" in out["skipped"]["bf16"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--choices", "plain,cublas"], "unknown choice 'cublas'"),
    (["--rows", "1,x"], "a comma list of positive integers"),
    (["--rows", "0"], "every M must be >= 1"),
    (["--threads", "0"], "--threads 0 must be >= 1"),
])
def test_bad_arguments_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        bench_gemm.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
