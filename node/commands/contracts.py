"""`loraledger contracts deploy|show|errors`: deploy to a real chain, inspect a deployment, list custom errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from attribution.hashing import is_address, to_checksum_address
from node.chain import ENV_KEYSTORE_PASSWORD
from node.commands._chain import RpcOpt
from node.errors import UsageError

if TYPE_CHECKING:  # attribution.chain (web3) is imported inside the commands: `--help` stays fast
    from attribution.chain.deploy import Deployment

from node.settings import load_settings

app = typer.Typer(help="Contracts: deploy all and wire roles, show a deployment, list custom errors.",
                  no_args_is_help=True)


def make_console(stderr: bool = False) -> Console:
    """A rich console; when piped, wide enough that addresses are never cut."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 200)

ONE_TOKEN = 10**18


def _address(value: str | None, flag: str) -> str | None:

    if value is None:
        return None
    if not is_address(value):
        raise UsageError(f"{flag} {value!r} is not an address (0x + 40 hex digits)")
    return to_checksum_address(value)


@app.command("deploy")
def deploy_command(
    rpc_url: RpcOpt = None,
    keystore: Annotated[Path | None, typer.Option(
        "--keystore", help=f"Deployer keyfile JSON; password from {ENV_KEYSTORE_PASSWORD} or a prompt. Without it: "
                           "LORALEDGER_PRIVATE_KEY.")] = None,
    chain_id: Annotated[int | None, typer.Option("--chain-id", help="Refuse to deploy unless the RPC serves this "
                                                                   "chain.")] = None,
    token: Annotated[str | None, typer.Option("--token", help="Existing ERC-20 for stake and rewards (default: "
                                                              "deploy a DevToken).")] = None,
    governance: Annotated[str | None, typer.Option(
        "--governance", help="The timelock's proposer and executor (e.g. a Safe); on the devnet without "
                             "--timelock-delay it governs directly (default: deployer).")] = None,
    poster: Annotated[str | None, typer.Option("--poster", help="Rewards poster (devnet default: deployer).")] = None,
    guardian: Annotated[str | None, typer.Option("--guardian", help="Rewards guardian, never the poster.")] = None,
    treasury: Annotated[str | None, typer.Option("--treasury", help="Treasury (devnet default: deployer).")] = None,
    timelock_delay: Annotated[int | None, typer.Option(
        "--timelock-delay", help="Seconds (>= --unbonding-delay + --challenge-window): deploy the "
                                 "GovernanceTimelock (an OZ TimelockController with that floor, the guardian as "
                                 "canceller) that governs every contract. Required on any chain but the devnet "
                                 "(31337).")] = None,
    min_bond: Annotated[float, typer.Option("--min-bond", help="Minimum node bond in whole tokens (18 dec).")] = 1000,
    unbonding_delay: Annotated[int, typer.Option("--unbonding-delay", help="Seconds (>= 14 days).")] = 14 * 24 * 3600,
    challenge_window: Annotated[int, typer.Option("--challenge-window", help="Seconds (1 h to 7 days).")] = 24 * 3600,
    change_delay: Annotated[int, typer.Option("--change-delay", help="Seconds before a scheduled price, provenance "
                                                                     "or share change applies (>= 1 h).")] = 24 * 3600,
    max_price: Annotated[float, typer.Option("--max-price", help="Price cap per million tokens, in whole tokens "
                                                                 "(18 dec).")] = 10_000,
    out: Annotated[Path | None, typer.Option("--out", help="Deployment file (default: "
                                                           "deployments/<chainId>.json).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing live deployment file.")] = False,
) -> None:
    """Deploy every contract, wire the roles and write deployments/<chainId>.json. Off the devnet every contract
    is governed by the GovernanceTimelock (--timelock-delay), --token is required, and governance, poster and
    guardian must differ."""
    from attribution.chain.artifacts import ArtifactStore, ensure_built
    from attribution.chain.deploy import DeployConfig, Deployment, check_roles, deploy_all, deployment_path
    from attribution.chain.errors import ChainError, DeploymentError
    from node.chain import connect_chain, signer_params

    settings = load_settings()
    if keystore is not None and not keystore.is_file():
        raise UsageError(f"--keystore {keystore} is not a file; pass an eth-account keyfile JSON")
    if min_bond <= 0 or max_price < 0 or min(unbonding_delay, challenge_window, change_delay) < 0:
        raise UsageError("--min-bond must be > 0; --max-price and the delays >= 0")
    if timelock_delay is not None and timelock_delay < unbonding_delay + challenge_window:
        raise UsageError(f"--timelock-delay {timelock_delay} is below --unbonding-delay + --challenge-window "
                         f"({unbonding_delay + challenge_window}): governance could act before an honest node can "
                         "leave")
    config = DeployConfig(
        token=_address(token, "--token"), governance=_address(governance, "--governance"),
        poster=_address(poster, "--poster"), guardian=_address(guardian, "--guardian"),
        treasury=_address(treasury, "--treasury"), min_bond=int(min_bond * ONE_TOKEN),
        unbonding_delay_s=unbonding_delay, challenge_window_s=challenge_window, change_delay_s=change_delay,
        max_price_per_m_tokens=int(max_price * ONE_TOKEN), timelock_delay_s=timelock_delay,
    )
    console = make_console()
    try:
        signer = signer_params(settings, keystore=keystore, dev_index=0,
                               prompt=lambda p: str(typer.prompt(f"password for {p}", hide_input=True)))
        chain = connect_chain(settings, rpc_url=rpc_url, expected_chain_id=chain_id, load_deployment=False,
                              signer=signer)  # a wrong chain id is a DeploymentError: exit 2
        client, actual = chain.client, chain.chain_id
        assert client.account is not None  # connect loaded the signer it was given
        path = out or settings.chain.deployment_file or deployment_path(actual, settings.chain.deployments_dir)
        if path.is_file() and not force:
            try:
                Deployment.load(path).check(client)
            except ChainError:
                pass  # stale file (e.g. a reset devnet): overwrite it
            else:
                raise UsageError(f"{path} already describes a live deployment on chain {actual}; pass --force to "
                                 "deploy again (or --out FILE)")
        check_roles(actual, client.account.address, config)  # refuse unsafe roles before any transaction
        ensure_built()
        deployment = deploy_all(client, config, ArtifactStore(), progress=lambda m: console.print(f"[dim]{m}[/]"))
        deployment.save(path)
    except DeploymentError as e:
        raise UsageError(str(e)) from e
    except ChainError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from e
    _print_deployment(deployment, path, console)


def _print_deployment(deployment: Deployment, path: Path, console: Console) -> None:
    table = Table(title=f"chain {deployment.chain_id}: {path} (deploy block {deployment.deploy_block})")
    table.add_column("contract")
    table.add_column("address")
    table.add_column("ABI hash")
    for name, entry in deployment.contracts.items():
        table.add_row(name, entry["address"], (entry.get("abiHash") or "-")[:18])
    for role, address in deployment.roles.items():
        table.add_row(f"role: {role}", address, "")
    console.print(table)


@app.command("show")
def show_command(
    chain_id: Annotated[int, typer.Option("--chain-id", help="Which deployments/<chainId>.json.")] = 31337,
    file: Annotated[Path | None, typer.Option("--file", help="A deployment file instead.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the file's JSON.")] = False,
) -> None:
    """Print a deployment file's addresses, roles and ABI hashes."""
    from attribution.chain.deploy import Deployment, deployment_path
    from attribution.chain.errors import ChainError

    settings = load_settings()
    path = file or deployment_path(chain_id, settings.chain.deployments_dir)
    try:
        deployment = Deployment.load(path)
    except ChainError as e:
        raise UsageError(str(e)) from e
    if as_json:
        typer.echo(json.dumps(deployment.to_json(), indent=2))
    else:
        _print_deployment(deployment, path, make_console())


@app.command("errors")
def errors_command() -> None:
    """List every custom error of the deployed contracts with its selector and Python exception class."""
    from attribution.chain.artifacts import CORE_CONTRACTS, ArtifactStore
    from attribution.chain.errors import ChainError
    from attribution.chain.reverts import registry

    store = ArtifactStore()
    try:
        for name in CORE_CONTRACTS:
            registry().add_abi(store.load(name).abi)
    except ChainError as e:
        raise UsageError(str(e)) from e
    table = Table(title="custom errors")
    for col in ("selector", "signature", "Python class"):
        table.add_column(col)
    classes = registry().classes()
    for selector, signature in sorted(registry().signatures().items(), key=lambda kv: kv[1]):
        cls = classes[signature.split("(")[0]]
        bases = ", ".join(b.__name__ for b in cls.__bases__)
        table.add_row("0x" + selector.hex(), signature, f"{cls.__name__}({bases})")
    make_console().print(table)
