"""What a benchmark ran on: the kernel and GEMM paths, the CPU (model, the SIMD flags that matter here, torch's
dispatch level), the torch version, the load average; every bench's JSON carries it (issue 24: figures name their
machine)."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import time
from collections.abc import Callable
from typing import Any

import torch

from inference import gemm, kernels

__all__ = ["environment", "run_cpu_bench"]

_CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
              "avx512_fp16", "amx_bf16", "amx_tile", "asimd", "sve")


def environment(device: str, dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """The kernel path, the GEMM path for a `dtype` model on `device`, the CPU, torch and the load average."""
    import platform

    model, flags = platform.processor() or platform.machine(), set()
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                model = value.strip()
            elif key.strip() in ("flags", "Features"):  # x86 / arm64 spelling; the first CPU stands for all
                flags = set(value.split())
                break
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "unknown")()
    env: dict[str, Any] = {
        "kernels": kernels.selected(),
        "kernels_requested": kernels.mode(),
        "gemm": gemm.selected(torch.device(device), dtype),
        "gemm_requested": gemm.mode(),
        "cpu": {"model": model, "flags": [f for f in _CPU_FLAGS if f in flags], "torch_capability": capability,
                "cores": os.cpu_count()},
        "torch_version": torch.__version__,
    }
    with contextlib.suppress(OSError):
        env["loadavg"] = [float(x) for x in pathlib.Path("/proc/loadavg").read_text().split()[:3]]
    if device.startswith("cuda"):
        env["cuda"] = {"device": torch.cuda.get_device_name(), "version": torch.version.cuda}
    return env


def run_cpu_bench(work: Callable[[Callable[[str], None]], dict[str, Any]],
                  print_table: Callable[[dict[str, Any], str], None], label: str, json_path: str | None) -> int:
    """The shared frame of the one-process CPU benches (`bench gemm`, `bench lora`): `work(progress)` runs the bench
    with a timestamped progress log on stderr; its result gets the machine (`environment`), the thread count and the
    wall time, is printed by `print_table(out, title)` under "<label>, N thread(s), <CPU model>", and written as JSON
    to `json_path` when given. Returns 0."""
    from rich.console import Console

    console = Console(stderr=True)
    t_start = time.perf_counter()

    def progress(msg: str) -> None:
        console.log(f"{time.perf_counter() - t_start:6.1f}s {msg}")

    out = work(progress)
    out.update(environment("cpu"))
    out["threads"] = torch.get_num_threads()
    out["wall_s"] = time.perf_counter() - t_start
    print_table(out, f"{label}, {out['threads']} thread(s), {out['cpu']['model']}")
    if json_path:
        pathlib.Path(json_path).write_text(json.dumps(out, indent=2))
        console.log(f"wrote {json_path}")
    return 0
