"""The local devnet: a detached `anvil --network optimism` whose state survives restarts, an optional DA server,
the contracts deployed once, a bonded node and demo assets.

Files under the state dir (default `.devnet/`):
    anvil-state.json   anvil's state (`--state`: loaded on start, dumped every second and on exit)
    anvil.pid          {"pid", "argv", "startedAt"} of the running anvil; anvil.log its output
    da.pid, da.log     the same for the DA server (when a DA command is given); da/ its data dir

`up` is idempotent: with everything running and deployed it reports so and changes nothing. After `down` + `up`
the chain state (contracts, batches) is loaded back from `anvil-state.json`, so nothing is redeployed.
This module knows nothing about the node package: the caller passes the DA server command line.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attribution.chain.artifacts import REPO_ROOT, ArtifactStore, ensure_built
from attribution.chain.assets import adapter_id_for, dataset_id_for
from attribution.chain.client import ChainClient
from attribution.chain.deploy import (
    DEFAULT_DEPLOYMENTS_DIR,
    ONE_TOKEN,
    DeployConfig,
    Deployment,
    bond_node,
    deploy_all,
    deployment_path,
)
from attribution.chain.errors import ChainError, DeploymentError, DevnetError
from attribution.chain.keys import DEV_ROLE_INDEX, DEVNET_CHAIN_ID, dev_keys
from attribution.chain.setup import connect
from attribution.devnet.processes import anvil_argv

log = logging.getLogger(__name__)

DEFAULT_STATE_DIR = REPO_ROOT / ".devnet"
DEFAULT_DEMO_DIR = REPO_ROOT / ".demo"
DEFAULT_ANVIL_PORT = 8545
DEFAULT_DA_PORT = 3100

#: devnet deployment parameters: the contracts' floors (1 h challenge window and change delay, 14 days unbonding),
#: so demos and tests see them pass with `evm_increaseTime`.
DEVNET_DEPLOY_CONFIG = DeployConfig(min_bond=1_000 * ONE_TOKEN, unbonding_delay_s=14 * 24 * 3600,
                                    challenge_window_s=3600, change_delay_s=3600)
#: DevTokens minted to each operator account (node, poster, deployer) on first deployment.
DEVNET_MINT = 1_000_000 * ONE_TOKEN
#: The dev node's prepaid fee credit (deposited from its own DevTokens on first deployment).
DEVNET_FEE_CREDIT = 100_000 * ONE_TOKEN

# Children we started in this process, reaped on stop so they do not linger as zombies.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class DevnetConfig:
    """Where the devnet lives and listens. `da_command(data_dir, host, port)` builds the DA server argv."""

    state_dir: Path = DEFAULT_STATE_DIR
    host: str = "127.0.0.1"
    anvil_port: int = DEFAULT_ANVIL_PORT
    da_port: int = DEFAULT_DA_PORT
    deployments_dir: Path = DEFAULT_DEPLOYMENTS_DIR
    demo_dir: Path | None = DEFAULT_DEMO_DIR
    repo_root: Path = REPO_ROOT
    da_command: Callable[[Path, str, int], Sequence[str]] | None = None
    deploy: DeployConfig = DEVNET_DEPLOY_CONFIG
    start_timeout_s: float = 60.0

    @property
    def rpc_url(self) -> str:
        """The anvil JSON-RPC URL."""
        return f"http://{self.host}:{self.anvil_port}"

    @property
    def da_url(self) -> str:
        """The DA server's base URL."""
        return f"http://{self.host}:{self.da_port}"

    @property
    def state_file(self) -> Path:
        """anvil's state file."""
        return self.state_dir / "anvil-state.json"

    @property
    def da_data_dir(self) -> Path:
        """The DA server's data dir."""
        return self.state_dir / "da"


@dataclass
class ServiceStatus:
    """One detached process of the devnet."""

    name: str
    running: bool
    pid: int | None = None
    url: str = ""
    log_file: str = ""


@dataclass
class DevnetStatus:
    """What `up`/`status` found or did."""

    rpc_url: str
    chain_id: int | None
    block_number: int | None
    services: list[ServiceStatus]
    deployment: Deployment | None
    deployment_file: Path
    already_running: bool = False
    started: list[str] = field(default_factory=list)
    deployed: bool = False
    demo_assets: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def running(self) -> bool:
        """True when anvil runs."""
        return any(s.name == "anvil" and s.running for s in self.services)

    def to_json(self) -> dict[str, Any]:
        """A JSON-friendly summary (for `--json`)."""
        return {
            "rpcUrl": self.rpc_url, "chainId": self.chain_id, "blockNumber": self.block_number,
            "running": self.running, "alreadyRunning": self.already_running, "started": self.started,
            "deployed": self.deployed, "demoAssets": self.demo_assets, "warnings": self.warnings,
            "deploymentFile": str(self.deployment_file),
            "services": [vars(s) for s in self.services],
            "contracts": self.deployment.addresses if self.deployment else {},
            "roles": self.deployment.roles if self.deployment else {},
            "devnet": self.deployment.devnet if self.deployment else {},
        }


# ----------------------------------------------------------------------------------------------------------------
# Processes
# ----------------------------------------------------------------------------------------------------------------


def _pid_file(config: DevnetConfig, name: str) -> Path:
    return config.state_dir / f"{name}.pid"


def _log_file(config: DevnetConfig, name: str) -> Path:
    return config.state_dir / f"{name}.log"


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def _alive(pid: int, argv0: str) -> bool:
    """The pid runs and is the program we started (guards against pid reuse)."""
    child = _CHILDREN.get(pid)
    if child is not None:
        # Our own child: trust Popen (right after fork /proc still shows python's argv, before exec).
        if child.poll() is None:
            return True
        _CHILDREN.pop(pid, None)
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if _is_zombie(pid) or not cmdline or not cmdline[0]:
        return False
    return Path(cmdline[0].decode(errors="replace")).name == Path(argv0).name


def _read_pid(config: DevnetConfig, name: str) -> dict[str, Any] | None:
    path = _pid_file(config, name)
    try:
        info = json.loads(path.read_text())
        int(info["pid"])
        return dict(info)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _running_pid(config: DevnetConfig, name: str) -> int | None:
    info = _read_pid(config, name)
    if info is None:
        return None
    pid = int(info["pid"])
    if _alive(pid, str(info.get("argv", [""])[0])):
        return pid
    _pid_file(config, name).unlink(missing_ok=True)  # stale
    return None


def _spawn(config: DevnetConfig, name: str, argv: Sequence[str]) -> int:
    config.state_dir.mkdir(parents=True, exist_ok=True)
    log_path = _log_file(config, name)
    with open(log_path, "ab") as log_f:
        # A new session: Ctrl-C in the terminal that ran `devnet up` must not stop the devnet.
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=log_f, stderr=subprocess.STDOUT,
                                cwd=config.repo_root, start_new_session=True)
    _CHILDREN[proc.pid] = proc
    info = {"pid": proc.pid, "argv": list(argv), "startedAt": dt.datetime.now(dt.UTC).isoformat()}
    tmp = _pid_file(config, name).with_suffix(".pid.tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, _pid_file(config, name))
    log.info("started %s (pid %d), log %s", name, proc.pid, log_path)
    return proc.pid


def _log_tail(config: DevnetConfig, name: str, n: int = 2000) -> str:
    try:
        return _log_file(config, name).read_text(errors="replace")[-n:]
    except OSError:
        return ""


def _wait_until(check: Callable[[], bool], pid: int, argv0: str, timeout_s: float, what: str,
                config: DevnetConfig, name: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        if not _alive(pid, argv0):
            raise DevnetError(f"{what} exited during start-up; its log ({_log_file(config, name)}) ends with:\n"
                              f"{_log_tail(config, name)}")
        time.sleep(0.1)
    raise DevnetError(f"{what} did not become ready within {timeout_s:.0f}s; see {_log_file(config, name)}")


def _stop(config: DevnetConfig, name: str, timeout_s: float = 20.0) -> bool:
    """SIGTERM (anvil then dumps its state), wait, SIGKILL as a last resort. True if something was stopped."""
    info = _read_pid(config, name)
    pid = _running_pid(config, name)
    if pid is None or info is None:
        _pid_file(config, name).unlink(missing_ok=True)
        return False
    argv0 = str(info["argv"][0])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _alive(pid, argv0):
        time.sleep(0.05)
    if _alive(pid, argv0):
        log.warning("%s (pid %d) ignored SIGTERM for %.0fs; killing it", name, pid, timeout_s)
        os.kill(pid, signal.SIGKILL)
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.warning("%s (pid %d) not reaped", name, pid)
    _pid_file(config, name).unlink(missing_ok=True)
    log.info("stopped %s (pid %d)", name, pid)
    return True


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as resp:  # noqa: S310 - local devnet URL
            return 200 <= int(resp.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _anvil_argv(config: DevnetConfig) -> list[str]:
    # not silent: the devnet's anvil logs to .devnet/anvil.log
    return anvil_argv(config.anvil_port, host=config.host, state=config.state_file, chain_id=DEVNET_CHAIN_ID,
                      silent=False, repo_root=config.repo_root)


# ----------------------------------------------------------------------------------------------------------------
# Demo assets
# ----------------------------------------------------------------------------------------------------------------


#: Price of demo adapters: 1 DevToken per million tokens.
DEMO_PRICE_PER_M_TOKENS = ONE_TOKEN
#: Dev accounts that stand in for dataset contributors of the demo (5..9), so rewards land on distinct accounts.
DEMO_CONTRIBUTOR_INDEXES = (5, 6, 7, 8, 9)


def demo_spec_from_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    """Turn the inference demo's `manifest.json` (version 1: `loraledger demo init`) into an assets spec: the base
    model, one dataset per adapter (key = the manifest's `dataset_id`, a dev account as sole contributor) and the
    adapters (by content hash = the manifest's `adapter_id`) at the demo price."""
    from eth_account import Account

    keys = dev_keys()
    model = manifest["model"]
    spec: dict[str, Any] = {
        "baseModels": [{"modelId": model["model_id"], "uri": f"demo://{model.get('name', 'model')}"}],
        "datasets": [], "adapters": [],
    }
    for i, adapter in enumerate(manifest.get("adapters", [])):
        contributor = Account.from_key(keys[DEMO_CONTRIBUTOR_INDEXES[i % len(DEMO_CONTRIBUTOR_INDEXES)]]).address
        dataset_key = adapter.get("dataset_id")
        if dataset_key:
            spec["datasets"].append({"datasetKey": dataset_key, "contributors": [contributor], "sharesBps": [10000],
                                     "uri": str(adapter.get("dataset_description", ""))[:200]})
        spec["adapters"].append({
            "contentHash": adapter["adapter_id"], "baseModelId": model["model_id"],
            "datasetKeys": [dataset_key] if dataset_key else [], "weightsBps": [10000] if dataset_key else [],
            "pricePerMTokens": DEMO_PRICE_PER_M_TOKENS, "uri": f"demo://adapters/{adapter.get('name', i)}",
        })
    return spec


@dataclass
class DemoRegistration:
    """What `register_demo_assets` found or did: how many assets it registered, and the namespaced ids."""

    registered: int = 0
    owner: str = ""
    adapters: dict[str, str] = field(default_factory=dict)  # contentHash -> adapterId
    datasets: dict[str, str] = field(default_factory=dict)  # datasetKey -> datasetId

    def to_json(self) -> dict[str, Any]:
        """The `devnet.demo` section of the deployment file."""
        return {"owner": self.owner, "adapters": self.adapters, "datasets": self.datasets}


def _hex(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def register_demo_assets(deployment: Deployment, client: ChainClient, demo_dir: Path) -> DemoRegistration:
    """Register the demo's assets that are not registered yet, owned by the client's account (their ids are
    namespaced by it), and record the ids: `manifest.json` adapters get `registered_adapter_id` (and
    `registered_dataset_id`), so a node maps each contentHash to the adapterId it must put in records.

    Reads `<demo_dir>/assets.json` if present, else the inference demo's `<demo_dir>/manifest.json`
    (`demo_spec_from_manifest`); neither: nothing to do. `assets.json` format (0x hex):
    {"datasets": [{"datasetKey", "contributors", "sharesBps", "uri"}], "baseModels": [{"modelId", "uri"}],
    "adapters": [{"contentHash", "baseModelId", "datasetKeys" (this owner's) or "datasetIds", "weightsBps",
    "pricePerMTokens", "uri"}]}
    """
    assert client.account is not None
    owner = client.account.address
    result = DemoRegistration(owner=owner)
    assets_file, manifest_file = demo_dir / "assets.json", demo_dir / "manifest.json"
    source = assets_file if assets_file.is_file() else manifest_file if manifest_file.is_file() else None
    if source is None:
        return result
    try:
        raw = json.loads(source.read_text())
        spec = raw if source == assets_file else demo_spec_from_manifest(raw)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DevnetError(f"unreadable demo file {source}: {e!r}; fix it or rerun `loraledger demo init`") from e
    assets = deployment.bind(client).assets
    try:
        for d in spec.get("datasets", []):
            dataset_id = dataset_id_for(owner, d["datasetKey"])
            if not assets.dataset_exists(dataset_id):
                assets.register_dataset(d["datasetKey"], d["contributors"], d["sharesBps"], d.get("uri", ""))
                result.registered += 1
            result.datasets[d["datasetKey"]] = _hex(dataset_id)
        for m in spec.get("baseModels", []):
            if not assets.base_model_exists(m["modelId"]):
                assets.register_base_model(m["modelId"], m.get("uri", ""))
                result.registered += 1
        for a in spec.get("adapters", []):
            adapter_id = adapter_id_for(owner, a["contentHash"])
            if not assets.adapter_exists(adapter_id):
                dataset_ids = [*(dataset_id_for(owner, k) for k in a.get("datasetKeys", [])),
                               *a.get("datasetIds", [])]
                assets.register_adapter(a["contentHash"], a["baseModelId"], dataset_ids, a.get("weightsBps", []),
                                        int(a.get("pricePerMTokens", 0)), a.get("uri", ""))
                result.registered += 1
            result.adapters[a["contentHash"]] = _hex(adapter_id)
    except (KeyError, TypeError, ValueError) as e:
        raise DevnetError(f"bad entry in demo file {source}: {e!r}; see docs/chain.md for the format") from e
    if source == manifest_file:
        _record_ids_in_manifest(manifest_file, raw, result, owner)
    log.info("registered %d demo assets from %s (owner %s)", result.registered, source, owner)
    return result


def _record_ids_in_manifest(path: Path, manifest: dict[str, Any], reg: DemoRegistration, owner: str) -> None:
    """Add `registered_adapter_id` / `registered_dataset_id` to the manifest's adapters (atomic rewrite; only when
    something changed, so `up` stays a no-op on a complete devnet)."""
    changed = False
    for adapter in manifest.get("adapters", []):
        want = {"registered_adapter_id": reg.adapters.get(adapter["adapter_id"])}
        if adapter.get("dataset_id"):
            want["registered_dataset_id"] = reg.datasets.get(adapter["dataset_id"])
        for key, value in want.items():
            if value is not None and adapter.get(key) != value:
                adapter[key] = value
                changed = True
    if manifest.get("registered_owner") != owner:
        manifest["registered_owner"] = owner
        changed = True
    if changed:
        tmp = path.with_name(f".{path.name}.chain.tmp")
        tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------------------------
# up / down / status
# ----------------------------------------------------------------------------------------------------------------


def _dev_client(config: DevnetConfig, role: str = "deployer") -> ChainClient:
    from eth_account import Account

    return ChainClient(config.rpc_url, Account.from_key(dev_keys()[DEV_ROLE_INDEX[role]]))


def _existing_deployment(config: DevnetConfig, warnings: list[str]) -> Deployment | None:
    """The live deployment of the devnet (its file, and code at every address), None when there is none."""
    try:
        chain = connect(config.rpc_url, expected_chain_id=DEVNET_CHAIN_ID, deployments_dir=config.deployments_dir,
                        require_deployment=False, check_code=True)
    except DeploymentError as e:
        log.info("existing deployment unusable (%s); redeploying", e)
        return None
    warnings.extend(chain.warnings)
    return chain.deployment


def _deploy_devnet(config: DevnetConfig, client: ChainClient, say: Callable[[str], None]) -> Deployment:
    from eth_account import Account

    ensure_built(config.repo_root)
    keys = dev_keys()
    roles = {r: Account.from_key(keys[i]).address for r, i in DEV_ROLE_INDEX.items()}
    cfg = dataclasses.replace(config.deploy, poster=roles["rewards_poster"], guardian=roles["guardian"],
                              treasury=roles["treasury"], governance=roles["governance"])
    deployment = deploy_all(client, cfg, ArtifactStore(config.repo_root / "out"), progress=say)
    contracts = deployment.bind(client)
    node = Account.from_key(keys[DEV_ROLE_INDEX["node"]])
    say(f"minting DevTokens and bonding node {node.address}")
    for who in (roles["rewards_poster"], roles["deployer"]):
        contracts.token.mint(who, DEVNET_MINT)
    bonded = bond_node(deployment, client, node, mint=DEVNET_MINT)
    say(f"depositing the node's fee credit ({DEVNET_FEE_CREDIT // ONE_TOKEN} LLDEV)")
    credit = contracts.rewards.approve_and_deposit(contracts.token, node.address, DEVNET_FEE_CREDIT,
                                                   account=node).credit
    deployment.devnet = {"node": node.address, "bonded": str(bonded), "feeCredit": str(credit),
                         "rpcUrl": config.rpc_url, "daUrl": config.da_url if config.da_command else ""}
    deployment.save(deployment_path(DEVNET_CHAIN_ID, config.deployments_dir))
    return deployment


def up(config: DevnetConfig | None = None, progress: Callable[[str], None] | None = None) -> DevnetStatus:
    """Start what is not running (anvil, DA), deploy unless a live deployment exists, register demo assets."""
    config = config or DevnetConfig()
    say = progress or (lambda _m: None)
    config.state_dir.mkdir(parents=True, exist_ok=True)
    started: list[str] = []
    warnings: list[str] = []
    client = _dev_client(config)

    anvil_pid = _running_pid(config, "anvil")
    if anvil_pid is None:
        if client.is_up():
            raise DevnetError(f"something else already answers on {config.rpc_url}; stop it or pick another port "
                              "(--port / LORALEDGER_DEVNET__ANVIL_PORT)")
        argv = _anvil_argv(config)
        say(f"starting anvil on {config.rpc_url} (state {config.state_file})")
        pid = _spawn(config, "anvil", argv)
        try:
            _wait_until(client.is_up, pid, argv[0], config.start_timeout_s, "anvil", config, "anvil")
        except DevnetError as e:
            _pid_file(config, "anvil").unlink(missing_ok=True)
            if "--state" in str(e) or "state" in _log_tail(config, "anvil", 500).lower():
                raise DevnetError(f"{e}\nIf {config.state_file} is damaged, move it away and run `up` again (a fresh "
                                  "chain is deployed).") from e
            raise
        started.append("anvil")
    if client.chain_id != DEVNET_CHAIN_ID:
        raise DevnetError(f"devnet RPC reports chain {client.chain_id}, expected {DEVNET_CHAIN_ID}")

    if config.da_command is not None and _running_pid(config, "da") is None:
        if _http_ok(f"{config.da_url}/health"):
            raise DevnetError(f"something else already answers on {config.da_url}; stop it or pick another DA port")
        argv = list(config.da_command(config.da_data_dir, config.host, config.da_port))
        say(f"starting the DA server on {config.da_url} (data {config.da_data_dir})")
        pid = _spawn(config, "da", argv)
        _wait_until(lambda: _http_ok(f"{config.da_url}/health"), pid, argv[0], config.start_timeout_s, "DA server",
                    config, "da")
        started.append("da")

    deployed = False
    deployment = _existing_deployment(config, warnings)
    if deployment is None:
        deployment = _deploy_devnet(config, client, say)
        deployed = True
    demo = 0
    if config.demo_dir is not None and config.demo_dir.is_dir():
        reg = register_demo_assets(deployment, client, config.demo_dir)
        demo = reg.registered
        if demo:
            say(f"registered {demo} demo assets from {config.demo_dir}")
        if reg.adapters or reg.datasets:
            if deployment.devnet.get("demo") != reg.to_json():
                deployment.devnet["demo"] = reg.to_json()
                deployment.save(deployment_path(DEVNET_CHAIN_ID, config.deployments_dir))
    result = status(config)
    result.already_running = not started and not deployed and demo == 0
    result.started = started
    result.deployed = deployed
    result.demo_assets = demo
    result.warnings.extend(warnings)
    return result


def down(config: DevnetConfig | None = None) -> list[str]:
    """Stop the DA server and anvil (anvil writes its state on SIGTERM). Returns what was stopped."""
    config = config or DevnetConfig()
    stopped = []
    for name in ("da", "anvil"):
        if _stop(config, name):
            stopped.append(name)
    return stopped


def status(config: DevnetConfig | None = None) -> DevnetStatus:
    """What runs, on which chain and block, and the deployment if one is live."""
    config = config or DevnetConfig()
    services = []
    anvil_pid = _running_pid(config, "anvil")
    services.append(ServiceStatus("anvil", anvil_pid is not None, anvil_pid, config.rpc_url,
                                  str(_log_file(config, "anvil"))))
    if config.da_command is not None or _read_pid(config, "da") is not None:
        da_pid = _running_pid(config, "da")
        services.append(ServiceStatus("da", da_pid is not None, da_pid, config.da_url, str(_log_file(config, "da"))))
    chain_id = block = None
    deployment = None
    warnings: list[str] = []
    if anvil_pid is not None:
        client = _dev_client(config)
        try:
            chain_id = client.chain_id
            block = client.block_number()
            deployment = _existing_deployment(config, warnings)
        except ChainError as e:
            warnings.append(f"anvil (pid {anvil_pid}) does not answer: {e}")
    return DevnetStatus(rpc_url=config.rpc_url, chain_id=chain_id, block_number=block, services=services,
                        deployment=deployment, deployment_file=deployment_path(DEVNET_CHAIN_ID,
                                                                               config.deployments_dir),
                        warnings=warnings)
