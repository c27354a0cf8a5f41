// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Fixture} from "./utils/Fixture.sol";
import {StandardMerkle} from "./utils/StandardMerkle.sol";
import {DisputesKit, VmDisputes} from "./invariant/DisputesKit.sol";
import {BatchDisputes} from "../src/BatchDisputes.sol";
import {IBatchDisputes} from "../interfaces/IBatchDisputes.sol";
import {IAttributionLedger} from "../interfaces/IAttributionLedger.sol";
import {INodeRegistry} from "../interfaces/INodeRegistry.sol";

/// @dev Shared set-up of the dispute suites: the system from Fixture with BatchDisputes as the only slasher, nodes
/// with known keys, receipts signed with `vm.sign`, and posting helpers for record batches and v3 payloads.
abstract contract DisputesBase is Fixture {
    VmDisputes internal constant vmx = VmDisputes(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);

    uint96 internal constant OMISSION_BOND = 0.01 ether;
    uint96 internal constant AVAILABILITY_BOND = 0.2 ether;
    uint256 internal constant STAKE = 1000e18;

    BatchDisputes internal disputes;
    uint256 internal keyA;
    uint256 internal keyB;
    address internal griefer;

    function setUp() public virtual override {
        super.setUp();
        keyA = uint256(keccak256("nodeA"));
        keyB = uint256(keccak256("nodeB"));
        griefer = makeAddr("griefer");
        disputes = new BatchDisputes(ledger, treasury, OMISSION_BOND, AVAILABILITY_BOND);
        vm.label(address(disputes), "BatchDisputes");
        vm.prank(governance);
        nodes.setSlasher(address(disputes));
        _bond(nodeA, STAKE);
        _bond(nodeB, STAKE);
        vmx.deal(alice, 100 ether);
        vmx.deal(bob, 100 ether);
        vmx.deal(griefer, 100 ether);
    }

    // ---- receipts ----

    function _sign(uint256 key, address node, uint64 seq, bytes32 leaf) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vmx.sign(key, disputes.receiptDigest(node, seq, leaf));
        return abi.encodePacked(r, s, v);
    }

    function _receipt(uint256 key, IAttributionLedger.Record memory rec) internal view returns (bytes memory) {
        return _sign(key, rec.node, rec.seq, ledger.recordLeaf(rec));
    }

    // ---- posting ----

    /// @dev Post `count` honest records of `node` from its next seq; returns the batch id, records and tree.
    function _postRecords(address node, uint32 count, uint256 salt)
        internal
        returns (uint256 batchId, IAttributionLedger.Record[] memory recs, bytes32[] memory tree)
    {
        uint64 first = ledger.nextSeq(node);
        (recs, tree) = _batchRecords(node, first, count, salt);
        batchId = _post(node, first, count, tree[0]);
    }

    function _proof(bytes32[] memory tree, IAttributionLedger.Record memory rec)
        internal
        view
        returns (bytes32[] memory)
    {
        return StandardMerkle.proof(tree, ledger.recordLeaf(rec));
    }

    /// @dev Post one batch of `node` whose DA commitment is `commitment`.
    function _postCommitment(address node, bytes memory commitment) internal returns (uint256 batchId) {
        uint64 first = ledger.nextSeq(node);
        uint64 firstTs = ledger.lastRecordTimestamp(node);
        vm.prank(node);
        batchId = ledger.postBatch(first, 1, firstTs, uint64(block.timestamp), keccak256("root"), commitment);
    }

    function _stake(address node) internal view returns (uint256) {
        INodeRegistry.Node memory n = nodes.node(node);
        return n.bonded + n.unbonding;
    }

    function _seqKey(address node, uint64 seq) internal view returns (bytes32) {
        return disputes.faultKey(IBatchDisputes.Kind.Omission, uint160(node), seq);
    }
}

/// @notice Unit tests of every dispute path.
contract BatchDisputesTest is DisputesBase {
    // ---- constructor and wiring ----

    function test_Constructor_SetsParameters() public view {
        vm.assertEq(address(disputes.ledger()), address(ledger));
        vm.assertEq(address(disputes.registry()), address(nodes));
        vm.assertEq(disputes.treasury(), treasury);
        vm.assertEq(disputes.omissionBond(), OMISSION_BOND);
        vm.assertEq(disputes.availabilityBond(), AVAILABILITY_BOND);
        vm.assertEq(nodes.slasher(), address(disputes), "the only slasher");
        vm.assertLt(disputes.MAX_POSTING_DELAY(), nodes.MIN_UNBONDING_DELAY());
        vm.assertLt(disputes.CHALLENGE_WINDOW() + disputes.RESPONSE_WINDOW(), nodes.MIN_UNBONDING_DELAY());
        vm.assertEq(disputes.chunkCount(16 * 1024 * 1024), disputes.MAX_CHUNKS());
    }

    function test_RevertWhen_ConstructorZeroArguments() public {
        vm.expectRevert(IBatchDisputes.DisputesZeroAddress.selector);
        new BatchDisputes(IAttributionLedger(address(0)), treasury, 1, 1);
        vm.expectRevert(IBatchDisputes.DisputesZeroAddress.selector);
        new BatchDisputes(ledger, address(0), 1, 1);
        vm.expectRevert(IBatchDisputes.DisputesZeroBond.selector);
        new BatchDisputes(ledger, treasury, 0, 1);
        vm.expectRevert(IBatchDisputes.DisputesZeroBond.selector);
        new BatchDisputes(ledger, treasury, 1, 0);
    }

    /// @dev Python's ReceiptSigner (attribution/records/receipt.py) builds the same digest: typehashes and domain.
    function test_ReceiptDigest_IsEip712OverTheLedgerDomain() public view {
        bytes32 domain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("loraledger"),
                keccak256("1"),
                block.chainid,
                address(ledger)
            )
        );
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256("Receipt(uint256 chainId,address ledger,address node,uint64 seq,bytes32 leaf)"),
                block.chainid,
                address(ledger),
                nodeA,
                uint64(7),
                bytes32(uint256(42))
            )
        );
        vm.assertEq(
            disputes.receiptDigest(nodeA, 7, bytes32(uint256(42))),
            keccak256(abi.encodePacked(hex"1901", domain, structHash))
        );
    }

    // ---- omission ----

    function test_OpenOmission_PostedSeqOpensChallenge() public {
        (uint256 batchId, IAttributionLedger.Record[] memory recs,) = _postRecords(nodeA, 4, 1);
        bytes memory receipt = _receipt(keyA, recs[2]);
        bytes32 leaf = ledger.recordLeaf(recs[2]);
        uint64 deadline = uint64(block.timestamp) + disputes.RESPONSE_WINDOW();
        vm.expectEmit(address(disputes));
        emit IBatchDisputes.ChallengeOpened(
            1, IBatchDisputes.Kind.Omission, nodeA, batchId, 2, leaf, alice, OMISSION_BOND, deadline
        );
        vm.prank(alice);
        uint256 id = disputes.openOmission{value: OMISSION_BOND}(recs[2], receipt, batchId);
        vm.assertEq(id, 1);
        IBatchDisputes.Dispute memory d = disputes.dispute(id);
        vm.assertTrue(d.status == IBatchDisputes.Status.Open);
        vm.assertEq(d.node, nodeA);
        vm.assertEq(d.challenger, alice);
        vm.assertEq(uint256(d.bond), OMISSION_BOND);
        vm.assertEq(uint256(d.batchId), batchId);
        vm.assertEq(uint256(d.index), 2);
        vm.assertEq(d.leaf, leaf);
        vm.assertEq(uint256(d.deadline), deadline);
        vm.assertEq(address(disputes).balance, OMISSION_BOND);
    }

    function test_RespondOmission_PaysTheBondToTheNode() public {
        (uint256 batchId, IAttributionLedger.Record[] memory recs, bytes32[] memory tree) = _postRecords(nodeA, 4, 2);
        bytes memory receipt = _receipt(keyA, recs[1]);
        vm.prank(alice);
        uint256 id = disputes.openOmission{value: OMISSION_BOND}(recs[1], receipt, batchId);
        bytes32 leaf = ledger.recordLeaf(recs[1]);
        bytes32[] memory proof = _proof(tree, recs[1]);
        vm.expectEmit(address(disputes));
        emit IBatchDisputes.ChallengeAnswered(id, IBatchDisputes.Kind.Omission, nodeA, nodeA, OMISSION_BOND, leaf);
        vm.prank(nodeA);
        disputes.respondOmission(id, proof);
        vm.assertTrue(disputes.dispute(id).status == IBatchDisputes.Status.Answered);
        vm.assertEq(disputes.owed(nodeA), OMISSION_BOND);
        vm.assertEq(disputes.owed(alice), 0, "the challenger lost its bond");
        uint256 before = nodeA.balance;
        vm.prank(nodeA);
        vm.assertEq(disputes.withdraw(), OMISSION_BOND);
        vm.assertEq(nodeA.balance - before, OMISSION_BOND);
        vm.assertEq(_stake(nodeA), STAKE, "not slashed");
    }

    /// @dev The node posted another leaf for the seq than it signed: it cannot answer, and is slashed at expiry.
    function test_SettleExpired_SlashesAnUnansweredOmission() public {
        IAttributionLedger.Record memory signed = _record(nodeA, 0, 11);
        bytes memory receipt = _receipt(keyA, signed);
        _postRecords(nodeA, 3, 12); // seqs 0..2, none of them `signed`
        vm.prank(alice);
        uint256 id = disputes.openOmission{value: OMISSION_BOND}(signed, receipt, 1);
        vm.prank(nodeA);
        vm.expectRevert(
            abi.encodeWithSelector(IBatchDisputes.DisputesLeafNotInBatch.selector, 1, ledger.recordLeaf(signed))
        );
        disputes.respondOmission(id, new bytes32[](0));

        vm.warp(block.timestamp + disputes.RESPONSE_WINDOW() + 1);
        uint256 slashed = STAKE * disputes.SLASH_BPS() / 10_000;
        vm.expectEmit(address(disputes));
        emit IBatchDisputes.FaultProven(
            id, IBatchDisputes.Kind.Omission, nodeA, 1, 0, alice, slashed, slashed / 2, slashed - slashed / 2
        );
        vm.prank(bob); // anyone settles
        disputes.settleExpired(id);
        vm.assertTrue(disputes.dispute(id).status == IBatchDisputes.Status.Upheld);
        vm.assertEq(_stake(nodeA), STAKE - slashed);
        vm.assertEq(token.balanceOf(alice), slashed / 2, "challenger's share");
        vm.assertEq(token.balanceOf(treasury), slashed - slashed / 2, "treasury's share");
        vm.assertEq(disputes.owed(alice), OMISSION_BOND, "bond refunded");
        vm.assertTrue(disputes.isPunished(_seqKey(nodeA, 0)));
    }

    function test_OpenOmission_UnpostedOverdueSlashesAtOnce() public {
        IAttributionLedger.Record memory rec = _record(nodeA, 0, 21);
        bytes memory receipt = _receipt(keyA, rec);
        vm.warp(block.timestamp + disputes.MAX_POSTING_DELAY());
        vm.prank(alice);
        uint256 id = disputes.openOmission{value: OMISSION_BOND}(rec, receipt, 0);
        IBatchDisputes.Dispute memory d = disputes.dispute(id);
        vm.assertTrue(d.status == IBatchDisputes.Status.Upheld);
        vm.assertTrue(d.kind == IBatchDisputes.Kind.Omission);
        vm.assertEq(_stake(nodeA), STAKE / 2);
        vm.assertEq(disputes.owed(alice), OMISSION_BOND, "bond refunded at once");
        vm.assertEq(address(disputes).balance, OMISSION_BOND);
    }

    function test_OpenOmission_FutureDatedRecordSlashesAtOnce() public {
        IAttributionLedger.Record memory rec = _record(nodeA, 0, 22);
        rec.timestamp = uint64(block.timestamp) + disputes.FUTURE_TOLERANCE() + 1;
        bytes memory receipt = _receipt(keyA, rec);
        vm.prank(alice);
        disputes.openOmission{value: OMISSION_BOND}(rec, receipt, 0);
        vm.assertEq(_stake(nodeA), STAKE / 2);
    }

    /// @dev A timestamp near 2^64 cannot overflow the due time into an unchallengeable record.
    function test_OpenOmission_MaxTimestampSlashesAtOnce() public {
        IAttributionLedger.Record memory rec = _record(nodeA, 0, 22);
        rec.timestamp = type(uint64).max;
        bytes memory receipt = _receipt(keyA, rec);
        vm.prank(alice);
        disputes.openOmission{value: OMISSION_BOND}(rec, receipt, 0);
        vm.assertEq(_stake(nodeA), STAKE / 2);
    }

    function test_RevertWhen_OpenOmissionNotYetDue() public {
        IAttributionLedger.Record memory rec = _record(nodeA, 0, 23);
        bytes memory receipt = _receipt(keyA, rec);
        uint64 dueAt = rec.timestamp + disputes.MAX_POSTING_DELAY();
        vm.warp(dueAt - 1);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesNotYetDue.selector, nodeA, 0, dueAt));
        disputes.openOmission{value: OMISSION_BOND}(rec, receipt, 0);
    }

    /// @dev Invariant 3: an outage just shorter than the maximum posting delay, then the backlog is posted: the node's
    /// receipts are all answerable and nothing is slashed.
    function test_OutageShorterThanMaxPostingDelay_NeverSlashes() public {
        IAttributionLedger.Record memory rec = _record(nodeA, 0, 24);
        bytes memory receipt = _receipt(keyA, rec);
        vm.warp(block.timestamp + disputes.MAX_POSTING_DELAY() - 1); // DA or L2 down all this time
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBatchDisputes.DisputesNotYetDue.selector, nodeA, 0, rec.timestamp + disputes.MAX_POSTING_DELAY()
            )
        );
        disputes.openOmission{value: OMISSION_BOND}(rec, receipt, 0);
        // the parts return: the backlog drains in one post that holds `rec`
        IAttributionLedger.Record[] memory recs = new IAttributionLedger.Record[](2);
        recs[0] = rec;
        recs[1] = _record(nodeA, 1, 25);
        bytes32[] memory leaves = new bytes32[](2);
        leaves[0] = ledger.recordLeaf(recs[0]);
        leaves[1] = ledger.recordLeaf(recs[1]);
        bytes32[] memory tree = StandardMerkle.build(leaves);
        vm.prank(nodeA);
        uint256 batchId = ledger.postBatch(0, 2, rec.timestamp, recs[1].timestamp, tree[0], _commitment(200, 0));
        vm.warp(block.timestamp + 1);
        vm.prank(alice);
        uint256 id = disputes.openOmission{value: OMISSION_BOND}(rec, receipt, batchId);
        vm.prank(nodeA);
        disputes.respondOmission(id, StandardMerkle.proof(tree, leaves[0]));
        vm.assertEq(_stake(nodeA), STAKE, "an honest node that rode out the outage is never slashed");
    }

    function test_RevertWhen_OpenOmissionWrongBond() public {
        IAttributionLedger.Record memory rec = _record(nodeA, 0, 26);
        bytes memory receipt = _receipt(keyA, rec);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IBatchDisputes.DisputesWrongBond.selector, OMISSION_BOND - 1, OMISSION_BOND)
        );
        disputes.openOmission{value: OMISSION_BOND - 1}(rec, receipt, 0);
    }

    function test_RevertWhen_OpenOmissionReceiptNotTheNodes() public {
        IAttributionLedger.Record memory rec = _record(nodeA, 0, 27);
        bytes memory forged = _receipt(keyB, rec);
        vm.warp(block.timestamp + disputes.MAX_POSTING_DELAY());
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesBadReceipt.selector, nodeA, 0, nodeB));
        disputes.openOmission{value: OMISSION_BOND}(rec, forged, 0);
    }

    /// @dev The high-s twin of a valid receipt is refused (one receipt, one byte string), as receipt.py refuses it.
    function test_RevertWhen_OpenOmissionHighSReceipt() public {
        IAttributionLedger.Record memory rec = _record(nodeA, 0, 28);
        (uint8 v, bytes32 r, bytes32 s) = vmx.sign(keyA, disputes.receiptDigest(nodeA, 0, ledger.recordLeaf(rec)));
        uint256 n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
        bytes memory high = abi.encodePacked(r, bytes32(n - uint256(s)), v == 27 ? uint8(28) : uint8(27));
        vm.warp(block.timestamp + disputes.MAX_POSTING_DELAY());
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesBadReceipt.selector, nodeA, 0, address(0)));
        disputes.openOmission{value: OMISSION_BOND}(rec, high, 0);
    }

    function test_RevertWhen_OpenOmissionForeignRecord() public {
        IAttributionLedger.Record memory rec = _record(nodeA, 0, 29);
        rec.ledger = address(0xBEEF);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IBatchDisputes.DisputesForeignRecord.selector, block.chainid, address(0xBEEF))
        );
        disputes.openOmission{value: OMISSION_BOND}(rec, new bytes(65), 0);
    }

    function test_RevertWhen_OpenOmissionNamesTheWrongBatch() public {
        (, IAttributionLedger.Record[] memory recs,) = _postRecords(nodeA, 2, 30);
        uint256 otherBatch;
        (otherBatch,,) = _postRecords(nodeB, 2, 31);
        bytes memory receipt = _receipt(keyA, recs[0]);
        vm.startPrank(alice);
        vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesSeqNotInBatch.selector, otherBatch, nodeA, 0));
        disputes.openOmission{value: OMISSION_BOND}(recs[0], receipt, otherBatch);
        vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesBatchRequired.selector, nodeA, 0));
        disputes.openOmission{value: OMISSION_BOND}(recs[0], receipt, 0);
        vm.stopPrank();
    }

    function test_RevertWhen_OpenOmissionAfterTheChallengeWindow() public {
        (uint256 batchId, IAttributionLedger.Record[] memory recs,) = _postRecords(nodeA, 2, 32);
        bytes memory receipt = _receipt(keyA, recs[0]);
        uint64 closedAt = uint64(block.timestamp) + disputes.CHALLENGE_WINDOW();
        vm.warp(closedAt + 1);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IBatchDisputes.DisputesChallengeWindowClosed.selector, batchId, closedAt)
        );
        disputes.openOmission{value: OMISSION_BOND}(recs[0], receipt, batchId);
    }

    function test_RevertWhen_AnswerOrSettleOutOfTime() public {
        (uint256 batchId, IAttributionLedger.Record[] memory recs, bytes32[] memory tree) = _postRecords(nodeA, 2, 33);
        bytes memory receipt = _receipt(keyA, recs[0]);
        vm.prank(alice);
        uint256 id = disputes.openOmission{value: OMISSION_BOND}(recs[0], receipt, batchId);
        uint64 deadline = disputes.dispute(id).deadline;
        vm.warp(deadline);
        vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesDeadlineNotPassed.selector, id, deadline));
        disputes.settleExpired(id);
        vm.warp(deadline + 1);
        bytes32[] memory proof = _proof(tree, recs[0]);
        vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesDeadlinePassed.selector, id, deadline));
        disputes.respondOmission(id, proof);
        disputes.settleExpired(id);
        vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesNotOpen.selector, id));
        disputes.settleExpired(id);
        vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesNotOpen.selector, id));
        disputes.respondOmission(id, proof);
    }

    function test_RevertWhen_AnswerTwiceOrWithTheWrongKind() public {
        (uint256 batchId, IAttributionLedger.Record[] memory recs, bytes32[] memory tree) = _postRecords(nodeA, 2, 34);
        bytes memory receipt = _receipt(keyA, recs[0]);
        vm.prank(alice);
        uint256 id = disputes.openOmission{value: OMISSION_BOND}(recs[0], receipt, batchId);
        vm.expectRevert(
            abi.encodeWithSelector(IBatchDisputes.DisputesWrongKind.selector, id, IBatchDisputes.Kind.Omission)
        );
        disputes.resolveAvailability(id, "", "", new bytes32[](0));
        bytes32[] memory proof = _proof(tree, recs[0]);
        disputes.respondOmission(id, proof);
        vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesNotOpen.selector, id));
        disputes.respondOmission(id, proof);
        vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesNotOpen.selector, 0));
        disputes.settleExpired(0);
    }

    /// @dev Issue 22: an honest node challenged 100 times by a griefer is never slashed; the griefer loses every bond.
    function test_HonestNodeChallenged100Times_NeverSlashed() public {
        (uint256 batchId, IAttributionLedger.Record[] memory recs, bytes32[] memory tree) = _postRecords(nodeA, 10, 35);
        uint256 grieferBefore = griefer.balance;
        for (uint256 i; i < 100; ++i) {
            IAttributionLedger.Record memory rec = recs[i % 10];
            bytes memory receipt = _receipt(keyA, rec);
            bytes32[] memory proof = _proof(tree, rec);
            vm.prank(griefer);
            uint256 id = disputes.openOmission{value: OMISSION_BOND}(rec, receipt, batchId);
            if (i % 3 == 0) {
                // some answered at the last second
                vm.warp(disputes.dispute(id).deadline);
            }
            vm.prank(nodeA);
            disputes.respondOmission(id, proof);
            vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesNotOpen.selector, id));
            disputes.settleExpired(id);
            if (block.timestamp > ledger.batch(batchId).postedAt + 3 days) {
                (batchId, recs, tree) = _postRecords(nodeA, 10, 36 + i);
            }
        }
        vm.assertEq(_stake(nodeA), STAKE, "never slashed");
        vm.assertEq(disputes.owed(nodeA), 100 * uint256(OMISSION_BOND), "every bond paid the node");
        vm.assertEq(disputes.owed(griefer), 0);
        vm.assertEq(grieferBefore - griefer.balance, 100 * uint256(OMISSION_BOND), "the griefer lost every bond");
        vm.assertEq(token.balanceOf(griefer), 0);
    }

    // ---- equivocation ----

    function test_ProveEquivocation_Slashes() public {
        bytes32 leafA = keccak256("a");
        bytes32 leafB = keccak256("b");
        bytes memory ra = _sign(keyA, nodeA, 5, leafA);
        bytes memory rb = _sign(keyA, nodeA, 5, leafB);
        uint256 slashed = STAKE / 2;
        vm.expectEmit(address(disputes));
        emit IBatchDisputes.FaultProven(
            1, IBatchDisputes.Kind.Equivocation, nodeA, 0, 5, bob, slashed, slashed / 2, slashed / 2
        );
        vm.prank(bob);
        uint256 id = disputes.proveEquivocation(nodeA, 5, leafA, ra, leafB, rb);
        vm.assertTrue(disputes.dispute(id).kind == IBatchDisputes.Kind.Equivocation);
        vm.assertTrue(disputes.dispute(id).status == IBatchDisputes.Status.Upheld);
        vm.assertEq(token.balanceOf(bob), slashed / 2);
        vm.assertEq(_stake(nodeA), STAKE - slashed);
        // the same fault is slashed once
        bytes32 key = _seqKey(nodeA, 5);
        vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesAlreadyPunished.selector, key));
        disputes.proveEquivocation(nodeA, 5, leafB, rb, leafA, ra);
    }

    function test_RevertWhen_EquivocationSameLeafOrForged() public {
        bytes32 leafA = keccak256("a");
        bytes memory ra = _sign(keyA, nodeA, 5, leafA);
        vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesSameLeaf.selector, leafA));
        disputes.proveEquivocation(nodeA, 5, leafA, ra, leafA, ra);
        bytes32 leafB = keccak256("b");
        bytes memory forged = _sign(keyB, nodeA, 5, leafB);
        vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesBadReceipt.selector, nodeA, 5, nodeB));
        disputes.proveEquivocation(nodeA, 5, leafA, ra, leafB, forged);
        // a receipt for another seq is no equivocation
        bytes memory otherSeq = _sign(keyA, nodeA, 6, leafB);
        vm.expectRevert();
        disputes.proveEquivocation(nodeA, 5, leafA, ra, leafB, otherSeq);
        vm.assertEq(_stake(nodeA), STAKE);
    }

    // ---- commission ----

    /// @dev A batch whose root holds `bad` beside one in-place record; returns (batchId, tree).
    function _postWith(address node, IAttributionLedger.Record memory bad, uint256 salt)
        internal
        returns (uint256 batchId, bytes32[] memory tree)
    {
        uint64 first = ledger.nextSeq(node);
        bytes32[] memory leaves = new bytes32[](2);
        leaves[0] = ledger.recordLeaf(_record(node, first, salt));
        leaves[1] = ledger.recordLeaf(bad);
        tree = StandardMerkle.build(leaves);
        batchId = _post(node, first, 1, tree[0]);
    }

    function _assertMisplaced(IAttributionLedger.Record memory bad, IBatchDisputes.CommissionReason reason) internal {
        (uint256 batchId, bytes32[] memory tree) = _postWith(nodeA, bad, 40);
        bytes32 leaf = ledger.recordLeaf(bad);
        bytes32[] memory proof = StandardMerkle.proof(tree, leaf);
        vm.expectEmit(address(disputes));
        emit IBatchDisputes.CommissionProven(1, batchId, leaf, reason);
        vm.prank(bob);
        disputes.proveMisplacedRecord(batchId, bad, proof);
        vm.assertEq(_stake(nodeA), STAKE / 2, "the batch's node is slashed");
        vm.assertEq(token.balanceOf(bob), STAKE / 4);
        bytes32 key = disputes.faultKey(IBatchDisputes.Kind.Commission, batchId, uint256(leaf));
        vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesAlreadyPunished.selector, key));
        disputes.proveMisplacedRecord(batchId, bad, proof);
    }

    function test_ProveMisplacedRecord_SeqOutOfRange() public {
        _assertMisplaced(_record(nodeA, 1, 41), IBatchDisputes.CommissionReason.SeqOutOfRange);
    }

    function test_ProveMisplacedRecord_AnotherNode() public {
        _assertMisplaced(_record(nodeB, 0, 42), IBatchDisputes.CommissionReason.WrongNode);
    }

    function test_ProveMisplacedRecord_AnotherChain() public {
        IAttributionLedger.Record memory bad = _record(nodeA, 0, 43);
        bad.chainId = 1;
        _assertMisplaced(bad, IBatchDisputes.CommissionReason.WrongChain);
    }

    function test_ProveMisplacedRecord_AnotherLedger() public {
        IAttributionLedger.Record memory bad = _record(nodeA, 0, 44);
        bad.ledger = address(0xBEEF);
        _assertMisplaced(bad, IBatchDisputes.CommissionReason.WrongLedger);
    }

    function test_RevertWhen_MisplacedRecordIsInPlaceOrNotInTheRoot() public {
        (uint256 batchId, IAttributionLedger.Record[] memory recs, bytes32[] memory tree) = _postRecords(nodeA, 3, 45);
        bytes32[] memory proof = _proof(tree, recs[1]);
        vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesRecordInPlace.selector, batchId, 1));
        disputes.proveMisplacedRecord(batchId, recs[1], proof);
        IAttributionLedger.Record memory outside = _record(nodeA, 9, 46);
        vm.expectRevert(
            abi.encodeWithSelector(IBatchDisputes.DisputesLeafNotInBatch.selector, batchId, ledger.recordLeaf(outside))
        );
        disputes.proveMisplacedRecord(batchId, outside, proof);
        vm.assertEq(_stake(nodeA), STAKE);
    }

    function test_ProveReceiptConflict_Slashes() public {
        (uint256 batchId, IAttributionLedger.Record[] memory recs, bytes32[] memory tree) = _postRecords(nodeA, 3, 47);
        bytes32 signedLeaf = keccak256("what the client was told");
        bytes memory receipt = _sign(keyA, nodeA, recs[2].seq, signedLeaf);
        bytes32[] memory proof = _proof(tree, recs[2]);
        vm.expectEmit(address(disputes));
        emit IBatchDisputes.CommissionProven(
            1, batchId, ledger.recordLeaf(recs[2]), IBatchDisputes.CommissionReason.ReceiptConflict
        );
        vm.prank(bob);
        disputes.proveReceiptConflict(batchId, recs[2], proof, signedLeaf, receipt);
        vm.assertEq(_stake(nodeA), STAKE / 2);
        // the same (node, seq) is not slashed again, by any game
        bytes32 key = _seqKey(nodeA, recs[2].seq);
        vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesAlreadyPunished.selector, key));
        disputes.proveReceiptConflict(batchId, recs[2], proof, signedLeaf, receipt);
        bytes32 postedLeaf = ledger.recordLeaf(recs[2]);
        bytes memory postedReceipt = _receipt(keyA, recs[2]);
        vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesAlreadyPunished.selector, key));
        disputes.proveEquivocation(nodeA, recs[2].seq, signedLeaf, receipt, postedLeaf, postedReceipt);
    }

    function test_RevertWhen_ReceiptConflictHasNoConflict() public {
        (uint256 batchId, IAttributionLedger.Record[] memory recs, bytes32[] memory tree) = _postRecords(nodeA, 3, 48);
        bytes32 leaf = ledger.recordLeaf(recs[0]);
        bytes memory honest = _receipt(keyA, recs[0]);
        bytes32[] memory proof = _proof(tree, recs[0]);
        vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesSameLeaf.selector, leaf));
        disputes.proveReceiptConflict(batchId, recs[0], proof, leaf, honest);
        bytes32 other = keccak256("other");
        bytes memory forged = _sign(keyB, nodeA, 0, other);
        vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesBadReceipt.selector, nodeA, 0, nodeB));
        disputes.proveReceiptConflict(batchId, recs[0], proof, other, forged);
        // a misplaced record goes through proveMisplacedRecord
        IAttributionLedger.Record memory bad = _record(nodeA, 7, 49);
        (uint256 b2, bytes32[] memory t2) = _postWith(nodeA, bad, 50);
        bytes32[] memory p2 = StandardMerkle.proof(t2, ledger.recordLeaf(bad));
        bytes memory signed7 = _sign(keyA, nodeA, 7, other);
        vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesRecordMisplaced.selector, b2, 7));
        disputes.proveReceiptConflict(b2, bad, p2, other, signed7);
        vm.assertEq(_stake(nodeA), STAKE);
    }

    // ---- availability ----

    function _postPayload(address node, uint256 len, uint256 seed) internal returns (uint256, bytes memory) {
        bytes memory p = DisputesKit.payload(seed, len);
        return (_postCommitment(node, DisputesKit.commitmentV3(p, seed)), p);
    }

    function test_ResolveAvailability_FullChunkPaysTheNode() public {
        (uint256 batchId, bytes memory p) = _postPayload(nodeA, 2 * DisputesKit.CHUNK_BYTES + 1000, 1);
        vm.prank(alice);
        uint256 id = disputes.openAvailability{value: AVAILABILITY_BOND}(batchId, 1);
        vm.assertEq(disputes.openAvailabilityChallenges(batchId), 1);
        bytes memory chunk = DisputesKit.chunk(p, 1);
        vm.assertEq(chunk.length, disputes.CHUNK_BYTES());
        bytes memory commitment = DisputesKit.commitmentV3(p, 1);
        bytes32[] memory proof = DisputesKit.chunkProof(p, 1);
        vm.expectEmit(address(disputes));
        emit IBatchDisputes.ChallengeAnswered(
            id, IBatchDisputes.Kind.Availability, nodeA, nodeA, AVAILABILITY_BOND, keccak256(chunk)
        );
        vm.prank(nodeA);
        disputes.resolveAvailability(id, commitment, chunk, proof);
        vm.assertEq(disputes.owed(nodeA), AVAILABILITY_BOND);
        vm.assertEq(disputes.dispute(id).leaf, keccak256(chunk));
        vm.assertEq(disputes.openAvailabilityChallenges(batchId), 0);
        vm.assertFalse(disputes.isUnavailable(batchId));
        vm.assertEq(_stake(nodeA), STAKE);
    }

    function test_ResolveAvailability_LastPartialChunkAndIndexPastThePayload() public {
        (uint256 batchId, bytes memory p) = _postPayload(nodeA, DisputesKit.CHUNK_BYTES + 77, 2);
        bytes memory commitment = DisputesKit.commitmentV3(p, 2);
        vm.startPrank(alice);
        uint256 last = disputes.openAvailability{value: AVAILABILITY_BOND}(batchId, 1);
        uint256 past = disputes.openAvailability{value: AVAILABILITY_BOND}(batchId, 5);
        vm.stopPrank();
        disputes.resolveAvailability(last, commitment, DisputesKit.chunk(p, 1), DisputesKit.chunkProof(p, 1));
        vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesChunkLength.selector, 5, 0, 1));
        disputes.resolveAvailability(past, commitment, hex"00", new bytes32[](0));
        disputes.resolveAvailability(past, commitment, "", new bytes32[](0));
        vm.assertEq(disputes.dispute(past).leaf, bytes32(0));
        vm.assertEq(disputes.owed(nodeA), 2 * uint256(AVAILABILITY_BOND));
    }

    function test_RevertWhen_ResolveWithWrongBytes() public {
        (uint256 batchId, bytes memory p) = _postPayload(nodeA, 3000, 3);
        bytes memory commitment = DisputesKit.commitmentV3(p, 3);
        vm.prank(alice);
        uint256 id = disputes.openAvailability{value: AVAILABILITY_BOND}(batchId, 0);
        bytes memory chunk = DisputesKit.chunk(p, 0);
        bytes32[] memory proof = DisputesKit.chunkProof(p, 0);
        // one flipped bit
        chunk[100] = chunk[100] ^ 0x01;
        vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesBadChunkProof.selector, 0, keccak256(chunk)));
        disputes.resolveAvailability(id, commitment, chunk, proof);
        chunk[100] = chunk[100] ^ 0x01;
        // a short chunk
        vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesChunkLength.selector, 0, 3000, 2999));
        disputes.resolveAvailability(id, commitment, DisputesKit.chunk(DisputesKit.payload(3, 2999), 0), proof);
        // another batch's commitment
        bytes memory other = DisputesKit.commitmentV3(p, 4);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBatchDisputes.DisputesCommitmentMismatch.selector,
                batchId,
                keccak256(other),
                ledger.batch(batchId).daCommitmentHash
            )
        );
        disputes.resolveAvailability(id, other, chunk, proof);
        disputes.resolveAvailability(id, commitment, chunk, proof);
    }

    /// @dev A batch whose commitment is not a certificate v3 cannot be resolved: withholding by obscurity fails.
    function test_RevertWhen_ResolveACommitmentThatIsNotV3() public {
        bytes memory v2 = DisputesKit.commitmentWith(2, 3000, keccak256("r"), 5);
        uint256 b1 = _postCommitment(nodeA, v2);
        bytes memory junk = _commitment(200, 1);
        uint256 b2 = _postCommitment(nodeA, junk);
        vm.startPrank(alice);
        uint256 id1 = disputes.openAvailability{value: AVAILABILITY_BOND}(b1, 0);
        uint256 id2 = disputes.openAvailability{value: AVAILABILITY_BOND}(b2, 0);
        vm.stopPrank();
        vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesCertificateNotV3.selector, b1, 2));
        disputes.resolveAvailability(id1, v2, "", new bytes32[](0));
        vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesCertificateNotV3.selector, b2, 0));
        disputes.resolveAvailability(id2, junk, "", new bytes32[](0));
    }

    function test_SettleExpired_WithheldChunkSlashesOnceAndMarksTheBatchUnavailable() public {
        (uint256 batchId,) = _postPayload(nodeA, 5000, 6);
        vm.startPrank(alice);
        uint256 id1 = disputes.openAvailability{value: AVAILABILITY_BOND}(batchId, 0);
        uint256 id2 = disputes.openAvailability{value: AVAILABILITY_BOND}(batchId, 0);
        vm.stopPrank();
        vm.warp(block.timestamp + disputes.RESPONSE_WINDOW() + 1);
        vm.expectEmit(address(disputes));
        emit IBatchDisputes.BatchMarkedUnavailable(batchId, id1);
        disputes.settleExpired(id1);
        vm.assertTrue(disputes.isUnavailable(batchId));
        vm.assertEq(_stake(nodeA), STAKE / 2);
        disputes.settleExpired(id2);
        vm.assertEq(_stake(nodeA), STAKE / 2, "one batch withheld is one fault");
        vm.assertEq(disputes.owed(alice), 2 * uint256(AVAILABILITY_BOND), "both bonds refunded");
        vm.assertEq(disputes.openAvailabilityChallenges(batchId), 0);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesBatchUnavailable.selector, batchId));
        disputes.openAvailability{value: AVAILABILITY_BOND}(batchId, 0);
    }

    function test_RevertWhen_OpenAvailabilityOutOfBounds() public {
        (uint256 batchId,) = _postPayload(nodeA, 100, 7);
        vm.startPrank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IBatchDisputes.DisputesWrongBond.selector, 0, uint256(AVAILABILITY_BOND))
        );
        disputes.openAvailability(batchId, 0);
        vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesChunkIndexTooLarge.selector, 133, 133));
        disputes.openAvailability{value: AVAILABILITY_BOND}(batchId, 133);
        vm.expectRevert(abi.encodeWithSelector(IAttributionLedger.LedgerUnknownBatch.selector, 99));
        disputes.openAvailability{value: AVAILABILITY_BOND}(99, 0);
        uint64 closedAt = uint64(block.timestamp) + disputes.CHALLENGE_WINDOW();
        vm.warp(closedAt + 1);
        vm.expectRevert(
            abi.encodeWithSelector(IBatchDisputes.DisputesChallengeWindowClosed.selector, batchId, closedAt)
        );
        disputes.openAvailability{value: AVAILABILITY_BOND}(batchId, 0);
        vm.stopPrank();
    }

    // ---- slashing and payouts ----

    /// @dev A node that challenges itself (through a second address) still loses: the treasury's share is gone.
    function test_LyingNeverPays_SelfChallenge() public {
        IAttributionLedger.Record memory rec = _record(nodeA, 0, 60);
        bytes memory receipt = _receipt(keyA, rec);
        vm.warp(block.timestamp + disputes.MAX_POSTING_DELAY());
        address sock = makeAddr("nodeA's sock puppet");
        vmx.deal(sock, 1 ether);
        vm.prank(sock);
        disputes.openOmission{value: OMISSION_BOND}(rec, receipt, 0);
        uint256 kept = _stake(nodeA) + token.balanceOf(sock);
        vm.assertTrue(kept < STAKE, "the liar ends poorer");
        vm.assertEq(STAKE - kept, token.balanceOf(treasury));
    }

    function test_SlashWithNoStakeLeft_UpholdsWithoutSlashing() public {
        vm.startPrank(nodeA);
        nodes.requestUnbond(STAKE);
        vm.warp(block.timestamp + UNBONDING_DELAY);
        nodes.withdraw();
        vm.stopPrank();
        bytes32 leafA = keccak256("a");
        bytes32 leafB = keccak256("b");
        bytes memory ra = _sign(keyA, nodeA, 1, leafA);
        bytes memory rb = _sign(keyA, nodeA, 1, leafB);
        vm.expectEmit(address(disputes));
        emit IBatchDisputes.FaultProven(1, IBatchDisputes.Kind.Equivocation, nodeA, 0, 1, bob, 0, 0, 0);
        vm.prank(bob);
        disputes.proveEquivocation(nodeA, 1, leafA, ra, leafB, rb);
    }

    function test_SlashTakesUnbondingStake() public {
        vm.prank(nodeA);
        nodes.requestUnbond(STAKE);
        bytes32 leafA = keccak256("a");
        bytes32 leafB = keccak256("b");
        disputes.proveEquivocation(nodeA, 1, leafA, _sign(keyA, nodeA, 1, leafA), leafB, _sign(keyA, nodeA, 1, leafB));
        vm.assertEq(nodes.node(nodeA).unbonding, STAKE / 2, "unbonding does not escape a slash");
    }

    function test_RevertWhen_WithdrawNothingOrToARefuser() public {
        vm.expectRevert(abi.encodeWithSelector(IBatchDisputes.DisputesNothingToWithdraw.selector, alice));
        vm.prank(alice);
        disputes.withdraw();
        // this test contract has no receive(): an answered challenge's bond owed to it cannot be pushed
        (uint256 batchId, IAttributionLedger.Record[] memory recs,) = _postRecords(nodeA, 1, 61);
        vmx.deal(address(this), 1 ether);
        uint256 id = disputes.openOmission{value: OMISSION_BOND}(recs[0], _receipt(keyA, recs[0]), batchId);
        vm.warp(block.timestamp + disputes.RESPONSE_WINDOW() + 1);
        disputes.settleExpired(id); // the node did not answer (in this scene): bond refunded to us
        vm.expectRevert(
            abi.encodeWithSelector(IBatchDisputes.DisputesPayoutFailed.selector, address(this), OMISSION_BOND)
        );
        disputes.withdraw();
        vm.assertEq(disputes.owed(address(this)), OMISSION_BOND, "still owed after a failed payout");
    }

    // ---- gas (docs/contracts.md has the transaction figures from measure-gas.sh) ----

    function test_Gas_DisputeSteps() public {
        (uint256 batchId, IAttributionLedger.Record[] memory recs, bytes32[] memory tree) = _postRecords(nodeA, 64, 70);
        bytes memory receipt = _receipt(keyA, recs[5]);
        bytes32[] memory proof = _proof(tree, recs[5]);
        vm.prank(alice);
        uint256 g = gasleft();
        uint256 id = disputes.openOmission{value: OMISSION_BOND}(recs[5], receipt, batchId);
        uint256 openGas = g - gasleft();
        g = gasleft();
        disputes.respondOmission(id, proof);
        uint256 respondGas = g - gasleft();
        vm.assertLt(openGas, 200_000);
        vm.assertLt(respondGas, 60_000);
    }
}
