"""The node under test: `loraledger node run` in a subprocess (uvicorn), serving the tiny Llama and peft adapters,
its adapters registered on a real anvil, its records in a real SQLite file.

- `node_env` (module): registers the base model, datasets and adapters on the module's deployment (owned by
  the deployer: ids keccak256(owner, contentHash), the node trusts that owner via `adapters.owners`) and writes
  the settings file; `start_node(env)` runs the node and waits for /readyz; `served_node` (module) is one
  running node shared by the API tests; `second_node_env(env, root, dev_index)` is another node beside it.
- `run_batchers_until_final(anvil, da_url, envs)`: a drained batcher per node while a thread mines blocks.
- `serve_in_process(model_dir, root, **store)`: the app under uvicorn in this process with a local record
  context (no chain), for tests that reach into its services.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest

from attribution.chain.assets import adapter_id_for, dataset_id_for
from attribution.devnet.processes import free_port
from tests.fixtures.chain import AnvilNode, DeployedContracts

API_KEY = "sk-test-node-key"
ADMIN_KEY = "admin-test-key"
DATASET_A = hashlib.sha256(b"dataset a").digest()
DATASET_B = hashlib.sha256(b"dataset b").digest()


@dataclass
class NodeEnv:
    """What a node process needs: its dir, settings file, and the assets it serves."""

    root: pathlib.Path
    config: pathlib.Path
    port: int
    base_dir: pathlib.Path
    adapters: dict[str, pathlib.Path]
    adapter_ids: dict[str, bytes]
    deployment: DeployedContracts
    extra_roots: pathlib.Path
    store_path: pathlib.Path
    settings_extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class NodeProcess:
    """A running node."""

    env: NodeEnv
    proc: subprocess.Popen[bytes]
    log: pathlib.Path

    @property
    def url(self) -> str:
        return self.env.url

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return int(self.proc.returncode)


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(env: NodeEnv, **sections: dict[str, Any]) -> pathlib.Path:
    """Write the node's loraledger.toml (sections merged over the defaults of this fixture)."""
    d = env.deployment
    base: dict[str, dict[str, Any]] = {
        "chain": {"rpc_url": d.rpc_url, "deployments_dir": str(env.root / "deployments")},
        "store": {"path": str(env.store_path)},
        "node": {"host": "127.0.0.1", "port": env.port,
                 "api_key_hashes": [hashlib.sha256(API_KEY.encode()).hexdigest()],
                 "admin_key_hash": hashlib.sha256(ADMIN_KEY.encode()).hexdigest(), "max_body_bytes": 65536,
                 "max_prompt_chars": 2000, "request_timeout_s": 30.0, "shutdown_deadline_s": 5.0},
        "engine": {"model_dir": str(env.base_dir), "model_name": "tiny-llama", "max_batch": 8, "max_queue": 64,
                   "max_seq_len": 256, "default_max_tokens": 16},
        "adapters": {"dirs": [str(env.adapters["ad-a"]), str(env.adapters["ad-b"])], "owners": [d.deployer.address],
                     "manifest": str(env.root / "no-manifest.json"),
                     "allowed_roots": [str(env.adapters["ad-a"].parent), str(env.extra_roots)], "refresh_s": 1.0},
        # these tests post with `loraledger batcher run` (`run_batchers_until_final`); test_node_batcher turns the
        # node's own batcher on
        "batcher": {"enabled": False},
        # the responder polls the chain; the dispute tests (test_node_disputes) turn it on
        "disputes": {"respond": False},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    lines = []
    for name, values in base.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {_toml(v)}" for k, v in values.items()]
    env.config.write_text("\n".join(lines) + "\n")
    return env.config


def second_node_env(env: NodeEnv, root: pathlib.Path, dev_index: int, **sections: dict[str, Any]) -> NodeEnv:
    """Another node beside `env`: the same model, adapters and deployment, its own dir, port and store, signing as
    anvil dev account `dev_index` (bond it first); `sections` as for `write_config`."""
    d = env.deployment
    (root / "deployments").mkdir(parents=True)
    d.deployment.save(root / "deployments" / f"{d.chain_id}.json")
    other = replace(env, root=root, config=root / "loraledger.toml", port=free_port(), store_path=root / "records.db")
    write_config(other, node={"node_dev_index": dev_index}, **sections)
    return other


def start_node(env: NodeEnv, timeout: float = 240) -> NodeProcess:
    """`loraledger node run --config` in a subprocess; waits until /readyz answers 200."""
    log = env.root / f"node-{time.time_ns()}.log"
    out = open(log, "wb")  # noqa: SIM115 - the child writes it; closed with the process
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LORALEDGER_")}
    environ["OMP_NUM_THREADS"] = "1"
    proc = subprocess.Popen([sys.executable, "-c", "from node.cli import main; main()", "node", "run", "--config",
                             str(env.config)], cwd=env.root, stdout=out, stderr=subprocess.STDOUT, env=environ)
    node = NodeProcess(env, proc, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"node exited with {proc.returncode}:\n{node.log_text()[-3000:]}")
        try:
            if httpx.get(f"{env.url}/readyz", timeout=2).status_code == 200:
                return node
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    node.stop(signal.SIGKILL)
    raise RuntimeError(f"node not ready after {timeout} s:\n{node.log_text()[-3000:]}")


def start_batcher(env: NodeEnv, da_url: str, key: str | None) -> subprocess.Popen[bytes]:
    """`loraledger batcher run --until-drained` over the node's store (`key`: the node's key, None: the
    deployment's node); the chain needs blocks mined for its batches to become final."""
    cli = pathlib.Path(sys.executable).with_name("loraledger")
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("LORALEDGER_")}
    if key is not None:
        run_env["LORALEDGER_CHAIN__PRIVATE_KEY"] = key
    d = env.deployment
    return subprocess.Popen(
        [str(cli), "batcher", "run", "--db", str(env.store_path), "--rpc-url", d.rpc_url, "--da-url", da_url,
         "--deployment", str(env.root / "deployments" / f"{d.chain_id}.json"), "--seal-interval", "0.2",
         "--seal-records", "32", "--max-batch-records", "48", "--confirmations", "2", "--poll-interval", "0.05",
         "--until-drained", "--timeout", "180"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=run_env, cwd=env.root)


@contextlib.contextmanager
def mining(anvil: AnvilNode, every: float = 0.2) -> Iterator[None]:
    """A block every `every` seconds while the block runs, as an OP chain makes them (finality and confirmations
    need blocks on top; anvil mines only on transactions)."""
    stop = threading.Event()
    thread = threading.Thread(target=lambda: [anvil.rpc("anvil_mine", 1) for _ in iter(lambda: stop.wait(every), True)],
                              daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


@pytest.fixture
def miner(anvil: AnvilNode) -> Iterator[None]:
    """`mining(anvil)` for the whole test (the requesting module's `anvil`)."""
    with mining(anvil):
        yield


def run_batchers_until_final(anvil: AnvilNode, da_url: str, envs: list[tuple[NodeEnv, str | None]]) -> None:
    """Run `start_batcher(env, da_url, key)` for each (env, key) until drained (their batches final) and assert each
    exits 0; a thread mines a block every 0.2 s meanwhile (finality needs blocks on top; anvil mines only on
    transactions)."""
    with mining(anvil):
        procs = [start_batcher(env, da_url, key) for env, key in envs]
        for p in procs:
            out, _ = p.communicate(timeout=240)
            assert p.returncode == 0, out.decode()[-3000:]


@contextlib.contextmanager
def serve_in_process(model_dir: pathlib.Path, root: pathlib.Path, **store: Any) -> Iterator[tuple[str, Any]]:
    """The real app serving `model_dir` under uvicorn on a thread of this process, attribution recorded to
    `root/records.db` (more `[store]` settings in `store`) with a local record context; yields (url, services)."""
    from node.bench.node import _Server, _services
    from node.settings import Settings

    settings = Settings.model_validate({
        "node": {"port": free_port(), "attribution": False},
        "engine": {"model_dir": model_dir, "model_name": "tiny-llama", "max_batch": 4, "max_seq_len": 256},
        "adapters": {"manifest": None, "require_registered": False},
        "store": {"path": root / "records.db", **store}})
    services = _services(settings)
    with _Server(settings, services):
        yield f"http://127.0.0.1:{settings.node.port}", services


@pytest.fixture(scope="module")
def node_env(tmp_path_factory: pytest.TempPathFactory, deployment: DeployedContracts, tiny_base_dir: pathlib.Path,
             make_adapter: Any) -> NodeEnv:
    """Assets registered on the module's deployment, a settings file, a free port."""
    from inference.adapters.identity import adapter_id_of
    from inference.model import compute_model_id

    root = tmp_path_factory.mktemp("node")
    served = root / "adapters"
    extra = root / "extra"
    adapters = {
        "ad-a": make_adapter(served / "ad-a", seed=501, rank=8),
        "ad-b": make_adapter(served / "ad-b", seed=502, rank=4, targets=("q_proj", "k_proj", "v_proj", "o_proj")),
        "ad-late": make_adapter(extra / "ad-late", seed=503, rank=8),  # registered, added over the admin API
        "ad-unreg": make_adapter(extra / "ad-unreg", seed=504, rank=8),  # never registered
        "ad-off": make_adapter(extra / "ad-off", seed=505, rank=8),  # registered, then deactivated
    }
    d = deployment
    owner = d.deployer.address
    content = {name: adapter_id_of(p) for name, p in adapters.items()}
    ids = {name: adapter_id_for(owner, h) for name, h in content.items()}  # the registered (namespaced) ids
    a = d.assets.with_account(d.deployer)
    model_id = compute_model_id(tiny_base_dir)
    if not a.base_model_exists(model_id):
        a.register_base_model(model_id, "test://tiny-llama")
    for key in (DATASET_A, DATASET_B):
        if not a.dataset_exists(dataset_id_for(owner, key)):
            a.register_dataset(key, [d.accounts[5].address], [10000], "test://dataset")
    ds_a, ds_b = dataset_id_for(owner, DATASET_A), dataset_id_for(owner, DATASET_B)
    provenance = {"ad-a": ([ds_a], [10000]), "ad-b": ([ds_a, ds_b], [2500, 7500]),
                  "ad-late": ([ds_b], [10000]), "ad-off": ([], [])}
    for name, (datasets, weights) in provenance.items():
        if not a.adapter_exists(ids[name]):
            a.register_adapter(content[name], model_id, datasets, weights, 10**18, f"test://{name}")
    if a.adapter(ids["ad-off"]).active:
        a.set_adapter_active(ids["ad-off"], False)
    d.deployment.save(root / "deployments" / f"{d.chain_id}.json")
    env = NodeEnv(root=root, config=root / "loraledger.toml", port=free_port(), base_dir=tiny_base_dir,
                  adapters=adapters, adapter_ids=ids, deployment=d, extra_roots=extra,
                  store_path=root / "records.db")
    write_config(env)
    return env


@pytest.fixture(scope="module")
def served_node(node_env: NodeEnv) -> Iterator[NodeProcess]:
    """One running node for the module's tests."""
    node = start_node(node_env)
    try:
        yield node
    finally:
        node.stop()
