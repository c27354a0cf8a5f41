"""The one chain set-up: RPC URL and settings in, a connected `ChainContext` out.

Every command and service that talks to the chain goes through `connect`: open the RPC, read its chain id and
check it against the one expected, load the deployment file (`deployments/<chainId>.json` unless one is named) and
optionally check its code on chain, load the signer, bind the contract wrappers. Errors are `ChainError`s whose
message names the RPC by its redacted URL (`attribution.chain.redact`) and says what to fix; callers add their
own flag names.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from eth_account.signers.local import LocalAccount

from attribution.chain.client import ChainClient
from attribution.chain.deploy import Contracts, Deployment, deployment_path
from attribution.chain.errors import DeploymentError, DevKeyRefused, SignerError
from attribution.chain.keys import DEVNET_CHAIN_ID, load_signer

__all__ = ["ChainContext", "ChainMismatch", "SignerParams", "connect"]


class ChainMismatch(DeploymentError):
    """The RPC serves another chain than the settings (or a deployment file) expect: fix the RPC URL or the id."""


@dataclass(frozen=True)
class SignerParams:
    """Where the signing key comes from, in `keys.load_signer` order: keystore (+ password), private key, and
    on the local devnet only, anvil dev account `dev_index`."""

    keystore: Path | None = None
    password: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)
    dev_index: int | None = None
    #: the dev account was asked for by name (`--dev-account`): refuse it off the devnet even if a key is set
    dev_index_required: bool = False


@dataclass
class ChainContext:
    """A connected client, its chain id, the deployment (None when none was asked for) and its bound wrappers."""

    client: ChainClient
    chain_id: int
    deployment: Deployment | None
    deployment_file: Path | None = None
    warnings: list[str] = field(default_factory=list)

    @functools.cached_property
    def contracts(self) -> Contracts:
        """Typed wrappers for every contract of the deployment, on `client` (bound on first use)."""
        return self.need_deployment().bind(self.client)

    @property
    def account(self) -> LocalAccount | None:
        """The signer, None when none was loaded."""
        return self.client.account

    @property
    def sender(self) -> str:
        """The signer's address; `SignerError` when `connect` loaded none."""
        if self.client.account is None:
            raise SignerError("this command signs a transaction: pass --keystore FILE or set LORALEDGER_PRIVATE_KEY")
        return str(self.client.account.address)

    def need_deployment(self) -> Deployment:
        """The deployment; `DeploymentError` when `connect` was told not to load one."""
        if self.deployment is None:
            raise DeploymentError("no deployment loaded; pass a deployment file")
        return self.deployment


def connect(rpc_url: str, *, expected_chain_id: int | None = None, deployment_file: Path | None = None,
            deployments_dir: Path | str | None = None, load_deployment: bool = True,
            require_deployment: bool = True, check_code: bool = False, signer: SignerParams | None = None,
            timeout_s: float = 30.0) -> ChainContext:
    """Connect to `rpc_url` and return what a command needs of the chain (see the module doc).

    `expected_chain_id`: refuse another chain (`ChainMismatch`). The deployment is `deployment_file`, else
    `deployments_dir/<chainId>.json`; with `require_deployment=False` a missing file leaves `deployment` None.
    `check_code`: also check that every address holds code and the ABI hashes (drift lands in `warnings`).
    `signer`: load the signing account into `client.account` (`SignerError`, `DevKeyRefused` when refused).
    Raises `RpcUnavailable` / `RpcError` when the RPC does not answer, `DeploymentError` for a bad file.
    """
    client = ChainClient(rpc_url, timeout_s=timeout_s)
    chain_id = client.chain_id
    if expected_chain_id is not None and expected_chain_id != chain_id:
        raise ChainMismatch(f"the RPC at {client.safe_url} serves chain {chain_id}, not {expected_chain_id}: point "
                            f"the RPC URL (--rpc-url / chain.rpc_url) at chain {expected_chain_id} or change the "
                            "expected chain id (--chain-id / chain.chain_id)")
    ctx = ChainContext(client, chain_id, None)
    if load_deployment:
        path = Path(deployment_file) if deployment_file is not None else deployment_path(chain_id, deployments_dir)
        ctx.deployment_file = path
        if path.is_file() or require_deployment:
            deployment = Deployment.load(path)
            if deployment.chain_id != chain_id:
                raise ChainMismatch(f"{path} is for chain {deployment.chain_id} but the RPC at {client.safe_url} "
                                    f"serves chain {chain_id}; use deployments/{chain_id}.json or another RPC URL")
            if check_code:
                ctx.warnings.extend(deployment.check(client))
            ctx.deployment = deployment
    if signer is not None:
        if signer.dev_index_required and signer.dev_index is not None and chain_id != DEVNET_CHAIN_ID:
            raise DevKeyRefused(f"--dev-account {signer.dev_index} is for the local devnet (chain {DEVNET_CHAIN_ID}) "
                                f"only; the RPC at {client.safe_url} serves chain {chain_id}: use a keystore or "
                                "set LORALEDGER_PRIVATE_KEY")
        client.account = load_signer(chain_id, keystore=signer.keystore, password=signer.password,
                                     private_key=signer.private_key,
                                     dev_index=signer.dev_index if chain_id == DEVNET_CHAIN_ID else None)
    return ctx
