"""Deploy every contract, wire the roles, and read/write the deployment file `deployments/<chainId>.json`.

Deployment file (version 1, JSON, written atomically):

    {"version": 1, "chainId": 31337, "deployer": "0x..", "deployBlock": 3, "deployedAt": "2026-..Z",
     "contracts": {"AttributionLedger": {"address": "0x..", "abiHash": "0x..", "txHash": "0x..", "block": 5}, ...},
     "roles": {"governance": "0x..", "poster": "0x..", "guardian": "0x..", "treasury": "0x.."},
     "params": {"minBond": "1000000000000000000000", "unbondingDelay": 3600, "challengeWindow": 60,
                "nodeShareBps": 2000, "adapterShareBps": 3000},
     "devnet": {"node": "0x..", "bonded": "..."}}          # only for the local devnet

`deployBlock` is the block of the first deployment transaction: indexers start reading events there. `abiHash` is
keccak256 of the canonical ABI JSON (`artifacts.abi_hash`): a mismatch with the current `out/` means the artifacts
changed since the deployment. Big integers are decimal strings (JSON numbers lose precision above 2**53).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from attribution.chain.artifacts import REPO_ROOT, ArtifactStore
from attribution.chain.client import ChainClient
from attribution.chain.contracts import AssetRegistry, Ledger, NodeRegistry, RewardDistributor, Token
from attribution.chain.errors import ChainError, DeploymentError

log = logging.getLogger(__name__)

DEPLOYMENT_VERSION = 1
DEFAULT_DEPLOYMENTS_DIR = REPO_ROOT / "deployments"

#: contract name in the deployment file -> wrapper class
WRAPPERS: dict[str, type[Any]] = {
    "DevToken": Token,
    "AssetRegistry": AssetRegistry,
    "NodeRegistry": NodeRegistry,
    "AttributionLedger": Ledger,
    "RewardDistributor": RewardDistributor,
}

ONE_TOKEN = 10**18


@dataclass(frozen=True)
class DeployConfig:
    """What to deploy with. Role addresses default to the deployer; `token=None` deploys a DevToken."""

    token: str | None = None
    governance: str | None = None
    poster: str | None = None
    guardian: str | None = None
    treasury: str | None = None
    min_bond: int = 1_000 * ONE_TOKEN
    unbonding_delay_s: int = 7 * 24 * 3600
    challenge_window_s: int = 24 * 3600
    node_share_bps: int = 2000
    adapter_share_bps: int = 3000
    token_name: str = "loraledger Dev Token"
    token_symbol: str = "LLDEV"


@dataclass
class Deployment:
    """The content of `deployments/<chainId>.json` plus helpers to bind wrappers."""

    chain_id: int
    deployer: str
    deploy_block: int
    contracts: dict[str, dict[str, Any]]
    roles: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    devnet: dict[str, Any] = field(default_factory=dict)
    deployed_at: str = ""
    version: int = DEPLOYMENT_VERSION

    # -- file format ------------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The JSON object written to the deployment file."""
        out: dict[str, Any] = {
            "version": self.version, "chainId": self.chain_id, "deployer": self.deployer,
            "deployBlock": self.deploy_block, "deployedAt": self.deployed_at, "contracts": self.contracts,
            "roles": self.roles, "params": self.params,
        }
        if self.devnet:
            out["devnet"] = self.devnet
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Deployment:
        """Parse a deployment file's JSON object (strict about the fields it needs)."""
        try:
            version = int(data["version"])
            if version != DEPLOYMENT_VERSION:
                raise DeploymentError(f"deployment file version {version} is not supported (expected "
                                      f"{DEPLOYMENT_VERSION}); redeploy with `loraledger contracts deploy`")
            contracts = {str(k): dict(v) for k, v in data["contracts"].items()}
            for name, entry in contracts.items():
                entry["address"] = Web3.to_checksum_address(entry["address"])
                if name not in WRAPPERS:
                    log.debug("deployment lists extra contract %s", name)
            return cls(chain_id=int(data["chainId"]), deployer=Web3.to_checksum_address(data["deployer"]),
                       deploy_block=int(data["deployBlock"]), contracts=contracts, roles=dict(data.get("roles", {})),
                       params=dict(data.get("params", {})), devnet=dict(data.get("devnet", {})),
                       deployed_at=str(data.get("deployedAt", "")), version=version)
        except (KeyError, TypeError, ValueError) as e:
            raise DeploymentError(f"malformed deployment file: {e!r}; redeploy or fix the file") from e

    def save(self, path: Path | str) -> Path:
        """Write atomically (temp file + rename) so a crash never leaves half a file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, dir=path.parent)
        with os.fdopen(fd, "w") as f:
            json.dump(self.to_json(), f, indent=2, sort_keys=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: Path | str) -> Deployment:
        """Read a deployment file."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as e:
            raise DeploymentError(f"no deployment file at {path}; run `loraledger devnet up` or "
                                  "`loraledger contracts deploy`") from e
        except (OSError, ValueError) as e:
            raise DeploymentError(f"unreadable deployment file {path}: {e}") from e
        return cls.from_json(data)

    # -- access -----------------------------------------------------------------------------------------------

    def address(self, name: str) -> str:
        """The address of contract `name` (`AttributionLedger`, ...)."""
        try:
            return str(self.contracts[name]["address"])
        except KeyError:
            raise DeploymentError(f"the deployment for chain {self.chain_id} has no {name}; redeploy") from None

    @property
    def addresses(self) -> dict[str, str]:
        """name -> address."""
        return {name: str(entry["address"]) for name, entry in self.contracts.items()}

    @property
    def token_name(self) -> str:
        """The key of the token entry (`DevToken` when we deployed one, `Token` for an external one)."""
        return "DevToken" if "DevToken" in self.contracts else "Token"

    def bind(self, client: ChainClient, store: ArtifactStore | None = None) -> Contracts:
        """Typed wrappers for every contract, on `client`."""
        store = store or ArtifactStore()
        start = self.deploy_block
        return Contracts(
            token=Token(client, self.address(self.token_name), store.load("DevToken").abi, deploy_block=start),
            assets=AssetRegistry(client, self.address("AssetRegistry"), store=store, deploy_block=start),
            nodes=NodeRegistry(client, self.address("NodeRegistry"), store=store, deploy_block=start),
            ledger=Ledger(client, self.address("AttributionLedger"), store=store, deploy_block=start),
            rewards=RewardDistributor(client, self.address("RewardDistributor"), store=store, deploy_block=start),
        )

    def check(self, client: ChainClient, store: ArtifactStore | None = None) -> list[str]:
        """Problems with this deployment on `client`'s chain (empty list when usable).

        Wrong chain id or an address without code is fatal (raises `DeploymentError`); ABI hash drift is reported
        as a warning string because old deployments keep working until an interface changes.
        """
        if client.chain_id != self.chain_id:
            raise DeploymentError(f"deployment is for chain {self.chain_id} but the RPC serves chain "
                                  f"{client.chain_id}; use deployments/{client.chain_id}.json")
        for name, address in self.addresses.items():
            if not client.has_code(address):
                raise DeploymentError(f"{name} at {address} has no code on chain {self.chain_id} (state reset?); "
                                      "redeploy")
        warnings = []
        store = store or ArtifactStore()
        for name, entry in self.contracts.items():
            artifact_name = "DevToken" if name == "Token" else name
            try:
                current = store.load(artifact_name).abi_hash
            except ChainError:  # missing artifacts only weaken the check
                continue
            if entry.get("abiHash") and entry["abiHash"] != current:
                warnings.append(f"{name}: ABI changed since deployment ({entry['abiHash'][:10]} -> {current[:10]})")
        return warnings


@dataclass(frozen=True)
class Contracts:
    """The bound wrappers of one deployment."""

    token: Token
    assets: AssetRegistry
    nodes: NodeRegistry
    ledger: Ledger
    rewards: RewardDistributor


def deployment_path(chain_id: int, directory: Path | str | None = None) -> Path:
    """`deployments/<chainId>.json` (under `directory` if given)."""
    return Path(directory if directory is not None else DEFAULT_DEPLOYMENTS_DIR) / f"{chain_id}.json"


def _utcnow() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def deploy_all(client: ChainClient, config: DeployConfig | None = None, store: ArtifactStore | None = None,
               progress: Callable[[str], None] | None = None) -> Deployment:
    """Deploy token (unless given), AssetRegistry, NodeRegistry, AttributionLedger, RewardDistributor; set shares.

    Signed by the client's account (the deployer). Returns the `Deployment`; the caller decides where to save it.
    """
    config = config or DeployConfig()
    store = store or ArtifactStore()
    if client.account is None:
        raise DeploymentError("deploying needs a signing key; pass --keystore FILE or set LORALEDGER_PRIVATE_KEY")
    deployer = client.account.address
    say = progress or (lambda _msg: None)
    roles: dict[str, str] = {
        "governance": Web3.to_checksum_address(config.governance or deployer),
        "poster": Web3.to_checksum_address(config.poster or deployer),
        "guardian": Web3.to_checksum_address(config.guardian or deployer),
        "treasury": Web3.to_checksum_address(config.treasury or deployer),
    }
    contracts: dict[str, dict[str, Any]] = {}
    first_block: int | None = None

    def deploy(name: str, *args: Any) -> str:
        nonlocal first_block
        artifact = store.load(name)
        say(f"deploying {name}")
        address, receipt = client.deploy(artifact, *args)
        block = int(receipt["blockNumber"])
        first_block = block if first_block is None else min(first_block, block)
        contracts[name] = {"address": address, "abiHash": artifact.abi_hash,
                           "txHash": receipt["transactionHash"].to_0x_hex(), "block": block}
        return address

    if config.token is None:
        token = deploy("DevToken", config.token_name, config.token_symbol, deployer)
    else:
        token = Web3.to_checksum_address(config.token)
        if not client.has_code(token):
            raise DeploymentError(f"token {token} has no code on chain {client.chain_id}; pass an ERC-20 address")
        contracts["Token"] = {"address": token, "abiHash": "", "txHash": "", "block": 0}
    deploy("AssetRegistry")
    node_registry = deploy("NodeRegistry", token, config.min_bond, config.unbonding_delay_s, roles["governance"])
    deploy("AttributionLedger", node_registry)
    distributor = deploy("RewardDistributor", token, roles["governance"], roles["poster"], roles["guardian"],
                         roles["treasury"], config.challenge_window_s)

    rewards = RewardDistributor(client, distributor, store=store)
    if rewards.shares() != (config.node_share_bps, config.adapter_share_bps):
        if roles["governance"] != deployer:
            log.warning("reward shares differ from the config but governance %s is not the deployer; governance "
                        "must call setShares(%d, %d)", roles["governance"], config.node_share_bps,
                        config.adapter_share_bps)
        else:
            say("setting reward shares")
            rewards.set_shares(config.node_share_bps, config.adapter_share_bps)

    assert first_block is not None  # at least AssetRegistry was deployed
    return Deployment(
        chain_id=client.chain_id, deployer=deployer, deploy_block=first_block, contracts=contracts, roles=roles,
        params={"minBond": str(config.min_bond), "unbondingDelay": config.unbonding_delay_s,
                "challengeWindow": config.challenge_window_s, "nodeShareBps": config.node_share_bps,
                "adapterShareBps": config.adapter_share_bps},
        deployed_at=_utcnow(),
    )


def bond_node(deployment: Deployment, client: ChainClient, node: LocalAccount, *, mint: int = 0,
              amount: int | None = None) -> int:
    """Make `node` an active node: mint it DevTokens (if `mint`, deployer signs), approve and bond `amount`
    (default: the minimum bond). Returns the bonded stake afterwards. No-op when already active."""
    c = deployment.bind(client)
    if c.nodes.is_active(node.address):
        return c.nodes.node(node.address).bonded
    amount = c.nodes.min_bond() if amount is None else amount
    if mint:
        c.token.mint(node.address, mint)
    c.nodes.approve_and_bond(c.token, amount, account=node)
    return c.nodes.node(node.address).bonded
