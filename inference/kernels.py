"""Which kernel path runs: the native C kernels (`inference/_kernels.c`), the portable torch path, or that path through
torch.compile.

One switch for the whole package, read when an engine or a LoRA pool is built: the environment variable
``LORALEDGER_KERNELS``:

- ``auto`` (default): native where it can run (the extension was built and this CPU has AVX-512 F/BW/VL), else torch;
- ``native``: the native kernels; raises `KernelsUnavailable` on a machine that cannot run them, so a run that asked
  for them never silently measures something else;
- ``torch``: the portable path even where the native kernels could run (how `make test` exercises the path every
  GPU and most cloud CPUs take, on a machine that has AVX-512);
- ``compiled``: the portable path with its fused pieces through `torch.compile` (`inference.compiled`: inductor's
  generated C++ on CPU, Triton on CUDA); the first steps pay the compile, `compiled.compile_seconds()` says how much.

Native is a machine-level choice; whether a given model uses it is still decided per model (CPU, fp32, head size a
multiple of 16: `LlamaForward.native_attention_ok`, `LoraPool.native`), and `EngineConfig(native_attention=False)`
or ``pool.native = False`` force torch for one engine or pool.

Every caller reaches the extension through `ext` at call time (not a copy taken at import), so a test can wrap it
in one place to count calls.
"""

from __future__ import annotations

from types import ModuleType

from inference.errors import InferenceError, choice_from_env

try:  # built by `pip install -e .` when a C compiler is present (optional extension, see setup.py)
    import inference._kernels as _ext
except ImportError:  # pragma: no cover - depends on the build; the torch path gives the same results, slower
    _ext = None

__all__ = ["CHOICES", "ENV", "KernelsUnavailable", "ext", "mode", "native_enabled", "native_status", "selected"]

ENV = "LORALEDGER_KERNELS"
CHOICES = ("auto", "native", "torch", "compiled")

ext: ModuleType | None = _ext  # the extension module, None when it was not built


class KernelsUnavailable(InferenceError, RuntimeError):
    """The native kernels were asked for (LORALEDGER_KERNELS=native) but cannot run on this machine."""


def mode() -> str:
    """The requested path, from LORALEDGER_KERNELS (default ``auto``); an unknown value raises InferenceError."""
    return choice_from_env(ENV, CHOICES, "a kernel path")


def native_status() -> tuple[bool, str]:
    """(whether this machine can run the native kernels, why not when it cannot)."""
    if ext is None:
        return False, "the C extension inference._kernels was not built (no C compiler at install time)"
    if not ext.available():
        return False, "this CPU lacks AVX-512 F/BW/VL, which the native kernels need"
    return True, ""


def native_enabled() -> bool:
    """Whether the native kernels are selected: `mode()` together with what this machine can run."""
    m = mode()
    if m in ("torch", "compiled"):
        return False
    ok, why = native_status()
    if m == "native" and not ok:
        raise KernelsUnavailable(f"{ENV}=native but {why}: set {ENV}=torch (or auto) to run the portable path")
    return ok


def selected() -> str:
    """The machine-level path in effect: ``"native"``, ``"compiled"`` or ``"torch"`` (what benches and logs report)."""
    if mode() == "compiled":
        return "compiled"
    return "native" if native_enabled() else "torch"
