"""`loraledger bench lora`: both torch LoRA kernels timed on every step shape in one run, the routing's pick named.

Quick mode: every shape has both timings, the runs skip the tail's gaps (fewer slots read than the window), the
routing (the cost model) picks the bmm where the used slots sit side by side or are few, the segment matmul for a
window full of gaps and for one busy slot; the
machine is named; bad arguments exit 2 with the fix.
"""

from __future__ import annotations

import json
import pathlib

import pytest

from node.bench import lora as bench_lora


def test_quick_run_times_both_kernels_on_every_shape(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "lora.json"
    assert bench_lora.main(["--quick", "--json", str(path)]) == 0
    out = json.loads(path.read_text())
    assert set(out["shapes"]) == set(bench_lora.SHAPES) and out["threads"] == 1 and out["cpu"]["model"]
    for r in out["shapes"].values():
        assert r["bmm_us"] > 0 and r["grouped_us"] > 0 and r["picked_over_faster"] >= 1.0
    assert out["shapes"]["full"]["rows"] == 64 and out["shapes"]["full"]["padded_rows"] == 0
    assert out["shapes"]["tail"]["runs"] > 1  # the gaps between used slots are not read
    assert out["shapes"]["far"]["runs"] == 2
    assert out["shapes"]["skewed"]["padded_rows"] == 15 * 31  # every other slot padded to the busy slot's 32 rows
    for name in ("full", "one_row", "far"):  # slots side by side, or few: the bmm over their runs
        assert out["shapes"][name]["picked"] == "bmm"
    for name in ("tail", "skewed"):  # many gaps, or one busy slot: the segment matmul
        assert out["shapes"][name]["picked"] == "grouped"


@pytest.mark.parametrize(("argv", "message"), [
    (["--threads", "0"], "--threads 0 must be >= 1"),
    (["--reps", "0"], "--reps 0 must be >= 1"),
    (["--model", "huge"], "invalid choice: 'huge'"),
])
def test_bad_arguments_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        bench_lora.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
