"""What the chain commands share: connect to the RPC named by settings or flags, load the deployment file, load
the signer (keystore, env key, or a dev account on the local devnet only), turn chain errors into one
`error:` line with exit code 2 (`UsageError`), and print a result as JSON or a field/value table."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from attribution.hashing import is_address, to_checksum_address
from node.chain import ENV_KEYSTORE_PASSWORD
from node.errors import UsageError
from node.settings import load_settings

if TYPE_CHECKING:  # attribution.chain (web3) is imported when a command runs: `--help` stays fast
    from attribution.chain.setup import ChainContext


def warn_secret_in_argv(value: str | None) -> str | None:
    """Typer callback of `--rpc-url`: a URL holding a key or password on the command line is visible to every
    local user (`ps`, shell history); say so and where to put it instead. Public URLs pass silently."""
    from attribution.chain.redact import redact_url

    if value and redact_url(value) != value:
        typer.echo(f"warning: --rpc-url {redact_url(value)} carries a key or password, which every local user can "
                   "read in `ps`; set LORALEDGER_CHAIN__RPC_URL or chain.rpc_url in loraledger.toml instead",
                   err=True)
    return value


RpcOpt = Annotated[str | None, typer.Option("--rpc-url", callback=warn_secret_in_argv, help="L2 JSON-RPC URL "
                                            "(default: chain.rpc_url; a URL with a key belongs in "
                                            "LORALEDGER_CHAIN__RPC_URL, not argv).")]
KeystoreOpt = Annotated[Path | None, typer.Option(
    "--keystore", help=f"Signer keyfile JSON; password from {ENV_KEYSTORE_PASSWORD} or a prompt. Without it: "
                       "LORALEDGER_PRIVATE_KEY, or on the local devnet (chain 31337) a dev account.")]
DevAccountOpt = Annotated[int | None, typer.Option(
    "--dev-account", help="Local devnet only (chain 31337): sign with anvil dev account N.")]
DeploymentOpt = Annotated[Path | None, typer.Option(
    "--deployment", help="Deployment file (default: chain.deployment_file or deployments/<chainId>.json).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@contextmanager
def chain_errors() -> Iterator[None]:
    """Chain errors (reverts, RPC failures, bad keys) as one `error:` line and exit code 2."""
    from attribution.chain.errors import ChainError

    try:
        yield
    except ChainError as e:
        raise UsageError(str(e)) from e
    except ValueError as e:  # malformed ids or addresses caught by the wrappers
        raise UsageError(str(e)) from e


def connect(rpc_url: str | None, deployment_file: Path | None, *, keystore: Path | None = None,
            dev_account: int | None = None, default_dev_account: int | None = None,
            sign: bool = False) -> ChainContext:
    """Connect, check the deployment against the chain, and load the signer when `sign` (`node.chain`)."""
    from node.chain import connect_chain, signer_params

    try:
        settings = load_settings()
    except ValueError as e:
        raise UsageError(f"bad settings (loraledger.toml / LORALEDGER_* env): {e}") from e
    signer = None
    if sign:
        keystore = keystore or settings.chain.keystore
        if keystore is not None and not keystore.is_file():
            raise UsageError(f"--keystore {keystore} is not a file; pass an eth-account keyfile JSON")
        dev = dev_account if dev_account is not None else default_dev_account
        signer = signer_params(settings, keystore=keystore, dev_index=dev, dev_index_required=dev_account is not None,
                               prompt=lambda path: str(typer.prompt(f"password for {path}", hide_input=True)))
    with chain_errors():
        return connect_chain(settings, rpc_url=rpc_url, deployment_file=deployment_file, check_code=True,
                             signer=signer)


def parse_amount(value: str, flag: str) -> int:
    """A non-negative integer amount in base units; `1e18` and `1_000` are accepted, fractions are not."""
    try:
        amount = Decimal(value.replace("_", ""))
    except InvalidOperation:
        raise UsageError(f"{flag} {value!r} is not a number (base units, e.g. 1000000 or 1e18)") from None
    if amount < 0 or amount != amount.to_integral_value():
        raise UsageError(f"{flag} {value!r} must be a whole number of base units >= 0")
    return int(amount)


def parse_b32(value: str, flag: str) -> bytes:
    """32 bytes from `0x` + 64 hex digits."""
    raw = value[2:] if value.startswith("0x") else value
    try:
        out = bytes.fromhex(raw)
    except ValueError:
        out = b""
    if len(out) != 32:
        raise UsageError(f"{flag} {value!r} is not 32 bytes of hex (0x + 64 hex digits)")
    return out


def parse_address(value: str, flag: str) -> str:
    """A checksummed address."""

    if not is_address(value):
        raise UsageError(f"{flag} {value!r} is not an address (0x + 40 hex digits)")
    return str(to_checksum_address(value))


def parse_weighted(items: list[str], flag: str, kind: str) -> tuple[list[str], list[int]]:
    """`KEY:BPS` pairs (e.g. `0xabc…:7000`) into parallel lists; the basis points must sum to 10000."""
    keys, weights = [], []
    for item in items:
        key, sep, bps = item.rpartition(":")
        if not sep or not bps.isdigit():
            raise UsageError(f"{flag} {item!r} must be {kind}:BPS, e.g. {flag} 0x…:10000")
        keys.append(key)
        weights.append(int(bps))
    if keys and sum(weights) != 10_000:
        raise UsageError(f"the {flag} basis points sum to {sum(weights)}; they must sum to 10000")
    return keys, weights


def hexs(b: bytes) -> str:
    """`0x` hex."""
    return "0x" + bytes(b).hex()


def emit(data: dict[str, Any], as_json: bool, title: str) -> None:
    """`data` as indented JSON with `--json`, else as a field/value table titled `title` (lists and dicts in it
    as JSON, long values folded rather than cut)."""
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    table = Table(title=title, show_header=False)
    table.add_column("field")
    table.add_column("value", overflow="fold")
    for key, value in data.items():
        table.add_row(key, json.dumps(value) if isinstance(value, list | dict) else str(value))
    Console(width=200).print(table)


def token_units(token: Any) -> Callable[[int | str], str]:
    """A formatter of reward-token base units for tables: `34000000000000` -> `0.000034 LLDEV` (decimals and symbol
    read from the token); `--json` output keeps the raw integers."""
    with chain_errors():
        symbol = str(token.contract.functions.symbol().call())
        decimals = int(token.contract.functions.decimals().call())

    def fmt(value: int | str) -> str:
        v = int(value)
        digits = str(abs(v)).rjust(decimals + 1, "0")
        whole, frac = (digits[:-decimals], digits[-decimals:].rstrip("0")) if decimals else (digits, "")
        return f"{'-' if v < 0 else ''}{int(whole):,}{'.' + frac if frac else ''} {symbol}"
    return fmt


def in_units(data: dict[str, Any], keys: tuple[str, ...], fmt: Callable[[int | str], str]) -> dict[str, Any]:
    """`data` with the amounts under `keys` formatted by `fmt` (for a table)."""
    return {k: fmt(v) if k in keys and v is not None else v for k, v in data.items()}
