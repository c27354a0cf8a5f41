"""Deploy every contract, wire the roles, and read/write the deployment file `deployments/<chainId>.json`.

Two modes. Devnet (chain 31337 without `timelock_delay_s`): the governance address (default: the deployer)
governs every contract directly. Real chain (any other chain id, or `timelock_delay_s` set): the GovernanceTimelock
(OpenZeppelin's `TimelockController` with a delay floor) is deployed first and governs every contract; its proposer
and executor is the `governance` address given (e.g. a Safe), the guardian may cancel, it administers itself, and its
delay is at least the unbonding delay plus the challenge window (the deploy refuses less, and the timelock keeps that
floor live, so an honest node can always leave before a governance action reaches it). A real-chain deploy refuses
one key for several roles (governance, poster and guardian are three different addresses, all given explicitly) and
needs `token`: a DevToken would leave the deployer as the minter of the stake and reward token.

Deployment file (version 2, JSON, written atomically):

    {"version": 3, "chainId": 31337, "deployer": "0x..", "deployBlock": 3, "deployedAt": "2026-..Z",
     "contracts": {"AttributionLedger": {"address": "0x..", "abiHash": "0x..", "txHash": "0x..", "block": 5}, ...},
     "roles": {"governance": "0x..", "poster": "0x..", "guardian": "0x..", "treasury": "0x..",
               "proposer": "0x.."},                         # proposer: only with a TimelockController
     "params": {"minBond": "1000000000000000000000", "unbondingDelay": 1209600, "challengeWindow": 3600,
                "nodeShareBps": 2000, "adapterShareBps": 3000, "changeDelay": 3600,
                "maxPricePerMTokens": "...", "timelockDelay": 86400},
     "devnet": {"node": "0x..", "bonded": "...", "feeCredit": "..."}}     # only for the local devnet

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

from attribution.chain.artifacts import REPO_ROOT, ArtifactStore
from attribution.chain.client import ChainClient
from attribution.chain.contracts import AssetRegistry, Ledger, NodeRegistry, RewardDistributor, Timelock, Token
from attribution.chain.disputes import BatchDisputes
from attribution.chain.errors import ChainError, DeploymentError
from attribution.chain.keys import DEVNET_CHAIN_ID
from attribution.hashing import to_checksum_address

log = logging.getLogger(__name__)

DEPLOYMENT_VERSION = 3  # 3: contracts v3 (RewardDistributor takes the ledger; GovernanceTimelock)
DEFAULT_DEPLOYMENTS_DIR = REPO_ROOT / "deployments"

#: contract name in the deployment file -> wrapper class
WRAPPERS: dict[str, type[Any]] = {
    "DevToken": Token,
    "AssetRegistry": AssetRegistry,
    "NodeRegistry": NodeRegistry,
    "AttributionLedger": Ledger,
    "RewardDistributor": RewardDistributor,
    "GovernanceTimelock": Timelock,
    "BatchDisputes": BatchDisputes,
}
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"

ONE_TOKEN = 10**18


@dataclass(frozen=True)
class DeployConfig:
    """What to deploy with; `token=None` deploys a DevToken.

    `timelock_delay_s` set: the GovernanceTimelock governs (required off the devnet, at least unbonding delay +
    challenge window), `governance` is its proposer and executor, the guardian its canceller; `token` is required
    off the devnet. Devnet mode: `governance` (default: the deployer) governs directly; poster and guardian must
    differ (the RewardDistributor refuses one address for both).
    """

    token: str | None = None
    governance: str | None = None
    poster: str | None = None
    guardian: str | None = None
    treasury: str | None = None
    min_bond: int = 1_000 * ONE_TOKEN
    unbonding_delay_s: int = 14 * 24 * 3600
    challenge_window_s: int = 24 * 3600
    node_share_bps: int = 2000
    adapter_share_bps: int = 3000
    change_delay_s: int = 24 * 3600
    max_price_per_m_tokens: int = 10_000 * ONE_TOKEN
    timelock_delay_s: int | None = None
    #: BatchDisputes' challenge bonds in wei of the native currency: each covers the node's answer (a full-chunk
    #: availability resolve is ~5.2M gas, docs/disputes.md); immutable once deployed.
    omission_bond_wei: int = 10**16
    availability_bond_wei: int = 2 * 10**17
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
                entry["address"] = to_checksum_address(entry["address"])
                if name not in WRAPPERS:
                    log.debug("deployment lists extra contract %s", name)
            return cls(chain_id=int(data["chainId"]), deployer=to_checksum_address(data["deployer"]),
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
            timelock=(Timelock(client, self.address("GovernanceTimelock"), store=store, deploy_block=start)
                      if "GovernanceTimelock" in self.contracts else None),
            disputes=(BatchDisputes(client, self.address("BatchDisputes"), store=store, deploy_block=start)
                      if "BatchDisputes" in self.contracts else None),
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
    timelock: Timelock | None = None
    disputes: BatchDisputes | None = None


def deployment_path(chain_id: int, directory: Path | str | None = None) -> Path:
    """`deployments/<chainId>.json` (under `directory` if given)."""
    return Path(directory if directory is not None else DEFAULT_DEPLOYMENTS_DIR) / f"{chain_id}.json"


def _utcnow() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


#: The contracts' floors: 1 h challenge window and change delay, 14 days unbonding (devnet, tests, benchmarks).
DEVNET_PARAMS = {"min_bond": 1_000 * ONE_TOKEN, "unbonding_delay_s": 14 * 24 * 3600, "challenge_window_s": 3600,
                 "change_delay_s": 3600}


def devnet_deploy_config(**overrides: Any) -> DeployConfig:
    """A devnet-mode `DeployConfig` at the contracts' floors with the devnet roles (anvil dev accounts: governance
    0, poster 2, guardian 3, treasury 4; docs/chain.md). Chain 31337 only: the keys are public."""
    from eth_account import Account

    from attribution.chain.keys import DEV_ROLE_INDEX, dev_keys

    keys = dev_keys()
    roles = {role: Account.from_key(keys[DEV_ROLE_INDEX[index]]).address for role, index in (
        ("governance", "governance"), ("poster", "rewards_poster"), ("guardian", "guardian"),
        ("treasury", "treasury"))}
    return DeployConfig(**{**DEVNET_PARAMS, **roles, **overrides})


def check_roles(chain_id: int, deployer: str, config: DeployConfig) -> dict[str, str]:
    """The role addresses to deploy with, or `DeploymentError` before any transaction when they are unsafe."""
    timelocked = config.timelock_delay_s is not None
    if chain_id != DEVNET_CHAIN_ID and not timelocked:
        raise DeploymentError(f"chain {chain_id} is not the local devnet: every contract must be governed by a "
                              "TimelockController (the GovernanceTimelock); pass --timelock-delay SECONDS (at least "
                              "the unbonding delay plus the challenge window)")
    if chain_id != DEVNET_CHAIN_ID and config.token is None:
        raise DeploymentError(f"chain {chain_id} is not the local devnet: pass --token ADDRESS (an existing ERC-20); "
                              "a DevToken would leave the deployer's key as the minter of the stake and reward token")
    given = {"governance": config.governance, "poster": config.poster, "guardian": config.guardian,
             "treasury": config.treasury}
    if timelocked:
        missing = [r for r, v in given.items() if v is None]
        if missing:
            raise DeploymentError(f"a timelocked deploy needs every role given explicitly; missing "
                                  f"{', '.join('--' + r for r in missing)}")
    roles: dict[str, str] = {r: str(to_checksum_address(v or deployer)) for r, v in given.items()}
    if timelocked:
        keys = [roles["governance"], roles["poster"], roles["guardian"]]
        if len(set(keys)) < 3:
            raise DeploymentError("refusing one key for several roles: governance (the timelock's proposer), poster "
                                  "and guardian must be three different addresses (governance + poster could "
                                  "propose and pass their own root; poster + guardian would veto nothing)")
        assert config.timelock_delay_s is not None
        floor = config.unbonding_delay_s + config.challenge_window_s
        if config.timelock_delay_s < floor:
            raise DeploymentError(f"timelock delay {config.timelock_delay_s}s is below the unbonding delay plus the "
                                  f"challenge window ({config.unbonding_delay_s}s + {config.challenge_window_s}s = "
                                  f"{floor}s): governance could act before an honest node can leave; raise "
                                  "--timelock-delay")
    elif roles["poster"] == roles["guardian"]:
        raise DeploymentError(f"poster and guardian are both {roles['poster']}: the guardian must be another key "
                              "(pass --guardian ADDRESS)")
    return roles


def deploy_all(client: ChainClient, config: DeployConfig | None = None, store: ArtifactStore | None = None,
               progress: Callable[[str], None] | None = None) -> Deployment:
    """Deploy [GovernanceTimelock,] token (unless given), AssetRegistry, NodeRegistry, AttributionLedger,
    RewardDistributor, BatchDisputes; make BatchDisputes the slasher and set the shares (devnet mode). Roles are
    checked first (`check_roles`).

    Signed by the client's account (the deployer). Returns the `Deployment`; the caller decides where to save it.
    """
    config = config or DeployConfig()
    store = store or ArtifactStore()
    if client.account is None:
        raise DeploymentError("deploying needs a signing key; pass --keystore FILE or set LORALEDGER_PRIVATE_KEY")
    deployer = client.account.address
    say = progress or (lambda _msg: None)
    roles: dict[str, str] = check_roles(client.chain_id, deployer, config)
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

    governance = roles["governance"]
    if config.timelock_delay_s is not None:
        # Self-administered (admin 0): only its own delayed operations can change its roles or delay; the guardian
        # may cancel scheduled operations.
        governance = deploy("GovernanceTimelock", config.timelock_delay_s, [roles["governance"]],
                            [roles["governance"]], roles["guardian"])
        roles = {**roles, "proposer": roles["governance"], "governance": governance}
    if config.token is None:
        token = deploy("DevToken", config.token_name, config.token_symbol, deployer)
    else:
        token = to_checksum_address(config.token)
        if not client.has_code(token):
            raise DeploymentError(f"token {token} has no code on chain {client.chain_id}; pass an ERC-20 address")
        contracts["Token"] = {"address": token, "abiHash": "", "txHash": "", "block": 0}
    deploy("AssetRegistry", governance, config.change_delay_s, config.max_price_per_m_tokens)
    node_registry = deploy("NodeRegistry", token, config.min_bond, config.unbonding_delay_s, governance)
    ledger = deploy("AttributionLedger", node_registry)
    distributor = deploy("RewardDistributor", token, node_registry, ledger, governance, roles["poster"],
                         roles["guardian"], roles["treasury"], config.challenge_window_s)
    disputes = deploy("BatchDisputes", ledger, roles["treasury"], config.omission_bond_wei,
                      config.availability_bond_wei)
    if governance == deployer:
        say("making BatchDisputes the registry's slasher")
        NodeRegistry(client, node_registry, store=store).set_slasher(disputes)
    else:
        # Under a timelock the slasher is set by a delayed governance operation, like every other parameter.
        log.warning("governance %s must call NodeRegistry(%s).setSlasher(%s): until then nobody can slash",
                    governance, node_registry, disputes)
    if config.timelock_delay_s is not None:
        say("binding the timelock's delay floor")
        timelock = Timelock(client, governance, store=store)
        timelock.bind_floor(node_registry, distributor)
        if timelock.min_delay() < config.unbonding_delay_s + config.challenge_window_s:
            raise DeploymentError(f"the timelock at {governance} reports a delay below unbonding delay + challenge "
                                  "window after binding; do not use this deployment")

    rewards = RewardDistributor(client, distributor, store=store)
    if rewards.shares() != (config.node_share_bps, config.adapter_share_bps):
        if governance != deployer:
            log.warning("reward shares differ from the config but governance %s is not the deployer; governance "
                        "must call setShares(%d, %d)", governance, config.node_share_bps, config.adapter_share_bps)
        else:
            say("setting reward shares")
            rewards.set_shares(config.node_share_bps, config.adapter_share_bps)

    assert first_block is not None  # at least AssetRegistry was deployed
    params: dict[str, Any] = {
        "minBond": str(config.min_bond), "unbondingDelay": config.unbonding_delay_s,
        "challengeWindow": config.challenge_window_s, "nodeShareBps": config.node_share_bps,
        "adapterShareBps": config.adapter_share_bps, "changeDelay": config.change_delay_s,
        "maxPricePerMTokens": str(config.max_price_per_m_tokens),
        "omissionBond": str(config.omission_bond_wei), "availabilityBond": str(config.availability_bond_wei)}
    if config.timelock_delay_s is not None:
        params["timelockDelay"] = config.timelock_delay_s
    return Deployment(chain_id=client.chain_id, deployer=deployer, deploy_block=first_block, contracts=contracts,
                      roles=roles, params=params, deployed_at=_utcnow())


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
