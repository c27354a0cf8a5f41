"""Shared pytest configuration. Fixtures that start real servers live in tests/fixtures/ and are plugins here."""

import importlib.util
import os

import pytest
from hypothesis import settings

# Tests never touch the network: huggingface_hub (imported by transformers/peft) must stay offline.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Under pytest-xdist (make pytest) the workers share the cores: each worker's torch, and what it starts without a
# thread count of its own, gets its share, so OpenMP threads do not spin against the other workers' (a node sets
# engine.threads itself; tests that need a given count set it with torch.set_num_threads). Set before torch loads.
if os.environ.get("PYTEST_XDIST_WORKER") and "OMP_NUM_THREADS" not in os.environ:
    _workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    os.environ["OMP_NUM_THREADS"] = str(max(1, len(os.sched_getaffinity(0)) // max(1, _workers)))

# Hypothesis's default 200 ms deadline per example is a timing assertion: with pytest-xdist workers (make pytest) or
# a busy CI machine beside them, one slow example would fail a correct property.
settings.register_profile("loraledger", deadline=None)
settings.load_profile("loraledger")

pytest_plugins = [
    "tests.fixtures.chain",
    "tests.fixtures.da",
    "tests.fixtures.models",
    "tests.fixtures.postgres",
]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under CI=true, stop before any test runs when a C extension or PostgreSQL is missing: their tests would
    otherwise skip and the run would stay green."""
    from tests.fixtures.ci import ci_strict, missing_prerequisites  # after HF_HUB_OFFLINE is set

    if ci_strict():
        missing = missing_prerequisites()
        if missing:
            pytest.exit("CI=true, but:\n  " + "\n  ".join(missing), returncode=pytest.ExitCode.USAGE_ERROR)


# tests/vllm need the vllm package, which lives in .venv-vllm (`make test-vllm`); the main venv skips collecting them
collect_ignore = [] if importlib.util.find_spec("vllm") is not None else ["vllm"]
