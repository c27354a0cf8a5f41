// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

import {Fixture} from "./utils/Fixture.sol";
import {StandardMerkle} from "./utils/StandardMerkle.sol";
import {GovernanceTimelock} from "../src/GovernanceTimelock.sol";
import {IAssetRegistry} from "../interfaces/IAssetRegistry.sol";
import {IAttributionLedger} from "../interfaces/IAttributionLedger.sol";
import {INodeRegistry} from "../interfaces/INodeRegistry.sol";
import {IRewardDistributor} from "../interfaces/IRewardDistributor.sol";

/// @notice Issue 21's attacker tests. Each began as a proof of concept that passed on the v2 contracts (the attack
/// worked: `FindingsV2PoCTest` in the commit "test: issue 21 attacker PoCs against the v2 contracts") and now
/// asserts that the attack fails on v3.
contract FindingsV3Test is Fixture {
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

    /// @dev Open, page and seal `epoch` ending at the previous block with one debit of nodeA.
    function _propose(uint64 epoch, uint256 total, uint256 debit) private {
        bytes32 root = _root(total);
        vm.roll(block.number + 1);
        vm.startPrank(poster);
        distributor.proposeRoot(epoch, uint64(block.number - 1), root, total, "");
        distributor.addDebits(epoch, _one(nodeA), _one(debit));
        distributor.sealRoot(epoch);
        vm.stopPrank();
    }

    function _bondPostDeposit() private {
        _bond(nodeA, MIN_BOND);
        _post(nodeA, 0, 10, keccak256("r"));
        _deposit(nodeA, 1000);
    }

    /// N1: a slash to zero starts the exit clock, and even after it the credit stays until a settled epoch paid
    /// the node's last batch.
    function test_N1_SlashToZeroKeepsCredit() public {
        _bondPostDeposit();
        uint64 postBlock = uint64(block.number);
        vm.prank(slasher);
        nodes.slash(nodeA, MIN_BOND, treasury);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorNodeNotExited.selector, nodeA));
        vm.prank(nodeA);
        distributor.withdrawFeeCredit(nodeA);
        vm.warp(block.timestamp + UNBONDING_DELAY);
        vm.expectRevert(
            abi.encodeWithSelector(IRewardDistributor.DistributorCreditLocked.selector, nodeA, postBlock, 0)
        );
        vm.prank(nodeA);
        distributor.withdrawFeeCredit(nodeA);
        _propose(1, 800, 800);
        vm.warp(block.timestamp + WINDOW);
        vm.prank(nodeA);
        vm.assertEq(distributor.withdrawFeeCredit(nodeA), 200, "only what its batches did not use");
    }

    /// N1: an exited node cannot withdraw ahead of the proposal that debits its last batch; the proposal passes.
    function test_N1_WithdrawCannotFrontRunProposal() public {
        _bondPostDeposit();
        vm.startPrank(nodeA);
        nodes.requestUnbond(MIN_BOND);
        vm.warp(block.timestamp + UNBONDING_DELAY);
        nodes.withdraw();
        vm.expectRevert();
        distributor.withdrawFeeCredit(nodeA);
        vm.stopPrank();
        _propose(1, 800, 800);
        vm.assertEq(distributor.proposal(1).debited, 800);
    }

    /// N1: a veto after the exit releases the debit, but the credit stays locked until the epoch is proposed again.
    function test_N1_VetoAfterExitKeepsDebitOwed() public {
        _bondPostDeposit();
        _propose(1, 800, 800);
        vm.prank(slasher);
        nodes.slash(nodeA, MIN_BOND, treasury);
        vm.prank(guardian);
        distributor.vetoRoot(1);
        distributor.releaseDebits(1, 0, _one(nodeA), _one(800));
        vm.warp(block.timestamp + UNBONDING_DELAY);
        vm.expectRevert();
        vm.prank(nodeA);
        distributor.withdrawFeeCredit(nodeA);
        _propose(1, 800, 800);
        vm.warp(block.timestamp + WINDOW);
        vm.prank(nodeA);
        vm.assertEq(distributor.withdrawFeeCredit(nodeA), 200);
        vm.assertEq(distributor.totalDebited(), 800, "the owed 800 stayed for the contributors");
    }

    /// N2: 1,000 paying nodes: five pages of 200, each a bounded transaction; the epoch seals and pays.
    function test_N2_ThousandPayingNodes() public {
        uint256 count = 1000;
        address[] memory all = new address[](count);
        for (uint256 i; i < count; ++i) {
            // forge-lint: disable-next-line(unsafe-typecast)
            all[i] = address(uint160(0x10000 + i)); // i < 1000: no truncation
            _deposit(all[i], 3);
        }
        bytes32 root = _root(count * 2);
        vm.roll(block.number + 1);
        vm.startPrank(poster);
        distributor.proposeRoot(1, uint64(block.number - 1), root, count * 2, "");
        uint256 page = distributor.MAX_PAGE_NODES();
        uint256 maxGas;
        for (uint256 start; start < count; start += page) {
            address[] memory ns = new address[](page);
            uint256[] memory ds = new uint256[](page);
            for (uint256 i; i < page; ++i) {
                ns[i] = all[start + i];
                ds[i] = 2;
            }
            uint256 before = gasleft();
            distributor.addDebits(1, ns, ds);
            uint256 used = before - gasleft();
            if (used > maxGas) maxGas = used;
        }
        distributor.sealRoot(1);
        vm.stopPrank();
        vm.assertLe(maxGas, 10_000_000, "a page fits a third of an OP block");
        vm.assertEq(uint256(distributor.proposal(1).pages), 5);
        vm.warp(block.timestamp + WINDOW);
        vm.assertEq(distributor.currentRoot(), root);
        vm.assertEq(distributor.feeCredit(all[999]), 1);
    }

    /// N3: epochs are consecutive: 2^64-1 is refused, and a vetoed epoch is proposed again under its number.
    function test_N3_EpochsAreConsecutive() public {
        bytes32 root = _root(0);
        vm.roll(block.number + 1);
        vm.prank(poster);
        vm.expectRevert(
            abi.encodeWithSelector(IRewardDistributor.DistributorEpochNotNext.selector, type(uint64).max, uint64(1))
        );
        distributor.proposeRoot(type(uint64).max, uint64(block.number - 1), root, 0, "");
        _deposit(nodeA, 10);
        _propose(1, 5, 5);
        vm.prank(guardian);
        distributor.vetoRoot(1);
        distributor.releaseDebits(1, 0, _one(nodeA), _one(5));
        _propose(1, 5, 5);
        vm.warp(block.timestamp + WINDOW);
        _propose(2, 7, 2);
        vm.assertEq(uint256(distributor.latestEpoch()), 2);
    }

    /// N4: a deposit after the epoch's end block changes nothing: the rule debits the credit at that block.
    function test_N4_DepositAfterEndBlockChangesNothing() public {
        _deposit(nodeA, 500);
        uint64 end = uint64(block.number);
        uint256 readByPoster = distributor.creditAt(nodeA, end);
        vm.roll(block.number + 1);
        _deposit(nodeA, 1); // the attacker's wei, between the poster's read and its proposal
        vm.assertEq(distributor.creditAt(nodeA, end), readByPoster, "the epoch's credit did not move");
        vm.assertEq(distributor.feeCredit(nodeA), 501);
        bytes32 root = _root(500);
        vm.roll(block.number + 1);
        vm.startPrank(poster);
        distributor.proposeRoot(1, end, root, 500, "");
        vm.expectRevert(
            abi.encodeWithSelector(IRewardDistributor.DistributorInsufficientCredit.selector, nodeA, 501, 500)
        );
        distributor.addDebits(1, _one(nodeA), _one(501));
        distributor.addDebits(1, _one(nodeA), _one(500));
        distributor.sealRoot(1);
        vm.stopPrank();
        vm.assertEq(distributor.feeCredit(nodeA), 1, "the late wei counts from the next epoch");
    }

    /// N5: governance cannot slash; the timelock's delay never drops below unbonding delay + challenge window, and
    /// the guardian cancels scheduled operations.
    function test_N5_GovernanceCannotSlashOrUndelay() public {
        _bond(nodeA, MIN_BOND);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NodeRegistryNotSlasher.selector, governance));
        vm.prank(governance);
        nodes.slash(nodeA, MIN_BOND, governance);

        address[] memory gov = _one(governance);
        GovernanceTimelock tl = new GovernanceTimelock(2 days, gov, gov, guardian);
        tl.bindFloor(nodes, distributor);
        uint256 floor = UNBONDING_DELAY + WINDOW;
        vm.assertEq(tl.delayFloor(), floor);
        vm.assertEq(tl.getMinDelay(), floor);
        bytes memory call = abi.encodeCall(TimelockController.updateDelay, (0));
        vm.startPrank(governance);
        vm.expectRevert(abi.encodeWithSelector(TimelockController.TimelockInsufficientDelay.selector, 2 days, floor));
        tl.schedule(address(tl), 0, call, bytes32(0), bytes32(0), 2 days);
        tl.schedule(address(tl), 0, call, bytes32(0), bytes32(0), floor);
        vm.warp(block.timestamp + floor);
        tl.execute(address(tl), 0, call, bytes32(0), bytes32(0));
        vm.stopPrank();
        vm.assertEq(tl.getMinDelay(), floor, "the delay never drops below the floor");

        bytes memory slashTo = abi.encodeCall(INodeRegistry.setSlasher, (governance));
        vm.prank(governance);
        tl.schedule(address(nodes), 0, slashTo, bytes32(0), bytes32(0), floor);
        bytes32 id = tl.hashOperation(address(nodes), 0, slashTo, bytes32(0), bytes32(0));
        vm.prank(guardian);
        tl.cancel(id);
        vm.assertFalse(tl.isOperation(id), "the guardian cancelled it");
        vm.expectRevert(GovernanceTimelock.TimelockAlreadyBound.selector);
        tl.bindFloor(nodes, distributor);
    }

    /// N6: a batch's header bounds its records' timestamps (ordered per node, not after the posting block).
    function test_N6_HeaderBoundsRecordTime() public {
        _bond(nodeA, MIN_BOND);
        uint64 t = uint64(block.timestamp);
        vm.startPrank(nodeA);
        ledger.postBatch(0, 1, t - 10, t, keccak256("r"), hex"01");
        vm.expectRevert(abi.encodeWithSelector(IAttributionLedger.LedgerTimestampBeforePrevious.selector, t - 5, t));
        ledger.postBatch(1, 1, t - 5, t, keccak256("r"), hex"01");
        vm.expectRevert(abi.encodeWithSelector(IAttributionLedger.LedgerTimestampInFuture.selector, t + 60, t));
        ledger.postBatch(1, 1, t, t + 60, keccak256("r"), hex"01");
        vm.stopPrank();
    }

    /// N9: accepting an asset cancels the seller's pending change; the buyer gets the terms it saw.
    function test_N9_TransferCancelsPendingChange() public {
        assets.registerBaseModel(MODEL, "");
        vm.startPrank(alice);
        bytes32 id = assets.registerAdapter(keccak256("files"), MODEL, new bytes32[](0), new uint16[](0), 1, "");
        assets.transferAssetOwnership(IAssetRegistry.AssetKind.Adapter, id, bob);
        uint64 at = assets.schedulePrice(id, MAX_PRICE);
        vm.stopPrank();
        vm.expectEmit(address(assets));
        emit IAssetRegistry.AdapterChangeCancelled(id, at);
        vm.prank(bob);
        assets.acceptAssetOwnership(IAssetRegistry.AssetKind.Adapter, id);
        vm.warp(block.timestamp + CHANGE_DELAY);
        vm.assertEq(assets.adapter(id).pricePerMTokens, 1, "the seller's price never reached the buyer");
    }

    /// N9, datasets: the same for a pending contributor change.
    function test_N9_TransferCancelsPendingDatasetChange() public {
        vm.startPrank(alice);
        address[] memory c = _one(alice);
        uint16[] memory w = new uint16[](1);
        w[0] = 10_000;
        bytes32 id = assets.registerDataset(keccak256("key"), c, w, "");
        assets.transferAssetOwnership(IAssetRegistry.AssetKind.Dataset, id, bob);
        assets.scheduleDatasetChange(id, _one(alice), w);
        vm.stopPrank();
        vm.prank(bob);
        assets.acceptAssetOwnership(IAssetRegistry.AssetKind.Dataset, id);
        vm.assertEq(assets.pendingDatasetChange(id).effectiveAt, 0, "no pending change survives the transfer");
    }
}
