// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {DisputesBase} from "./BatchDisputes.t.sol";
import {StandardMerkle} from "./utils/StandardMerkle.sol";
import {DisputesKit} from "./invariant/DisputesKit.sol";
import {IBatchDisputes} from "../interfaces/IBatchDisputes.sol";
import {IAttributionLedger} from "../interfaces/IAttributionLedger.sol";

/// @notice Fuzz tests of the dispute games: the due time, the slash split, chunk resolution over any payload length
/// and index, and one flipped bit anywhere failing a proof.
contract BatchDisputesFuzzTest is DisputesBase {
    /// @dev An unposted record is a fault exactly from `timestamp + MAX_POSTING_DELAY` on, never before.
    function testFuzz_OmissionFallsDueAtTheMaxPostingDelay(uint256 age) public {
        age = bound(age, 0, 30 days);
        IAttributionLedger.Record memory rec = _record(nodeA, 0, age);
        bytes memory receipt = _receipt(keyA, rec);
        vm.warp(block.timestamp + age);
        vm.prank(alice);
        if (age < disputes.MAX_POSTING_DELAY()) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IBatchDisputes.DisputesNotYetDue.selector, nodeA, 0, rec.timestamp + disputes.MAX_POSTING_DELAY()
                )
            );
            disputes.openOmission{value: OMISSION_BOND}(rec, receipt, 0);
            vm.assertEq(_stake(nodeA), STAKE);
        } else {
            disputes.openOmission{value: OMISSION_BOND}(rec, receipt, 0);
            vm.assertEq(_stake(nodeA), STAKE / 2);
        }
    }

    /// @dev The slash is SLASH_BPS of the stake, CHALLENGER_BPS of it to the challenger, the rest to the treasury, and
    /// no token is created or lost.
    function testFuzz_SlashSplit(uint256 extra, uint256 unbond) public {
        extra = bound(extra, 0, 1e30);
        if (extra > 0) _bond(nodeA, extra);
        uint256 stake = STAKE + extra;
        unbond = bound(unbond, 0, stake);
        if (unbond > 0) {
            vm.prank(nodeA);
            nodes.requestUnbond(unbond);
        }
        bytes32 la = keccak256("a");
        bytes32 lb = keccak256("b");
        bytes memory ra = _sign(keyA, nodeA, 3, la);
        bytes memory rb = _sign(keyA, nodeA, 3, lb);
        uint256 before = token.balanceOf(address(nodes));
        vm.prank(bob);
        disputes.proveEquivocation(nodeA, 3, la, ra, lb, rb);
        uint256 slashed = stake * disputes.SLASH_BPS() / 10_000;
        uint256 toBob = slashed * disputes.CHALLENGER_BPS() / 10_000;
        vm.assertEq(token.balanceOf(bob), toBob);
        vm.assertEq(token.balanceOf(treasury), slashed - toBob);
        vm.assertEq(_stake(nodeA), stake - slashed);
        vm.assertEq(before - token.balanceOf(address(nodes)), slashed, "tokens conserved");
        vm.assertGe(slashed - toBob, toBob, "the treasury share makes self-challenge a loss");
    }

    /// @dev Any chunk of any payload (1 byte to three chunks) resolves with its bytes and proof; the same call with one
    /// byte changed, or another chunk's bytes, fails.
    function testFuzz_ResolveAnyChunk(uint256 len, uint256 index, uint256 seed, uint256 flip) public {
        len = bound(len, 1, 3 * DisputesKit.CHUNK_BYTES);
        uint256 n = DisputesKit.chunkCount(len);
        index = bound(index, 0, n - 1);
        bytes memory p = DisputesKit.payload(seed, len);
        bytes memory commitment = DisputesKit.commitmentV3(p, 1);
        uint256 batchId = _postCommitment(nodeA, commitment);
        vm.prank(alice);
        // forge-lint: disable-next-line(unsafe-typecast) -- index < 3
        uint256 id = disputes.openAvailability{value: AVAILABILITY_BOND}(batchId, uint32(index));
        bytes memory chunk = DisputesKit.chunk(p, index);
        bytes32[] memory proof = DisputesKit.chunkProof(p, index);

        flip = bound(flip, 0, chunk.length * 8 - 1);
        chunk[flip / 8] = chunk[flip / 8] ^ bytes1(uint8(2 ** (flip % 8)));
        vm.expectRevert(
            // forge-lint: disable-next-line(unsafe-typecast) -- index < 3
            abi.encodeWithSelector(IBatchDisputes.DisputesBadChunkProof.selector, uint32(index), keccak256(chunk))
        );
        disputes.resolveAvailability(id, commitment, chunk, proof);
        chunk[flip / 8] = chunk[flip / 8] ^ bytes1(uint8(2 ** (flip % 8)));

        disputes.resolveAvailability(id, commitment, chunk, proof);
        vm.assertTrue(disputes.dispute(id).status == IBatchDisputes.Status.Answered);
        vm.assertEq(disputes.dispute(id).leaf, keccak256(chunk));
    }

    /// @dev One flipped bit in an omission answer's proof fails it; the right proof then answers.
    function testFuzz_RespondOmissionBitFlip(uint256 which, uint256 bit) public {
        (uint256 batchId, IAttributionLedger.Record[] memory recs, bytes32[] memory tree) = _postRecords(nodeA, 9, 80);
        which = bound(which, 0, 8);
        bytes memory receipt = _receipt(keyA, recs[which]);
        vm.prank(alice);
        uint256 id = disputes.openOmission{value: OMISSION_BOND}(recs[which], receipt, batchId);
        bytes32[] memory proof = _proof(tree, recs[which]);
        bit = bound(bit, 0, proof.length * 256 - 1);
        proof[bit / 256] = proof[bit / 256] ^ bytes32(uint256(1) << (bit % 256));
        vm.expectRevert(
            abi.encodeWithSelector(
                IBatchDisputes.DisputesLeafNotInBatch.selector, batchId, ledger.recordLeaf(recs[which])
            )
        );
        disputes.respondOmission(id, proof);
        proof[bit / 256] = proof[bit / 256] ^ bytes32(uint256(1) << (bit % 256));
        disputes.respondOmission(id, proof);
    }

    /// @dev A record in a batch's root is a commission exactly when its seq lies outside the batch's range.
    function testFuzz_MisplacedSeq(uint64 seq) public {
        _postRecords(nodeA, 4, 81); // seqs 0..3, so the next batch covers 4..7
        IAttributionLedger.Record memory rec = _record(nodeA, seq, 82);
        IAttributionLedger.Record[] memory recs = new IAttributionLedger.Record[](4);
        bytes32[] memory leaves = new bytes32[](4);
        for (uint256 i; i < 3; ++i) {
            // forge-lint: disable-next-line(unsafe-typecast) -- i < 3
            recs[i] = _record(nodeA, 4 + uint64(i), 83 + i);
            leaves[i] = ledger.recordLeaf(recs[i]);
        }
        leaves[3] = ledger.recordLeaf(rec);
        bytes32[] memory tree = StandardMerkle.build(leaves);
        uint256 batchId = _post(nodeA, 4, 4, tree[0]);
        bytes32[] memory proof = StandardMerkle.proof(tree, leaves[3]);
        if (seq >= 4 && seq < 8) {
            vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesRecordInPlace.selector, batchId, seq));
            disputes.proveMisplacedRecord(batchId, rec, proof);
            vm.assertEq(_stake(nodeA), STAKE);
        } else {
            disputes.proveMisplacedRecord(batchId, rec, proof);
            vm.assertEq(_stake(nodeA), STAKE / 2);
        }
    }

    /// @dev No key but the node's makes a receipt the games accept.
    function testFuzz_ForgedReceiptsNeverSlash(uint256 key) public {
        key = bound(key, 1, 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364140);
        vm.assume(key != keyA);
        bytes32 la = keccak256("a");
        bytes32 lb = keccak256("b");
        bytes memory ra = _sign(keyA, nodeA, 1, la);
        bytes memory forged = _sign(key, nodeA, 1, lb);
        vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesBadReceipt.selector, nodeA, 1, vm.addr(key)));
        disputes.proveEquivocation(nodeA, 1, la, ra, lb, forged);
        vm.assertEq(_stake(nodeA), STAKE);
    }
}
