"""Demo assets: stdlib text, tokenizer, `init_demo` (tiny preset) with adapters whose outputs differ, idempotency,
synthetic adapters, and the `loraledger demo` CLI."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import pytest
import torch
from peft import PeftModel
from typer.testing import CliRunner

from inference.adapters.identity import adapter_id_of
from inference.adapters.weights import load_adapter
from inference.demo import (
    ADAPTER_MODULES,
    PRESETS,
    DemoError,
    init_demo,
    read_manifest,
    stdlib_docs,
    synth_adapters,
    train_tokenizer,
)
from inference.model import compute_model_id, load_base_model

pytestmark = pytest.mark.timeout(300)

PROMPTS = ["The", "Return a", "This module"]


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, dict]:
    d = tmp_path_factory.mktemp("demo") / ".demo"
    manifest, built = init_demo(d, n_adapters=8, preset="tiny", threads=1)
    assert built
    return d, manifest


def test_stdlib_docs() -> None:
    text = stdlib_docs("json")
    assert "JSON" in text and len(text) > 5000
    assert stdlib_docs("json", max_chars=100) == text[:100]
    assert stdlib_docs("os")  # frozen in 3.11: read from the source file, not the import system
    with pytest.raises(DemoError, match="no Python source"):
        stdlib_docs("no_such_module_xyz")


def test_tokenizer_deterministic_and_round_trips() -> None:
    texts = [stdlib_docs("argparse", max_chars=15_000)]
    t1 = train_tokenizer(texts, vocab_size=400)
    t2 = train_tokenizer(texts, vocab_size=400)
    assert t1.get_vocab() == t2.get_vocab()
    assert len(t1) == 400
    assert (t1.pad_token_id, t1.bos_token_id, t1.eos_token_id) == (0, 1, 2)
    s = "Parse the command line: --verbose, ünïcode ✓ and\ttabs"
    ids = t1(s)["input_ids"]
    assert ids[0] == t1.bos_token_id
    assert t1.decode(ids, skip_special_tokens=True) == s


def test_manifest(tiny_demo: tuple[pathlib.Path, dict]) -> None:
    d, manifest = tiny_demo
    assert json.loads((d / "manifest.json").read_text()) == manifest
    assert manifest["version"] == 1 and manifest["preset"] == "tiny"
    model = manifest["model"]
    assert model["model_id"] == "0x" + compute_model_id(d / model["path"]).hex()
    assert model["vocab_size"] == PRESETS["tiny"].vocab
    ads = manifest["adapters"]
    assert [a["name"] for a in ads] == [f"{m}-docs" for m in ADAPTER_MODULES[:8]]
    assert [a["rank"] for a in ads] == [8, 16] * 4
    assert len({a["dataset_id"] for a in ads}) == 8
    # real training: the loss on fixed windows of each text went down
    assert model["loss_after"] < model["loss_before"]
    assert all(a["loss_after"] < a["loss_before"] for a in ads), [(a["loss_before"], a["loss_after"]) for a in ads]
    for a, module in zip(ads, ADAPTER_MODULES, strict=False):
        assert a["adapter_id"] == "0x" + adapter_id_of(d / a["path"]).hex()
        text = stdlib_docs(module, max_chars=PRESETS["tiny"].max_chars)
        assert a["dataset_id"] == "0x" + hashlib.sha256(text.encode()).hexdigest()
        assert a["targets"] == ["q_proj", "k_proj", "v_proj", "o_proj"]
        assert module in a["dataset_description"]
        cfg = json.loads((d / a["path"] / "adapter_config.json").read_text())
        assert cfg["base_model_name_or_path"] == "demo-llama"  # no machine path: ids do not depend on where
    assert read_manifest(d) == manifest


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny models run faster on one thread, above all on a busy machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_assets_load_and_adapters_differ(tiny_demo: tuple[pathlib.Path, dict], one_thread: None) -> None:
    """Each adapter was really trained on a different text: greedy continuations differ pairwise."""
    d, manifest = tiny_demo
    bm = load_base_model(d / manifest["model"]["path"])
    assert bm.name == "demo-llama"
    tok = bm.tokenizer
    entries = manifest["adapters"]
    for a in entries:
        w = load_adapter(d / a["path"], bm.config)
        assert w.rank == a["rank"] and w.target_modules == ("q_proj", "k_proj", "v_proj", "o_proj")
        assert "0x" + w.adapter_id.hex() == a["adapter_id"]
        assert all(torch.count_nonzero(t) > 0 for t in w.b.values())  # trained: B moved away from peft's zeros

    pm = PeftModel.from_pretrained(bm.model, d / entries[0]["path"], adapter_name=entries[0]["name"])
    for a in entries[1:]:
        pm.load_adapter(d / a["path"], adapter_name=a["name"])
    pm.eval()

    def greedy(adapter: str | None) -> tuple[tuple[int, ...], ...]:
        outs = []
        for prompt in PROMPTS:
            x = tok(prompt, return_tensors="pt")
            if adapter is None:
                with pm.disable_adapter(), torch.no_grad():
                    g = pm.generate(**x, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
            else:
                pm.set_adapter(adapter)
                with torch.no_grad():
                    g = pm.generate(**x, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
            outs.append(tuple(g[0, x["input_ids"].shape[1]:].tolist()))
        return tuple(outs)

    results = {a["name"]: greedy(a["name"]) for a in entries}
    base = greedy(None)
    assert len(set(results.values())) == len(entries), results
    assert base not in results.values()


def test_idempotent_and_force(tmp_path: pathlib.Path) -> None:
    d = tmp_path / "demo"
    m1, built = init_demo(d, n_adapters=2, preset="smoke")
    assert built
    stamp = (d / "manifest.json").stat().st_mtime_ns
    m2, built = init_demo(d, n_adapters=2, preset="smoke")
    assert not built and m2 == m1 and (d / "manifest.json").stat().st_mtime_ns == stamp
    m2, built = init_demo(d, n_adapters=1, preset="smoke")
    assert not built  # a complete demo with more adapters than asked is fine
    # a tampered adapter makes the demo incomplete: it is rebuilt, and the rebuild is complete again
    (d / m1["adapters"][1]["path"] / "adapter_config.json").write_text("{}")
    assert read_manifest(d) is None
    m3, built = init_demo(d, n_adapters=2, preset="smoke")
    assert built and read_manifest(d) == m3
    _, built = init_demo(d, n_adapters=2, preset="smoke", force=True)
    assert built


def test_bad_arguments(tmp_path: pathlib.Path) -> None:
    with pytest.raises(DemoError, match="out of range"):
        init_demo(tmp_path, n_adapters=0, preset="tiny")
    with pytest.raises(DemoError, match="unknown preset"):
        init_demo(tmp_path, preset="huge")
    with pytest.raises(DemoError, match="positive ranks"):
        synth_adapters(tmp_path, 1, tmp_path, ranks=[0])


def test_synth(tmp_path: pathlib.Path, tiny_base_dir: pathlib.Path) -> None:
    from inference.model import load_base_model

    config = load_base_model(tiny_base_dir).config
    m = synth_adapters(tmp_path / "a", 12, tiny_base_dir, ranks=[8, 16, 64], seed=5)
    entries = m["adapters"]
    assert [e["name"] for e in entries] == [f"synth-{i:05d}" for i in range(12)]
    assert json.loads((tmp_path / "a" / "manifest.json").read_text()) == m
    for i, e in enumerate(entries):
        w = load_adapter(tmp_path / "a" / e["path"], config)
        assert w.rank == [8, 16, 64][i % 3] == e["rank"]
        assert "0x" + w.adapter_id.hex() == e["adapter_id"]
        assert w.target_modules == ("q_proj", "k_proj", "v_proj", "o_proj")
        assert all(torch.count_nonzero(t) > 0 for t in w.b.values())
    assert len({e["adapter_id"] for e in entries}) == 12
    again = synth_adapters(tmp_path / "b", 3, tiny_base_dir, ranks=[8, 16, 64], seed=5)
    assert [e["adapter_id"] for e in again["adapters"]] == [e["adapter_id"] for e in entries[:3]]
    other = synth_adapters(tmp_path / "c", 1, tiny_base_dir, ranks=[8], seed=6)
    assert other["adapters"][0]["adapter_id"] != entries[0]["adapter_id"]


def test_cli_synth_and_init(tmp_path: pathlib.Path, tiny_base_dir: pathlib.Path) -> None:
    from node.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["demo", "synth", "--n", "4", "--dir", str(tmp_path / "syn"), "--ranks", "4,8",
                            "--base", str(tiny_base_dir), "--targets", "q_proj,down_proj"])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "syn" / "manifest.json").read_text())
    assert [e["rank"] for e in m["adapters"]] == [4, 8, 4, 8]
    assert m["adapters"][0]["targets"] == ["down_proj", "q_proj"]

    r = runner.invoke(app, ["demo", "init", "--dir", str(tmp_path / "d"), "--adapters", "1", "--preset", "smoke"])
    assert r.exit_code == 0, r.output
    assert read_manifest(tmp_path / "d") is not None
    r = runner.invoke(app, ["demo", "init", "--dir", str(tmp_path / "d"), "--adapters", "1", "--preset", "smoke"])
    assert r.exit_code == 0 and "nothing done" in r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["demo", "init", "--adapters", "0"], "out of range"),
        (["demo", "init", "--preset", "huge"], "unknown"),
        (["demo", "init", "--threads", "0"], "--threads"),
        (["demo", "synth", "--n", "-1", "--dir", "{tmp}/s"], ">= 0"),
        (["demo", "synth", "--n", "2", "--dir", "{tmp}/s", "--ranks", "8,x"], "comma-separated integers"),
        (["demo", "synth", "--n", "2", "--dir", "{tmp}/s", "--ranks", "8,0"], "positive"),
        (["demo", "synth", "--n", "2", "--dir", "{tmp}/s", "--base", "{tmp}/nomodel"], "no config.json"),
        (["demo", "synth", "--n", "2", "--dir", "{tmp}/s", "--base", "{tmp}", "--targets", "c_attn"], "c_attn"),
    ],
)
def test_cli_bad_input_is_a_usage_error(tmp_path: pathlib.Path, tiny_base_dir: pathlib.Path, args: list[str],
                                        message: str) -> None:
    from node.cli import app
    from node.errors import UsageError

    (tmp_path / "config.json").write_text((tiny_base_dir / "config.json").read_text())
    r = CliRunner().invoke(app, [a.format(tmp=tmp_path) for a in args])
    assert isinstance(r.exception, UsageError), r.output
    assert message in str(r.exception)
    assert not (tmp_path / "s").exists()


def test_cli_usage_error_exits_2(tmp_path: pathlib.Path) -> None:
    """Through the console-script entry point: message on stderr, exit code 2."""
    code = "import sys; from node.cli import main; sys.argv = ['loraledger', *sys.argv[1:]]; main()"
    p = subprocess.run([sys.executable, "-c", code, "demo", "init", "--adapters", "99"], capture_output=True,
                       text=True, timeout=120, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).parents[3])})
    assert p.returncode == 2, p.stderr
    assert "out of range" in p.stderr
    assert not (tmp_path / ".demo").exists()
