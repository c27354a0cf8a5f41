"""`loraledger devnet up|down|status|advance`: the local L2 (anvil --network optimism) + DA server + contracts.

Thin wrappers over `attribution.devnet.stack`; this module only adds settings, the DA server command line and tables.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from node.errors import UsageError

if TYPE_CHECKING:  # attribution.devnet.stack (web3) is imported inside the commands: `--help` stays fast
    from attribution.devnet.stack import DevnetConfig, DevnetStatus
from node.settings import load_settings

app = typer.Typer(help="Local devnet: anvil (OP-Stack mode, state kept in .devnet/), DA server, deployed contracts.",
                  no_args_is_help=True)


def make_console(stderr: bool = False) -> Console:
    """A rich console; when piped, wide enough that addresses are never cut."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 200)

StateDirOpt = Annotated[Path | None, typer.Option("--state-dir", help="State dir (default: devnet.state_dir, "
                                                                        ".devnet).")]
PortOpt = Annotated[int | None, typer.Option("--port", help="anvil port (default: devnet.anvil_port, 8545).")]
DaPortOpt = Annotated[int | None, typer.Option("--da-port", help="DA server port (default: devnet.da_port, 3100).")]
DeploymentsOpt = Annotated[Path | None, typer.Option("--deployments-dir", help="Where <chainId>.json is written "
                                                                                "(default: deployments).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
NoDaOpt = Annotated[bool, typer.Option("--no-da", help="Do not start/stop the DA server.")]


def da_server_argv(data_dir: Path, host: str, port: int) -> list[str]:
    """The command line of `loraledger da serve` run with this interpreter (so the venv's packages are used)."""
    return [sys.executable, "-c", "import sys; from node.cli import main; sys.argv[0] = 'loraledger'; main()",
            "da", "serve", "--data-dir", str(data_dir), "--host", host, "--port", str(port), "--dev"]


def devnet_config(state_dir: Path | None, port: int | None, da_port: int | None, deployments_dir: Path | None,
            no_da: bool) -> DevnetConfig:
    """The devnet config from settings (loraledger.toml / LORALEDGER_DEVNET__*) and CLI overrides; validated."""
    from attribution.devnet.stack import DevnetConfig

    try:
        settings = load_settings()
    except ValueError as e:
        raise UsageError(f"bad settings (loraledger.toml / LORALEDGER_* env): {e}") from e
    dn = settings.devnet
    for name, value in (("--port", port), ("--da-port", da_port)):
        if value is not None and not 0 < value < 65536:
            raise UsageError(f"{name} must be 1..65535, got {value}")
    anvil_port = port if port is not None else dn.anvil_port
    da = da_port if da_port is not None else dn.da_port
    if anvil_port == da and not no_da:
        raise UsageError(f"anvil and the DA server cannot share port {da}; pass a different --da-port")
    return DevnetConfig(
        state_dir=(state_dir or dn.state_dir).absolute(), host=dn.host, anvil_port=anvil_port, da_port=da,
        deployments_dir=(deployments_dir or settings.chain.deployments_dir).absolute(),
        demo_dir=dn.demo_dir.absolute(), da_command=None if (no_da or not dn.start_da) else da_server_argv,
    )


def _print(st: DevnetStatus, console: Console) -> None:
    from attribution.chain.keys import DEV_ROLE_INDEX

    services = Table(title="devnet", show_header=True)
    for col in ("service", "state", "URL", "pid", "log"):
        services.add_column(col)
    for s in st.services:
        services.add_row(s.name, "[green]running[/]" if s.running else "[red]stopped[/]", s.url,
                         str(s.pid or "-"), s.log_file)
    console.print(services)
    console.print(f"RPC URL  {st.rpc_url}    chain id  {st.chain_id if st.chain_id is not None else '-'}    "
                  f"block  {st.block_number if st.block_number is not None else '-'}")
    if st.deployment is not None:
        contracts = Table(title=f"contracts ({st.deployment_file}, deploy block {st.deployment.deploy_block})")
        contracts.add_column("contract")
        contracts.add_column("address")
        for name, address in st.deployment.addresses.items():
            contracts.add_row(name, address)
        console.print(contracts)
        roles = Table(title="roles (anvil dev accounts, devnet only)")
        roles.add_column("role")
        roles.add_column("address")
        roles.add_column("dev account")
        for role, address in {**st.deployment.roles, "node": st.deployment.devnet.get("node", "")}.items():
            roles.add_row(role, address, str(DEV_ROLE_INDEX.get("rewards_poster" if role == "poster" else role, "")))
        console.print(roles)
    for w in st.warnings:
        console.print(f"[yellow]warning:[/] {w}")


@app.command("up")
def up_command(state_dir: StateDirOpt = None, port: PortOpt = None, da_port: DaPortOpt = None,
               deployments_dir: DeploymentsOpt = None, no_da: NoDaOpt = False, as_json: JsonOpt = False) -> None:
    """Start anvil (and the DA server), deploy once, bond the dev node, register demo assets. Idempotent."""
    config = devnet_config(state_dir, port, da_port, deployments_dir, no_da)
    from attribution.chain.errors import ChainError
    from attribution.devnet.stack import down, status, up

    console = make_console(stderr=as_json)
    was_running = status(config).running
    try:
        with console.status("devnet up: starting") as spinner:  # a spinner on a terminal; plain lines otherwise

            def say(msg: str) -> None:
                console.print(f"[dim]{msg}[/]")
                spinner.update(f"devnet up: {msg}")

            st = up(config, progress=say)
    except (ChainError, OSError) as e:
        if not was_running:  # do not leave behind the anvil (and DA server) this failed call started
            down(config)
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from e
    if as_json:
        typer.echo(json.dumps(st.to_json(), indent=2))
        return
    if st.already_running:
        console.print("[bold]devnet already running[/] - nothing changed")
    else:
        what = ", ".join(st.started) or "nothing"
        console.print(f"[bold]devnet up[/]: started {what}; "
                      f"{'deployed the contracts' if st.deployed else 'contracts already deployed (state reloaded)'}"
                      + (f"; registered {st.demo_assets} demo assets" if st.demo_assets else ""))
    _print(st, console)
    console.print("stop it with [bold]loraledger devnet down[/] (or [bold]make devnet-down[/]); state stays in "
                  f"{config.state_dir}")


@app.command("down")
def down_command(state_dir: StateDirOpt = None, port: PortOpt = None, da_port: DaPortOpt = None,
                 no_da: NoDaOpt = False) -> None:
    """Stop the DA server and anvil (anvil writes its state first; `up` loads it back)."""
    config = devnet_config(state_dir, port, da_port, None, no_da)
    from attribution.devnet.stack import down

    stopped = down(config)
    typer.echo(f"stopped {', '.join(stopped)}" if stopped else "devnet was not running")


@app.command("status")
def status_command(state_dir: StateDirOpt = None, port: PortOpt = None, da_port: DaPortOpt = None,
                   deployments_dir: DeploymentsOpt = None, as_json: JsonOpt = False) -> None:
    """Show what runs, the chain, block and deployed addresses. Exit code 3 when anvil is not running."""
    config = devnet_config(state_dir, port, da_port, deployments_dir, False)
    from attribution.devnet.stack import status

    st = status(config)
    if st.running and st.chain_id is None:  # our anvil's pid is alive, but nothing answers on this port
        for svc in st.services:
            if svc.name == "anvil":
                svc.running = False
    if as_json:
        out = st.to_json()
        out["deployed"] = st.deployment is not None  # status: is a deployment live (`up`: deployed by this call)
        out["running"] = st.running
        typer.echo(json.dumps(out, indent=2))
    else:
        _print(st, make_console())
    if not st.running:
        raise typer.Exit(3)


@app.command("advance")
def advance_command(seconds: Annotated[int, typer.Option("--seconds", min=1, help="How far to move the chain's "
                                                                                  "clock (e.g. 3601 to pass a 1 h "
                                                                                  "challenge window).")],
                    port: PortOpt = None, as_json: JsonOpt = False) -> None:
    """Mine one block SECONDS later on the devnet's anvil (only a local devnet's clock can move)."""
    config = devnet_config(None, port, None, None, True)
    from attribution.chain.client import ChainClient
    from attribution.chain.devclock import advance_clock
    from attribution.chain.errors import ChainError

    try:
        moved = advance_clock(ChainClient(config.rpc_url), seconds)
    except ChainError as e:
        raise UsageError(f"{e}; is the devnet up (`loraledger devnet up`)?") from e
    if as_json:
        typer.echo(json.dumps(moved.to_json(), indent=2))
    else:
        typer.echo(f"block {moved.block_number} at {moved.timestamp} (+{moved.timestamp - moved.before_timestamp} s)")
