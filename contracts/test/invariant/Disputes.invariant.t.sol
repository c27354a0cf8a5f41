// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "../utils/Test.sol";
import {DisputesHandler} from "./DisputesHandler.sol";

/// @notice Dispute invariants (DESIGN.md invariant 9): an honest node is never slashed whoever challenges it and
/// however, the griefer loses every bond, a liar always loses stake and never gains through its own challenger, no
/// fault is slashed twice, and no native currency or token is created or lost.
contract DisputesInvariantTest is Test {
    DisputesHandler private handler;

    function setUp() public {
        vm.warp(1_700_000_000);
        handler = new DisputesHandler();
        targetContract(address(handler));
        bytes4[] memory selectors = new bytes4[](13);
        selectors[0] = DisputesHandler.honestServe.selector;
        selectors[1] = DisputesHandler.honestPost.selector;
        selectors[2] = DisputesHandler.honestAnswer.selector;
        selectors[3] = DisputesHandler.griefOmission.selector;
        selectors[4] = DisputesHandler.griefAvailability.selector;
        selectors[5] = DisputesHandler.griefInstant.selector;
        selectors[6] = DisputesHandler.liarMisplaces.selector;
        selectors[7] = DisputesHandler.liarEquivocates.selector;
        selectors[8] = DisputesHandler.liarWithholds.selector;
        selectors[9] = DisputesHandler.liarOmits.selector;
        selectors[10] = DisputesHandler.settle.selector;
        selectors[11] = DisputesHandler.warp.selector;
        selectors[12] = DisputesHandler.withdrawAll.selector;
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    /// @dev The honest node keeps its whole stake, and every attack on it was refused.
    function invariant_HonestNodeNeverSlashed() public view {
        vm.assertEq(handler.stakeOf(handler.honest()), handler.HONEST_STAKE(), "honest node slashed");
        vm.assertEq(handler.wronglyAccepted(), 0, "an attack on the honest node or a valid proof went wrong");
        vm.assertEq(handler.honestMissedDeadline(), 0, "the honest node's process missed a deadline");
        vm.assertEq(handler.griefRefused(), 0, "a well-formed challenge could not be opened");
    }

    /// @dev Every griefer bond of an answered challenge went to the honest node; the griefer is owed nothing.
    function invariant_GrieferLosesEveryBond() public view {
        vm.assertEq(handler.disputes().owed(handler.griefer()), 0, "griefer refunded");
        vm.assertEq(handler.honestBondsEarned(), handler.grieferBondsLost());
        vm.assertEq(handler.handlerTokenBalance(handler.griefer()), 0, "griefer earned stake");
    }

    /// @dev The liar never gains: its stake plus what its own challenger earned never exceeds what it bonded, and
    /// stays strictly below once it was slashed.
    function invariant_LyingNeverPays() public view {
        uint256 kept = handler.stakeOf(handler.liar()) + handler.handlerTokenBalance(handler.sock());
        vm.assertLe(kept, handler.LIAR_STAKE(), "the liar gained");
        if (handler.liarSlashes() > 0) vm.assertTrue(kept < handler.LIAR_STAKE(), "a slashed liar kept everything");
        vm.assertEq(handler.doubleSlashes(), 0, "a fault was slashed twice");
    }

    /// @dev Native currency: the contract holds exactly what it owes plus the bonds of open challenges. Tokens: what
    /// left the registry went to challengers and the treasury.
    function invariant_Conservation() public view {
        vm.assertEq(
            address(handler.disputes()).balance, handler.totalOwed() + handler.ghostOpenBonds(), "native currency"
        );
        vm.assertEq(
            handler.handlerTokenBalance(address(handler.registry())) + handler.handlerTokenBalance(handler.watcher())
                + handler.handlerTokenBalance(handler.sock()) + handler.handlerTokenBalance(handler.treasury()),
            handler.HONEST_STAKE() + handler.LIAR_STAKE(),
            "tokens"
        );
    }

    /// @dev Progress: each game was played and did something in a run where it was tried.
    function afterInvariant() external view {
        if (handler.griefTried() > 0) vm.assertGt(handler.griefOpened(), 0, "no griefer challenge opened");
        if (handler.answerRounds() > 0) vm.assertGt(handler.honestAnswered(), 0, "no griefer challenge was answered");
        if (handler.attacksTried() > 0) vm.assertGt(handler.attacksRefused(), 0, "no attack was tried");
        if (handler.liarLiesTried() > 0) vm.assertGt(handler.liarSlashes(), 0, "no lie was slashed");
        if (handler.settleTried() > 0) vm.assertGt(handler.settled(), 0, "no expired challenge settled");
    }
}
