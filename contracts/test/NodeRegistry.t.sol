// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

import {Fixture} from "./utils/Fixture.sol";
import {NodeRegistry} from "../src/NodeRegistry.sol";
import {FeeOnTransferToken} from "./utils/FeeOnTransferToken.sol";
import {Governed} from "../src/utils/Governed.sol";
import {INodeRegistry} from "../interfaces/INodeRegistry.sol";

contract NodeRegistryTest is Fixture {
    /*//////////////////////////////////////////////////////////////
                               CONSTRUCTOR
    //////////////////////////////////////////////////////////////*/

    function test_Constructor_SetsParameters() public view {
        vm.assertEq(address(nodes.stakeToken()), address(token));
        vm.assertEq(nodes.minBond(), MIN_BOND);
        vm.assertEq(uint256(nodes.unbondingDelay()), UNBONDING_DELAY);
        vm.assertEq(nodes.governance(), governance);
        vm.assertEq(nodes.owner(), governance);
    }

    function test_RevertWhen_ConstructorZeroToken() public {
        vm.expectRevert(INodeRegistry.NodeRegistryZeroAddress.selector);
        new NodeRegistry(IERC20(address(0)), MIN_BOND, UNBONDING_DELAY, governance);
    }

    function test_RevertWhen_ConstructorZeroGovernance() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableInvalidOwner.selector, address(0)));
        new NodeRegistry(token, MIN_BOND, UNBONDING_DELAY, address(0));
    }

    function test_RevertWhen_ConstructorZeroMinBond() public {
        vm.expectRevert(INodeRegistry.NodeRegistryZeroMinBond.selector);
        new NodeRegistry(token, 0, UNBONDING_DELAY, governance);
    }

    function test_RevertWhen_ConstructorDelayTooShort() public {
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NodeRegistryDelayTooShort.selector, 0, 14 days));
        new NodeRegistry(token, MIN_BOND, 0, governance);
    }

    function test_RevertWhen_ConstructorDelayTooLong() public {
        uint64 tooLong = 365 days + 1;
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NodeRegistryDelayTooLong.selector, tooLong, 365 days));
        new NodeRegistry(token, MIN_BOND, tooLong, governance);
    }

    /*//////////////////////////////////////////////////////////////
                                  BOND
    //////////////////////////////////////////////////////////////*/

    function test_Bond_PullsStakeAndActivates() public {
        vm.assertFalse(nodes.isActive(nodeA));
        _bond(nodeA, MIN_BOND - 1);
        vm.assertFalse(nodes.isActive(nodeA), "below minBond");
        _bond(nodeA, 1);
        vm.assertTrue(nodes.isActive(nodeA), "at minBond");
        vm.assertEq(nodes.node(nodeA).bonded, MIN_BOND);
        vm.assertEq(token.balanceOf(address(nodes)), MIN_BOND);
        vm.assertEq(token.balanceOf(nodeA), 0);
    }

    function test_Bond_EmitsBonded() public {
        token.mint(nodeA, 5);
        vm.startPrank(nodeA);
        token.approve(address(nodes), 5);
        nodes.bond(2);
        vm.expectEmit(address(nodes));
        emit INodeRegistry.Bonded(nodeA, 3, 5);
        nodes.bond(3);
        vm.stopPrank();
    }

    function test_RevertWhen_BondZeroAmount() public {
        vm.expectRevert(INodeRegistry.NodeRegistryZeroAmount.selector);
        vm.prank(nodeA);
        nodes.bond(0);
    }

    function test_RevertWhen_BondWithoutAllowance() public {
        token.mint(nodeA, MIN_BOND);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(nodes), 0, MIN_BOND)
        );
        vm.prank(nodeA);
        nodes.bond(MIN_BOND);
    }

    /*//////////////////////////////////////////////////////////////
                                UNBONDING
    //////////////////////////////////////////////////////////////*/

    function test_RequestUnbond_MovesStakeAndDeactivates() public {
        _bond(nodeA, MIN_BOND + 10);
        vm.expectEmit(address(nodes));
        emit INodeRegistry.UnbondRequested(nodeA, 11, 11, uint64(block.timestamp) + UNBONDING_DELAY);
        vm.prank(nodeA);
        nodes.requestUnbond(11);
        INodeRegistry.Node memory n = nodes.node(nodeA);
        vm.assertEq(n.bonded, MIN_BOND - 1);
        vm.assertEq(n.unbonding, 11);
        vm.assertEq(uint256(n.unbondableAt), block.timestamp + UNBONDING_DELAY);
        vm.assertFalse(nodes.isActive(nodeA));
    }

    function test_RequestUnbond_RestartsDelay() public {
        _bond(nodeA, MIN_BOND);
        vm.prank(nodeA);
        nodes.requestUnbond(1);
        vm.warp(block.timestamp + 3 days);
        vm.prank(nodeA);
        nodes.requestUnbond(2);
        INodeRegistry.Node memory n = nodes.node(nodeA);
        vm.assertEq(n.unbonding, 3);
        vm.assertEq(uint256(n.unbondableAt), block.timestamp + UNBONDING_DELAY);
    }

    function test_RevertWhen_RequestUnbondZeroAmount() public {
        vm.expectRevert(INodeRegistry.NodeRegistryZeroAmount.selector);
        vm.prank(nodeA);
        nodes.requestUnbond(0);
    }

    function test_RevertWhen_RequestUnbondMoreThanBonded() public {
        _bond(nodeA, 5);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NodeRegistryInsufficientBond.selector, nodeA, 6, 5));
        vm.prank(nodeA);
        nodes.requestUnbond(6);
    }

    function test_Withdraw_AfterDelay() public {
        _bond(nodeA, MIN_BOND);
        vm.prank(nodeA);
        nodes.requestUnbond(40);
        vm.warp(block.timestamp + UNBONDING_DELAY);
        vm.expectEmit(address(nodes));
        emit INodeRegistry.Withdrawn(nodeA, 40);
        vm.prank(nodeA);
        uint256 amount = nodes.withdraw();
        vm.assertEq(amount, 40);
        vm.assertEq(token.balanceOf(nodeA), 40);
        INodeRegistry.Node memory n = nodes.node(nodeA);
        vm.assertEq(n.unbonding, 0);
        vm.assertEq(uint256(n.unbondableAt), 0);
        vm.assertEq(n.bonded, MIN_BOND - 40);
    }

    function test_RevertWhen_WithdrawNothingToWithdraw() public {
        _bond(nodeA, MIN_BOND);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NodeRegistryNothingToWithdraw.selector, nodeA));
        vm.prank(nodeA);
        nodes.withdraw();
    }

    function test_RevertWhen_WithdrawBeforeDelay() public {
        _bond(nodeA, MIN_BOND);
        vm.prank(nodeA);
        nodes.requestUnbond(1);
        uint64 at = uint64(block.timestamp) + UNBONDING_DELAY;
        vm.warp(at - 1);
        vm.expectRevert(
            abi.encodeWithSelector(INodeRegistry.NodeRegistryUnbondingNotElapsed.selector, nodeA, at, at - 1)
        );
        vm.prank(nodeA);
        nodes.withdraw();
    }

    /*//////////////////////////////////////////////////////////////
                                  SLASH
    //////////////////////////////////////////////////////////////*/

    function test_Slash_TakesBondedFirst() public {
        _bond(nodeA, MIN_BOND);
        vm.prank(nodeA);
        nodes.requestUnbond(30);
        vm.expectEmit(address(nodes));
        emit INodeRegistry.Slashed(nodeA, 50, treasury);
        vm.prank(slasher);
        nodes.slash(nodeA, 50, treasury);
        INodeRegistry.Node memory n = nodes.node(nodeA);
        vm.assertEq(n.bonded, MIN_BOND - 80);
        vm.assertEq(n.unbonding, 30);
        vm.assertEq(token.balanceOf(treasury), 50);
    }

    function test_Slash_ReachesUnbondingStake() public {
        _bond(nodeA, MIN_BOND);
        vm.prank(nodeA);
        nodes.requestUnbond(MIN_BOND - 10); // trying to escape
        vm.prank(slasher);
        nodes.slash(nodeA, 15, treasury);
        INodeRegistry.Node memory n = nodes.node(nodeA);
        vm.assertEq(n.bonded, 0);
        vm.assertEq(n.unbonding, MIN_BOND - 15);
        vm.assertTrue(n.unbondableAt != 0);
        vm.prank(slasher);
        nodes.slash(nodeA, MIN_BOND - 15, treasury);
        n = nodes.node(nodeA);
        vm.assertEq(n.unbonding, 0);
        vm.assertEq(uint256(n.unbondableAt), 0, "cleared with the last unbonding stake");
        vm.assertEq(token.balanceOf(treasury), MIN_BOND);
    }

    /// @dev N5: only the slasher slashes; governance cannot, and before a slasher is set nobody can.
    function test_RevertWhen_SlashNotSlasher() public {
        _bond(nodeA, MIN_BOND);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NodeRegistryNotSlasher.selector, alice));
        vm.prank(alice);
        nodes.slash(nodeA, 1, alice);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NodeRegistryNotSlasher.selector, governance));
        vm.prank(governance);
        nodes.slash(nodeA, 1, governance);
        NodeRegistry fresh = new NodeRegistry(token, MIN_BOND, UNBONDING_DELAY, governance);
        vm.assertEq(fresh.slasher(), address(0));
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NodeRegistryNotSlasher.selector, address(0)));
        vm.prank(address(0));
        fresh.slash(nodeA, 1, governance);
    }

    function test_SetSlasher() public {
        vm.expectEmit(address(nodes));
        emit INodeRegistry.SlasherChanged(slasher, alice);
        vm.prank(governance);
        nodes.setSlasher(alice);
        vm.assertEq(nodes.slasher(), alice);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        vm.prank(alice);
        nodes.setSlasher(alice);
    }

    /// @dev N1: a slash that takes the whole bond starts the exit clock; it never makes the node exited at once.
    function test_Slash_ToZeroIsNoExit() public {
        _bond(nodeA, MIN_BOND);
        vm.prank(slasher);
        nodes.slash(nodeA, MIN_BOND, treasury);
        vm.assertFalse(nodes.hasExited(nodeA), "slashed, not exited");
        vm.assertEq(uint256(nodes.node(nodeA).exitAt), block.timestamp + UNBONDING_DELAY);
        vm.warp(block.timestamp + UNBONDING_DELAY);
        vm.assertTrue(nodes.hasExited(nodeA));
        _bond(nodeA, MIN_BOND);
        vm.assertFalse(nodes.hasExited(nodeA), "bonded again");
        vm.assertEq(uint256(nodes.node(nodeA).exitAt), 0);
    }

    function test_RevertWhen_SlashZeroAmount() public {
        vm.expectRevert(INodeRegistry.NodeRegistryZeroAmount.selector);
        vm.prank(slasher);
        nodes.slash(nodeA, 0, treasury);
    }

    function test_RevertWhen_SlashToZeroAddress() public {
        _bond(nodeA, MIN_BOND);
        vm.expectRevert(INodeRegistry.NodeRegistryZeroAddress.selector);
        vm.prank(slasher);
        nodes.slash(nodeA, 1, address(0));
    }

    function test_RevertWhen_SlashExceedsStake() public {
        _bond(nodeA, 10);
        vm.prank(nodeA);
        nodes.requestUnbond(4);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NodeRegistrySlashExceedsStake.selector, nodeA, 11, 10));
        vm.prank(slasher);
        nodes.slash(nodeA, 11, treasury);
    }

    /*//////////////////////////////////////////////////////////////
                               GOVERNANCE
    //////////////////////////////////////////////////////////////*/

    function test_SetMinBond() public {
        _bond(nodeA, MIN_BOND);
        vm.expectEmit(address(nodes));
        emit INodeRegistry.MinBondChanged(MIN_BOND, MIN_BOND + 1);
        vm.prank(governance);
        nodes.setMinBond(MIN_BOND + 1);
        vm.assertEq(nodes.minBond(), MIN_BOND + 1);
        vm.assertFalse(nodes.isActive(nodeA), "raised above the node's bond");
    }

    function test_RevertWhen_SetMinBondZero() public {
        vm.expectRevert(INodeRegistry.NodeRegistryZeroMinBond.selector);
        vm.prank(governance);
        nodes.setMinBond(0);
    }

    function test_RevertWhen_SetMinBondNotGovernance() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        vm.prank(alice);
        nodes.setMinBond(1);
    }

    function test_SetUnbondingDelay() public {
        vm.expectEmit(address(nodes));
        emit INodeRegistry.UnbondingDelayChanged(UNBONDING_DELAY, 21 days);
        vm.prank(governance);
        nodes.setUnbondingDelay(21 days);
        vm.assertEq(uint256(nodes.unbondingDelay()), 21 days);
        _bond(nodeA, MIN_BOND);
        vm.prank(nodeA);
        nodes.requestUnbond(1);
        vm.assertEq(uint256(nodes.node(nodeA).unbondableAt), block.timestamp + 21 days);
    }

    /// @dev M3: governance cannot shorten the delay below the floor either.
    function test_RevertWhen_SetUnbondingDelayTooShort() public {
        vm.expectRevert(
            abi.encodeWithSelector(INodeRegistry.NodeRegistryDelayTooShort.selector, uint64(14 days - 1), 14 days)
        );
        vm.prank(governance);
        nodes.setUnbondingDelay(14 days - 1);
    }

    /// @dev M3: post, request to unbond and withdraw in one block fails; the stake stays slashable until withdrawn,
    /// even after the delay has passed.
    function test_UnbondAndRun_StakeStaysSlashable() public {
        _bond(nodeA, MIN_BOND);
        vm.startPrank(nodeA);
        ledger.postBatch(0, 1, 0, 0, keccak256("root"), hex"010000d0");
        nodes.requestUnbond(MIN_BOND);
        uint64 at = uint64(block.timestamp) + UNBONDING_DELAY;
        vm.expectRevert(
            abi.encodeWithSelector(
                INodeRegistry.NodeRegistryUnbondingNotElapsed.selector, nodeA, at, uint64(block.timestamp)
            )
        );
        nodes.withdraw();
        vm.stopPrank();
        vm.assertFalse(nodes.hasExited(nodeA), "unbonding stake is still stake");
        vm.warp(at + 1 days);
        vm.prank(slasher);
        nodes.slash(nodeA, MIN_BOND, treasury);
        vm.assertEq(token.balanceOf(treasury), MIN_BOND);
        vm.assertTrue(nodes.hasExited(nodeA));
    }

    function test_HasExited() public {
        vm.assertTrue(nodes.hasExited(nodeA), "never bonded");
        _bond(nodeA, MIN_BOND);
        vm.assertFalse(nodes.hasExited(nodeA));
        vm.startPrank(nodeA);
        nodes.requestUnbond(MIN_BOND);
        vm.assertFalse(nodes.hasExited(nodeA));
        vm.assertEq(uint256(nodes.node(nodeA).exitAt), block.timestamp + UNBONDING_DELAY);
        vm.warp(block.timestamp + UNBONDING_DELAY - 1);
        vm.assertFalse(nodes.hasExited(nodeA), "exit is a timestamp");
        vm.warp(block.timestamp + 1);
        vm.assertTrue(nodes.hasExited(nodeA));
        nodes.withdraw();
        vm.stopPrank();
        vm.assertTrue(nodes.hasExited(nodeA));
    }

    /// @dev L5: with a fee-on-transfer token the node is credited what arrived, so the registry stays solvent.
    function test_Bond_CreditsWhatArrived() public {
        FeeOnTransferToken fee = new FeeOnTransferToken();
        NodeRegistry r = new NodeRegistry(fee, 1, UNBONDING_DELAY, governance);
        fee.mint(nodeA, 1000);
        vm.startPrank(nodeA);
        fee.approve(address(r), 1000);
        vm.expectEmit(address(r));
        emit INodeRegistry.Bonded(nodeA, 990, 990);
        vm.assertEq(r.bond(1000), 990);
        r.requestUnbond(990);
        vm.warp(block.timestamp + UNBONDING_DELAY);
        r.withdraw();
        vm.stopPrank();
        vm.assertEq(r.node(nodeA).bonded, 0);
        vm.assertEq(fee.balanceOf(address(r)), 0, "paid out exactly what it held");
    }

    function testFuzz_Bond_CreditsWhatArrived(uint256 amount) public {
        amount = bound(amount, 100, 1e30);
        FeeOnTransferToken fee = new FeeOnTransferToken();
        NodeRegistry r = new NodeRegistry(fee, 1, UNBONDING_DELAY, governance);
        fee.mint(nodeA, amount);
        vm.startPrank(nodeA);
        fee.approve(address(r), amount);
        uint256 credited = r.bond(amount);
        vm.stopPrank();
        vm.assertEq(credited, amount - amount / 100);
        vm.assertEq(r.node(nodeA).bonded, fee.balanceOf(address(r)));
    }

    function test_RevertWhen_SetUnbondingDelayTooLong() public {
        vm.expectRevert(
            abi.encodeWithSelector(INodeRegistry.NodeRegistryDelayTooLong.selector, uint64(366 days), 365 days)
        );
        vm.prank(governance);
        nodes.setUnbondingDelay(366 days);
    }

    function test_RevertWhen_SetUnbondingDelayNotGovernance() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        vm.prank(alice);
        nodes.setUnbondingDelay(1);
    }

    function test_GovernanceTransfer_TwoStep() public {
        vm.prank(governance);
        nodes.transferOwnership(alice);
        vm.assertEq(nodes.governance(), governance, "not before acceptance");
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, bob));
        vm.prank(bob);
        nodes.acceptOwnership();
        vm.prank(alice);
        nodes.acceptOwnership();
        vm.assertEq(nodes.governance(), alice);
        vm.prank(alice);
        nodes.setMinBond(7);
        vm.assertEq(nodes.minBond(), 7);
    }

    function test_RevertWhen_RenounceGovernance() public {
        vm.expectRevert(Governed.GovernanceRenounceDisabled.selector);
        vm.prank(governance);
        nodes.renounceOwnership();
        vm.assertEq(nodes.governance(), governance);
    }

    /*//////////////////////////////////////////////////////////////
                                  FUZZ
    //////////////////////////////////////////////////////////////*/

    /// @dev Withdrawal succeeds exactly from `unbondableAt` on.
    function testFuzz_Withdraw_OnlyAfterDelay(uint256 dt) public {
        dt = bound(dt, 0, 2 * uint256(UNBONDING_DELAY));
        _bond(nodeA, MIN_BOND);
        vm.prank(nodeA);
        nodes.requestUnbond(MIN_BOND);
        uint64 at = uint64(block.timestamp) + UNBONDING_DELAY;
        vm.warp(block.timestamp + dt);
        if (block.timestamp < at) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    INodeRegistry.NodeRegistryUnbondingNotElapsed.selector, nodeA, at, uint64(block.timestamp)
                )
            );
        }
        vm.prank(nodeA);
        nodes.withdraw();
        vm.assertEq(token.balanceOf(nodeA), block.timestamp < at ? 0 : MIN_BOND);
    }

    /// @dev isActive tracks bonded ≥ minBond, and the registry always holds exactly bonded + unbonding.
    function testFuzz_StakeAccounting(uint256 bondAmt, uint256 unbondAmt, uint256 slashAmt) public {
        bondAmt = bound(bondAmt, 1, 1e30);
        unbondAmt = bound(unbondAmt, 0, bondAmt);
        slashAmt = bound(slashAmt, 0, bondAmt);
        _bond(nodeA, bondAmt);
        if (unbondAmt > 0) {
            vm.prank(nodeA);
            nodes.requestUnbond(unbondAmt);
        }
        if (slashAmt > 0) {
            vm.prank(slasher);
            nodes.slash(nodeA, slashAmt, treasury);
        }
        INodeRegistry.Node memory n = nodes.node(nodeA);
        vm.assertEq(n.bonded + n.unbonding, bondAmt - slashAmt, "stake conserved");
        vm.assertEq(token.balanceOf(address(nodes)), n.bonded + n.unbonding, "registry holds the stake");
        vm.assertEq(nodes.isActive(nodeA), n.bonded >= MIN_BOND);
        vm.assertEq(n.bonded, unbondAmt + slashAmt <= bondAmt ? bondAmt - unbondAmt - slashAmt : 0);
    }
}
