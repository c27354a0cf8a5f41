"""`engine.threads`: its default follows the cores this process may use (affinity), and the node applies it to torch
before the engine starts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from node.services import apply_engine_threads, engine_threads
from node.settings import Settings


def test_configured_threads_are_used_as_given() -> None:
    assert engine_threads(3) == 3
    with pytest.raises(ValueError, match="threads"):
        Settings.model_validate({"engine": {"threads": 0}})


def test_default_follows_the_affinity_of_the_process() -> None:
    # a real affinity mask, in a child so this process keeps its cores
    code = ("import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
            "from node.services import engine_threads; print(engine_threads(None))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "1"
    cores = len(os.sched_getaffinity(0))
    assert engine_threads(None) == (cores - 1 if cores > 2 else cores)


def test_more_than_two_cores_leave_one_for_the_node(monkeypatch: pytest.MonkeyPatch) -> None:
    # this machine may have two cores: the mask of a larger one is the one thing stood in for
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(8)))
    assert engine_threads(None) == 7


def test_apply_sets_torch_threads() -> None:
    import torch

    before = torch.get_num_threads()
    try:
        assert apply_engine_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
