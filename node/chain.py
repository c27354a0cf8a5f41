"""The node's side of the one chain set-up: the `[chain]` settings (and a command's flags) into
`attribution.chain.setup.connect`. Every command and service that talks to the chain calls `connect_chain`."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from node.settings import Settings

if TYPE_CHECKING:  # web3 is imported when a command connects: `--help` stays fast
    from attribution.chain.setup import ChainContext, SignerParams

ENV_KEYSTORE_PASSWORD = "LORALEDGER_KEYSTORE_PASSWORD"  # = attribution.chain.keys.ENV_KEYSTORE_PASSWORD


def signer_params(settings: Settings, *, keystore: Path | None = None, dev_index: int | None = None,
                  dev_index_required: bool = False, prompt: Callable[[Path], str] | None = None) -> SignerParams:
    """Where the signer comes from: `keystore` (else `chain.keystore`) with its password from
    `LORALEDGER_KEYSTORE_PASSWORD`, `chain.keystore_password` or `prompt`; `chain.private_key`; on the devnet
    only, dev account `dev_index`."""
    from attribution.chain.setup import SignerParams

    c = settings.chain
    keystore = keystore or c.keystore
    password = None
    if keystore is not None:
        password = os.environ.get(ENV_KEYSTORE_PASSWORD) or (
            c.keystore_password.get_secret_value() if c.keystore_password else None)
        if password is None and prompt is not None:
            password = prompt(keystore)
    return SignerParams(keystore=keystore, password=password,
                        private_key=c.private_key.get_secret_value() if c.private_key else None,
                        dev_index=dev_index, dev_index_required=dev_index_required)


def connect_chain(settings: Settings, *, rpc_url: str | None = None, deployment_file: Path | None = None,
                  expected_chain_id: int | None = None, load_deployment: bool = True,
                  require_deployment: bool = True, check_code: bool = False, signer: SignerParams | None = None,
                  timeout_s: float = 30.0) -> ChainContext:
    """`attribution.chain.setup.connect` with the `[chain]` settings as defaults for what the flags leave out.

    Raises the chain layer's `ChainError`s; commands turn them into `UsageError` with their flag names.
    """
    from attribution.chain.setup import connect

    c = settings.chain
    return connect(rpc_url or c.rpc_url,
                   expected_chain_id=expected_chain_id if expected_chain_id is not None else c.chain_id,
                   deployment_file=deployment_file or c.deployment_file, deployments_dir=c.deployments_dir,
                   load_deployment=load_deployment, require_deployment=require_deployment, check_code=check_code,
                   signer=signer, timeout_s=timeout_s)
