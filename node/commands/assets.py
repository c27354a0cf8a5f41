"""`loraledger assets register-dataset|register-model|register-adapter|schedule-price|show`: thin commands for
asset owners over `attribution.chain.assets.AssetRegistry`.

Ids are namespaced by the owner (DESIGN.md "Identities"): the registry computes them from the signer, and the
commands print them. Price changes are scheduled: they apply from the `effectiveAt` printed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Annotated, Any

import typer

from node.commands._chain import (
    DeploymentOpt,
    DevAccountOpt,
    JsonOpt,
    KeystoreOpt,
    RpcOpt,
    chain_errors,
    connect,
    emit,
    hexs,
    parse_address,
    parse_amount,
    parse_b32,
    parse_weighted,
)
from node.errors import UsageError

app = typer.Typer(help="Asset owners: register datasets, base models and adapters (ids namespaced by the owner), "
                  "schedule price changes, show an asset.", no_args_is_help=True)

#: dev account that owns the demo assets on the local devnet (the deployer).
DEVNET_OWNER_ACCOUNT = 0


def _when(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@app.command("register-dataset")
def register_dataset(
    contributor: Annotated[list[str], typer.Option("--contributor", help="ADDRESS:BPS, repeatable; the basis "
                                                                         "points sum to 10000.")],
    key: Annotated[str | None, typer.Option("--key", help="The dataset key (0x + 64 hex), e.g. sha256 of its "
                                                          "manifest.")] = None,
    key_file: Annotated[Path | None, typer.Option("--key-file", help="Use sha256 of this file as the key.")] = None,
    uri: Annotated[str, typer.Option("--uri", help="Where the dataset is described.")] = "",
    rpc_url: RpcOpt = None, keystore: KeystoreOpt = None, dev_account: DevAccountOpt = None,
    deployment: DeploymentOpt = None, as_json: JsonOpt = False,
) -> None:
    """Register a dataset owned by the signer; prints its id keccak256(owner, key)."""
    if (key is None) == (key_file is None):
        raise UsageError("pass exactly one of --key 0x… or --key-file FILE")
    if key_file is not None:
        if not key_file.is_file():
            raise UsageError(f"--key-file {key_file} is not a file")
        dataset_key = hashlib.sha256(key_file.read_bytes()).digest()
    else:
        assert key is not None
        dataset_key = parse_b32(key, "--key")
    addresses, shares = parse_weighted(contributor, "--contributor", "ADDRESS")
    contributors = [parse_address(a, "--contributor") for a in addresses]
    ctx = connect(rpc_url, deployment, keystore=keystore, dev_account=dev_account,
                  default_dev_account=DEVNET_OWNER_ACCOUNT, sign=True)
    with chain_errors():
        reg = ctx.contracts.assets.register_dataset(dataset_key, contributors, shares, uri)
    emit({"datasetId": hexs(reg.asset_id), "datasetKey": hexs(dataset_key), "owner": ctx.sender,
          "effectiveAt": reg.effective_at, "txHash": reg.tx.tx_hash}, as_json, "dataset registered")


@app.command("register-model")
def register_model(
    model_id: Annotated[str, typer.Option("--model-id", help="The base model's sha256 model id (0x + 64 hex).")],
    uri: Annotated[str, typer.Option("--uri", help="Where the model is described.")] = "",
    rpc_url: RpcOpt = None, keystore: KeystoreOpt = None, dev_account: DevAccountOpt = None,
    deployment: DeploymentOpt = None, as_json: JsonOpt = False,
) -> None:
    """Register a base model (adapters must name a registered one)."""
    mid = parse_b32(model_id, "--model-id")
    ctx = connect(rpc_url, deployment, keystore=keystore, dev_account=dev_account,
                  default_dev_account=DEVNET_OWNER_ACCOUNT, sign=True)
    with chain_errors():
        tx = ctx.contracts.assets.register_base_model(mid, uri)
    emit({"modelId": hexs(mid), "owner": ctx.sender, "txHash": tx.tx_hash}, as_json, "base model registered")


@app.command("register-adapter")
def register_adapter(
    base_model: Annotated[str, typer.Option("--base-model", help="A registered base model id.")],
    price: Annotated[str, typer.Option("--price", help="Price per million tokens in reward-token base units "
                                                       "(e.g. 1e18 = 1 token of 18 decimals).")],
    content_hash: Annotated[str | None, typer.Option("--content-hash", help="The adapter's contentHash.")] = None,
    adapter_dir: Annotated[Path | None, typer.Option("--adapter-dir", help="Compute the contentHash of this peft "
                                                                           "adapter directory.")] = None,
    dataset: Annotated[list[str] | None, typer.Option("--dataset", help="DATASET_ID:BPS, repeatable (sum "
                                                                        "10000); none for no provenance.")] = None,
    uri: Annotated[str, typer.Option("--uri", help="Where the adapter is described.")] = "",
    rpc_url: RpcOpt = None, keystore: KeystoreOpt = None, dev_account: DevAccountOpt = None,
    deployment: DeploymentOpt = None, as_json: JsonOpt = False,
) -> None:
    """Register an adapter owned by the signer; prints its id keccak256(owner, contentHash)."""
    if (content_hash is None) == (adapter_dir is None):
        raise UsageError("pass exactly one of --content-hash 0x… or --adapter-dir DIR")
    if adapter_dir is not None:
        from inference.adapters.identity import adapter_id_of
        from inference.errors import InferenceError

        try:
            chash = adapter_id_of(adapter_dir)
        except InferenceError as e:
            raise UsageError(f"--adapter-dir {adapter_dir}: {e}") from e
    else:
        assert content_hash is not None
        chash = parse_b32(content_hash, "--content-hash")
    ids, weights = parse_weighted(dataset or [], "--dataset", "DATASET_ID")
    dataset_ids = [parse_b32(i, "--dataset") for i in ids]
    ctx = connect(rpc_url, deployment, keystore=keystore, dev_account=dev_account,
                  default_dev_account=DEVNET_OWNER_ACCOUNT, sign=True)
    with chain_errors():
        reg = ctx.contracts.assets.register_adapter(chash, parse_b32(base_model, "--base-model"), dataset_ids,
                                                    weights, parse_amount(price, "--price"), uri)
    emit({"adapterId": hexs(reg.asset_id), "contentHash": hexs(chash), "owner": ctx.sender,
          "effectiveAt": reg.effective_at, "txHash": reg.tx.tx_hash}, as_json, "adapter registered")


@app.command("schedule-price")
def schedule_price(
    adapter_id: Annotated[str, typer.Argument(help="The adapter id (not the contentHash).")],
    price: Annotated[str, typer.Argument(help="New price per million tokens, reward-token base units.")],
    rpc_url: RpcOpt = None, keystore: KeystoreOpt = None, dev_account: DevAccountOpt = None,
    deployment: DeploymentOpt = None, as_json: JsonOpt = False,
) -> None:
    """Owner only: schedule a new price; it applies from now + changeDelay (printed), never to past usage."""
    aid = parse_b32(adapter_id, "ADAPTER_ID")
    amount = parse_amount(price, "PRICE")
    ctx = connect(rpc_url, deployment, keystore=keystore, dev_account=dev_account,
                  default_dev_account=DEVNET_OWNER_ACCOUNT, sign=True)
    with chain_errors():
        sched = ctx.contracts.assets.schedule_price(aid, amount)
    assert sched.tx is not None
    emit({"adapterId": hexs(aid), "pricePerMTokens": str(amount), "effectiveAt": sched.effective_at,
          "effectiveAtUtc": _when(sched.effective_at), "txHash": sched.tx.tx_hash}, as_json, "price scheduled")


@app.command("show")
def show(
    asset_id: Annotated[str, typer.Argument(help="An adapter, dataset or base model id.")],
    rpc_url: RpcOpt = None, deployment: DeploymentOpt = None, as_json: JsonOpt = False,
) -> None:
    """Show an asset as in effect now, with its pending change (adapter, dataset or base model)."""
    aid = parse_b32(asset_id, "ASSET_ID")
    ctx = connect(rpc_url, deployment)
    assets = ctx.contracts.assets
    data: dict[str, Any]
    with chain_errors():
        if assets.adapter_exists(aid):
            a = assets.adapter(aid)
            data = {"kind": "adapter", "adapterId": hexs(aid), "owner": a.owner, "contentHash": hexs(a.content_hash),
                    "baseModelId": hexs(a.base_model_id), "datasetIds": [hexs(d) for d in a.dataset_ids],
                    "weightsBps": list(a.weights_bps), "pricePerMTokens": str(a.price_per_m_tokens),
                    "active": a.active, "activeFrom": a.active_from, "uri": a.uri}
            pending = assets.pending_adapter_change(aid)
            if pending is not None:
                data["pending"] = {"datasetIds": [hexs(d) for d in pending.dataset_ids],
                                   "weightsBps": list(pending.weights_bps),
                                   "pricePerMTokens": str(pending.price_per_m_tokens),
                                   "effectiveAt": pending.effective_at}
        elif assets.dataset_exists(aid):
            d = assets.dataset(aid)
            data = {"kind": "dataset", "datasetId": hexs(aid), "owner": d.owner, "datasetKey": hexs(d.dataset_key),
                    "contributors": list(d.contributors), "sharesBps": list(d.shares_bps), "uri": d.uri}
            pending_ds = assets.pending_dataset_change(aid)
            if pending_ds is not None:
                data["pending"] = {"contributors": list(pending_ds.contributors),
                                   "sharesBps": list(pending_ds.shares_bps), "effectiveAt": pending_ds.effective_at}
        elif assets.base_model_exists(aid):
            m = assets.base_model(aid)
            data = {"kind": "baseModel", "modelId": hexs(aid), "owner": m.owner, "uri": m.uri}
        else:
            raise UsageError(f"{hexs(aid)} is no registered adapter, dataset or base model on chain "
                             f"{ctx.chain_id} (an adapter's id is keccak256(owner, contentHash), not the "
                             "contentHash)")
    emit(data, as_json, f"{data['kind']} {hexs(aid)}")
