// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "../utils/Test.sol";
import {LedgerHandler} from "./LedgerHandler.sol";
import {IAttributionLedger} from "../../interfaces/IAttributionLedger.sol";

/// @notice Ledger invariants: per-node seqs are gap-free, batches are never overwritten, only active nodes post.
contract AttributionLedgerInvariantTest is Test {
    LedgerHandler private handler;

    function setUp() public {
        handler = new LedgerHandler();
        targetContract(address(handler));
        bytes4[] memory selectors = new bytes4[](10);
        selectors[0] = LedgerHandler.postValid.selector;
        selectors[1] = LedgerHandler.postInvalid.selector;
        selectors[2] = LedgerHandler.bond.selector;
        selectors[3] = LedgerHandler.unbond.selector;
        selectors[4] = LedgerHandler.slash.selector;
        selectors[5] = LedgerHandler.warp.selector;
        selectors[6] = LedgerHandler.postOversized.selector;
        selectors[7] = LedgerHandler.postUnbondAndRun.selector;
        selectors[8] = LedgerHandler.withdraw.selector;
        selectors[9] = LedgerHandler.postBadTimestamps.selector;
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    /// @dev Each node's batches, in id order, tile [0, nextSeq) without gaps or overlaps.
    function invariant_SeqGapFree() public view {
        IAttributionLedger ledger = handler.ledger();
        uint256 n = ledger.batchCount();
        for (uint256 a; a < 3; ++a) {
            address node = handler.actor(a);
            uint64 expected;
            for (uint256 id = 1; id <= n; ++id) {
                IAttributionLedger.Batch memory b = ledger.batch(id);
                if (b.node != node) continue;
                vm.assertEq(uint256(b.firstSeq), uint256(expected), "gap or overlap");
                vm.assertGt(uint256(b.count), 0);
                expected = b.firstSeq + b.count;
            }
            vm.assertEq(uint256(ledger.nextSeq(node)), uint256(expected), "nextSeq = end of last batch");
            vm.assertEq(uint256(ledger.nextSeq(node)), uint256(handler.ghostNextSeq(node)));
        }
        vm.assertEq(handler.invalidPostsAccepted(), 0, "gap, replay or zero count accepted");
    }

    /// @dev Every batch the ledger ever accepted is still stored exactly as posted.
    function invariant_BatchesNeverOverwritten() public view {
        IAttributionLedger ledger = handler.ledger();
        uint256 n = ledger.batchCount();
        vm.assertEq(n, handler.ghostBatchCount(), "batch count");
        for (uint256 id = 1; id <= n; ++id) {
            IAttributionLedger.Batch memory b = ledger.batch(id);
            IAttributionLedger.Batch memory g = handler.ghostBatch(id);
            vm.assertEq(b.root, g.root);
            vm.assertEq(b.daCommitmentHash, g.daCommitmentHash);
            vm.assertEq(b.node, g.node);
            vm.assertEq(uint256(b.firstSeq), uint256(g.firstSeq));
            vm.assertEq(uint256(b.count), uint256(g.count));
            vm.assertEq(uint256(b.postedAt), uint256(g.postedAt));
            vm.assertEq(uint256(b.firstTimestamp), uint256(g.firstTimestamp));
            vm.assertEq(uint256(b.lastTimestamp), uint256(g.lastTimestamp));
            vm.assertLe(uint256(b.lastTimestamp), uint256(b.postedAt), "records served before the post");
        }
    }

    /// @dev A post succeeds if and only if the node is active (for otherwise valid posts).
    function invariant_OnlyActiveNodesPost() public view {
        vm.assertEq(handler.inactivePosts(), 0, "inactive node posted");
        vm.assertEq(handler.validPostsRejected(), 0, "active node's valid post reverted");
        vm.assertEq(handler.invalidPostsAccepted(), 0, "gap, replay, zero or oversized batch accepted");
    }

    function invariant_BatchIdsSequential() public view {
        vm.assertEq(handler.wrongBatchId(), 0, "a post returned another id than the next one");
    }

    /// @dev Progress: valid posts by an active node were tried and none succeeded in a whole run: fail it.
    function afterInvariant() external view {
        if (handler.validPostsTried() > 0) vm.assertGt(handler.validPosts(), 0, "no valid post succeeded");
    }

    /// @dev M3: a node cannot post, unbond and take its stake out before a dispute could reach it.
    function invariant_NoUnbondAndRun() public view {
        vm.assertEq(handler.ranAway(), 0, "stake left within the dispute window of the node's last post");
    }
}
