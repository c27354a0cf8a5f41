"""`loraledger fees deposit|show`: node operators prepay the fees their records owe (DESIGN.md "Rewards": money
comes only from fees that were paid). Thin commands over `RewardDistributor.deposit_fees` / `fee_credit`."""

from __future__ import annotations

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
    in_units,
    parse_address,
    parse_amount,
    token_units,
)
from node.errors import UsageError

app = typer.Typer(help="Node operators: deposit fee credit, show a node's credit and the latest epoch's debits.",
                  no_args_is_help=True)

#: dev account of the devnet's node operator.
DEVNET_NODE_ACCOUNT = 1


@app.command("deposit")
def deposit(
    amount: Annotated[str, typer.Argument(help="Reward-token base units (e.g. 1e21 = 1000 tokens of 18 "
                                               "decimals).")],
    node: Annotated[str | None, typer.Option("--node", help="Whose credit to top up (default: the signer).")] = None,
    rpc_url: RpcOpt = None, keystore: KeystoreOpt = None, dev_account: DevAccountOpt = None,
    deployment: DeploymentOpt = None, as_json: JsonOpt = False,
) -> None:
    """Approve and deposit AMOUNT into a node's fee credit (anyone may top up any node)."""
    value = parse_amount(amount, "AMOUNT")
    if value == 0:
        raise UsageError("AMOUNT must be > 0")
    target = parse_address(node, "--node") if node is not None else None
    ctx = connect(rpc_url, deployment, keystore=keystore, dev_account=dev_account,
                  default_dev_account=DEVNET_NODE_ACCOUNT, sign=True)
    c = ctx.contracts
    with chain_errors():
        balance = c.token.balance_of(ctx.sender)
        if balance < value:
            raise UsageError(f"{ctx.sender} holds {balance} reward-token units, less than {value}; fund it first")
        dep = c.rewards.approve_and_deposit(c.token, target or ctx.sender, value)
    data = {"node": dep.node, "credited": str(dep.credited), "credit": str(dep.credit), "from": ctx.sender,
            "txHash": dep.tx.tx_hash}
    emit(data if as_json else in_units(data, ("credited", "credit"), token_units(c.token)), as_json,
         "fee credit deposited")


@app.command("show")
def show(
    node: Annotated[str | None, typer.Option("--node", help="The node (default: the devnet node, else "
                                                            "required).")] = None,
    rpc_url: RpcOpt = None, deployment: DeploymentOpt = None, as_json: JsonOpt = False,
) -> None:
    """A node's unused fee credit, the distributor's totals and the latest epoch's debit of this node."""
    ctx = connect(rpc_url, deployment)
    target = parse_address(node, "--node") if node is not None else ctx.need_deployment().devnet.get("node")
    if not target:
        raise UsageError("pass --node ADDRESS (only the devnet's deployment file names a default node)")
    r = ctx.contracts.rewards
    with chain_errors():
        latest = r.latest_epoch()
        data: dict[str, Any] = {
            "node": target, "feeCredit": str(r.fee_credit(target)),
            "active": ctx.contracts.nodes.is_active(target), "exited": ctx.contracts.nodes.has_exited(target),
            "totalDeposited": str(r.total_deposited()), "totalDebited": str(r.total_debited()),
            "totalClaimed": str(r.total_claimed()), "latestEpoch": latest,
        }
        if latest:
            p = r.proposal(latest)
            data["latestEpochDebit"] = str(r.proposal_debits(latest).get(target, 0))
            data["latestEpochState"] = "vetoed" if p.vetoed else "claimable" if r.current_epoch() == latest \
                else "open (being paged)" if p.claimable_at == 0 else "in challenge window"
    if not as_json:
        data = in_units(data, ("feeCredit", "totalDeposited", "totalDebited", "totalClaimed", "latestEpochDebit"),
                        token_units(ctx.contracts.token))
    emit(data, as_json, f"fees of node {target}")
