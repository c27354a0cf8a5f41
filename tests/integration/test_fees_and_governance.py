"""Fee credit, per-epoch debits (paged, reserved at once, released page by page after a veto), claims bounded by the
root's total, and the timelocked real-chain deploy (delay floor, guardian canceller, --token), against a real
anvil."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from eth_account import Account

from attribution.chain.client import ChainClient
from attribution.chain.deploy import DeployConfig, check_roles, deploy_all
from attribution.chain.errors import DeploymentError
from attribution.chain.reverts import error_class
from attribution.merkle import StandardMerkleTree
from tests.fixtures.chain import DEVNET_TEST_CONFIG, AnvilNode, DeployedContracts

LEAF_TYPES = ["uint256", "address", "address", "address", "uint256"]
WINDOW = 3600


def _advance(anvil: AnvilNode, seconds: int) -> None:
    anvil.rpc("evm_increaseTime", seconds)
    anvil.rpc("evm_mine")


def _tree(d: DeployedContracts, amounts: dict[str, int]) -> tuple[StandardMerkleTree, list[list[Any]]]:
    values = [[d.chain_id, d.rewards.address, account, d.token.address, amount] for account, amount in amounts.items()]
    return StandardMerkleTree.of(values, LEAF_TYPES), values


def _propose(d: DeployedContracts, anvil: AnvilNode, epoch: int, root: bytes, total: int, debit: int,
             commitment: bytes = b"") -> None:
    """Open, page and seal `epoch` ending at the block before the head, debiting the node `debit`."""
    anvil.rpc("evm_mine")
    d.rewards.propose_paged(epoch, d.client.block_number() - 1, root, total, commitment, [d.node.address], [debit],
                            account=d.accounts[2])


def _check_invariants(d: DeployedContracts) -> None:
    """DESIGN.md invariants 5-6: total claimed <= claimable total <= sum of debits <= sum of deposits."""
    current_total = d.rewards.proposal(d.rewards.current_epoch()).total if d.rewards.current_epoch() else 0
    assert d.rewards.total_claimed() <= current_total <= d.rewards.total_debited() <= d.rewards.total_deposited()


def test_deposit_propose_veto_repropose_claim_and_exit(deployment: DeployedContracts, anvil: AnvilNode,
                                                       chain_snapshot: AnvilNode) -> None:
    d = deployment
    node, guardian = d.node, d.accounts[3]
    alice, bob, sponsor = d.accounts[5].address, d.accounts[6].address, d.accounts[7]

    # deposits: the node itself and anyone else may top up its credit
    dep = d.rewards.approve_and_deposit(d.token, node.address, 1_000)
    assert (dep.node, dep.credited, dep.credit) == (node.address, 1_000, 1_000)
    d.token.mint(sponsor.address, 500, account=d.deployer)
    assert d.rewards.approve_and_deposit(d.token, node.address, 500, account=sponsor).credit == 1_500
    assert d.rewards.fee_credit(node.address) == 1_500 == d.rewards.total_deposited()

    # epoch 1 debits 600: reserved at once
    tree, values = _tree(d, {alice: 400, bob: 200})
    _propose(d, anvil, 1, tree.root_bytes, 600, 600, b"\x01\x00\xd0cert")
    assert d.rewards.fee_credit(node.address) == 900 and d.rewards.total_debited() == 600
    p = d.rewards.proposal(1)
    assert (p.total, p.debited, p.vetoed, p.pages) == (600, 600, False, 1)
    assert p.claimable_at >= p.proposed_at + WINDOW
    assert d.rewards.proposal_debits(1) == {node.address: 600}
    with pytest.raises(error_class("DistributorNoRoot")):  # nothing claimable inside the window
        d.rewards.claim(alice, 400, tree.root_bytes, tree.get_proof_bytes(0))
    _check_invariants(d)

    # the guardian vetoes; releasing its page gives the debit back
    assert d.rewards.veto_root(1, account=guardian) == 600
    assert d.rewards.fee_credit(node.address) == 900
    assert d.rewards.release_all(1) == 600
    assert d.rewards.fee_credit(node.address) == 1_500 and d.rewards.total_debited() == 0
    assert d.rewards.proposal(1).vetoed
    _check_invariants(d)

    # epoch 1 again, then claims after the window
    _propose(d, anvil, 1, tree.root_bytes, 600, 600)
    _advance(anvil, WINDOW)
    assert d.rewards.current_root() == tree.root_bytes and d.rewards.current_epoch() == 1
    before = d.token.balance_of(alice)
    d.rewards.claim(alice, 400, tree.root_bytes, tree.get_proof_bytes(0))
    assert d.token.balance_of(alice) == before + 400 and d.rewards.claimed(alice) == 400
    _check_invariants(d)

    # epoch 2: cumulative amounts grow by the new debit (300); alice gets only the difference
    tree2, _ = _tree(d, {alice: 600, bob: 300})
    with pytest.raises(error_class("DistributorTotalMismatch")):  # total must be previous total + debits
        _propose(d, anvil, 2, tree2.root_bytes, 1_000, 300)
    d.rewards.veto_root(2, account=guardian)  # the open proposal with the wrong total
    d.rewards.release_all(2)
    _propose(d, anvil, 2, tree2.root_bytes, 900, 300)
    _advance(anvil, WINDOW)
    d.rewards.claim(alice, 600, tree2.root_bytes, tree2.get_proof_bytes(0))
    d.rewards.claim(bob, 300, tree2.root_bytes, tree2.get_proof_bytes(1))
    assert d.rewards.claimed(alice) == 600 and d.rewards.total_claimed() == 900
    assert d.rewards.fee_credit(node.address) == 600
    _check_invariants(d)

    # unused credit goes back only after the node exited the NodeRegistry
    with pytest.raises(error_class("DistributorNodeNotExited")):
        d.rewards.withdraw_fee_credit(node.address)
    d.nodes.request_unbond(d.nodes.node(node.address).bonded)
    with pytest.raises(error_class("DistributorNodeNotExited")):  # exit is a timestamp: the delay must pass
        d.rewards.withdraw_fee_credit(node.address)
    _advance(anvil, d.nodes.unbonding_delay())
    d.nodes.withdraw()
    assert d.nodes.has_exited(node.address)
    assert d.ledger.last_post_block(node.address) <= d.rewards.proposal(d.rewards.current_epoch()).end_block
    before = d.token.balance_of(sponsor.address)
    assert d.rewards.withdraw_fee_credit(sponsor.address) == 600
    assert d.token.balance_of(sponsor.address) == before + 600 and d.rewards.fee_credit(node.address) == 0


# ----------------------------------------------------------------------------------------------------------------
# timelocked (real-chain) deploy
# ----------------------------------------------------------------------------------------------------------------


def test_timelocked_deploy_governs_every_contract(anvil: AnvilNode, forge_artifacts: Any) -> None:
    accounts = [Account.from_key(k) for k in anvil.dev_keys]
    deployer, safe, guardian = accounts[0], accounts[8], accounts[3]
    floor = DEVNET_TEST_CONFIG.unbonding_delay_s + DEVNET_TEST_CONFIG.challenge_window_s
    delay = floor + WINDOW
    config = dataclasses.replace(DEVNET_TEST_CONFIG, governance=safe.address, poster=accounts[2].address,
                                 guardian=guardian.address, treasury=accounts[4].address, timelock_delay_s=delay)
    dep = deploy_all(ChainClient(anvil.rpc_url, deployer), config, forge_artifacts)
    c = dep.bind(ChainClient(anvil.rpc_url, safe), forge_artifacts)
    assert c.timelock is not None
    timelock = c.timelock.address
    assert dep.roles["governance"] == timelock and dep.roles["proposer"] == safe.address
    assert dep.params["timelockDelay"] == delay and "GovernanceTimelock" in dep.contracts
    for governed in (c.assets, c.nodes, c.rewards):
        assert governed.governance() == timelock
    assert c.timelock.min_delay() == delay and c.timelock.delay_floor() == floor
    assert c.timelock.has_role("CANCELLER_ROLE", guardian.address)
    assert c.timelock.has_role("PROPOSER_ROLE", safe.address) and c.timelock.has_role("EXECUTOR_ROLE", safe.address)
    for role in ("PROPOSER_ROLE", "EXECUTOR_ROLE", "DEFAULT_ADMIN_ROLE"):
        assert not c.timelock.has_role(role, deployer.address)  # the deployer keeps no power
    assert c.timelock.has_role("DEFAULT_ADMIN_ROLE", timelock)  # self-administered

    # governance acts only through the timelock, and only after its delay
    with pytest.raises(error_class("OwnableUnauthorizedAccount")):
        c.rewards.set_shares(1000, 3000)
    op = c.timelock.operation(c.rewards, "setShares", 1000, 3000)
    c.timelock.schedule(op)
    with pytest.raises(error_class("TimelockUnexpectedOperationState")):
        c.timelock.execute(op)
    _advance(anvil, delay)
    assert c.timelock.is_ready(op)
    c.timelock.execute(op)
    assert c.rewards.shares() == (1000, 3000) and c.timelock.is_done(op)

    # N5: no delay below the floor, even after updateDelay(0) executes; the guardian cancels a hostile action
    with pytest.raises(error_class("TimelockInsufficientDelay")):
        c.timelock.schedule(c.timelock.operation(c.nodes, "setSlasher", safe.address), floor - 1)
    undelay = c.timelock.operation(c.timelock, "updateDelay", 0)
    c.timelock.schedule(undelay)
    _advance(anvil, delay)
    c.timelock.execute(undelay)
    assert c.timelock.min_delay() == floor
    hostile = c.timelock.operation(c.nodes, "setSlasher", safe.address)
    c.timelock.schedule(hostile)
    c.timelock.cancel(hostile, account=guardian)
    assert not c.timelock.is_ready(hostile) and c.nodes.slasher() == "0x" + "00" * 20


def test_real_chain_deploys_refuse_unsafe_roles() -> None:
    keys = [Account.create().address for _ in range(4)]
    gov, poster, guardian, treasury = keys
    token = Account.create().address
    floor = DeployConfig().unbonding_delay_s + DeployConfig().challenge_window_s
    safe = DeployConfig(token=token, governance=gov, poster=poster, guardian=guardian, treasury=treasury,
                        timelock_delay_s=floor)
    assert check_roles(10, keys[0], safe)["guardian"] == guardian
    with pytest.raises(DeploymentError, match="--token"):  # N7: no DevToken (the deployer would mint) off devnet
        check_roles(10, gov, dataclasses.replace(safe, token=None))
    with pytest.raises(DeploymentError, match="unbonding delay plus the challenge window"):  # N8
        check_roles(10, gov, dataclasses.replace(safe, timelock_delay_s=floor - 1))
    with pytest.raises(DeploymentError, match="TimelockController"):
        check_roles(10, gov, dataclasses.replace(safe, timelock_delay_s=None))  # real chain without a timelock
    with pytest.raises(DeploymentError, match="one key for several roles"):
        check_roles(10, gov, dataclasses.replace(safe, poster=gov, guardian=gov, treasury=gov))
    with pytest.raises(DeploymentError, match="one key for several roles"):
        check_roles(10, gov, dataclasses.replace(safe, poster=gov))
    with pytest.raises(DeploymentError, match="missing --guardian"):
        check_roles(10, gov, dataclasses.replace(safe, guardian=None))
    with pytest.raises(DeploymentError, match="unbonding delay plus the challenge window"):
        check_roles(10, gov, dataclasses.replace(safe, challenge_window_s=2 * 86400))
    with pytest.raises(DeploymentError, match="guardian must be another key"):
        check_roles(31337, gov, DeployConfig(poster=poster, guardian=poster))
