// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Vm} from "../utils/Vm.sol";
import {StandardMerkle} from "../utils/StandardMerkle.sol";
import {DisputesKit, VmDisputes} from "./DisputesKit.sol";
import {DevToken} from "../../src/DevToken.sol";
import {NodeRegistry} from "../../src/NodeRegistry.sol";
import {AttributionLedger} from "../../src/AttributionLedger.sol";
import {BatchDisputes} from "../../src/BatchDisputes.sol";
import {IAttributionLedger} from "../../interfaces/IAttributionLedger.sol";
import {IBatchDisputes} from "../../interfaces/IBatchDisputes.sol";
import {INodeRegistry} from "../../interfaces/INodeRegistry.sol";

/// @notice Invariant handler for BatchDisputes. An honest node serves (signs receipts), posts batches with v3
/// payloads and answers every challenge before time passes; a griefer attacks it with every game (omission and
/// availability challenges, forged equivocations, in-place records passed off as commissions, receipts it forged,
/// early omissions of unposted records). A liar misplaces records, equivocates, withholds payloads and drops signed
/// records; a watcher proves each lie, and the liar's own sock puppet challenges it too. Ghosts track bonds and
/// the attacks that must fail.
contract DisputesHandler {
    Vm private constant vm = Vm(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);
    VmDisputes private constant vmx = VmDisputes(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);

    uint256 public constant MIN_BOND = 100e18;
    uint256 public constant HONEST_STAKE = 1000e18;
    uint256 public constant LIAR_STAKE = 1e30;
    uint96 public constant OMISSION_BOND = 0.01 ether;
    uint96 public constant AVAILABILITY_BOND = 0.2 ether;

    DevToken public immutable token;
    NodeRegistry public immutable registry;
    AttributionLedger public immutable ledger;
    BatchDisputes public immutable disputes;
    address public immutable treasury = address(0x7EA5);

    uint256 private constant _HONEST_KEY = uint256(keccak256("honest node"));
    uint256 private constant _LIAR_KEY = uint256(keccak256("liar node"));
    uint256 private constant _GRIEFER_KEY = uint256(keccak256("griefer"));
    address public immutable honest;
    address public immutable liar;
    address public immutable griefer;
    address public immutable watcher = address(0x3A7C4);
    address public immutable sock = address(0x50C4);

    /// @dev An honest batch: records `firstSeq + i` are `_rec(honest, firstSeq + i, salt + i, ts)`.
    struct HonestBatch {
        uint256 batchId;
        uint64 firstSeq;
        uint32 count;
        uint64 ts;
        uint256 salt;
        uint256 paySeed;
        uint256 payLen;
    }

    HonestBatch[] private _honestBatches;
    uint256[] private _honestOpen;
    mapping(uint256 disputeId => uint256) private _challengedBatch; // index into _honestBatches
    mapping(uint256 disputeId => uint64) private _challengedSeq;
    uint256[] private _liarOpen;

    /// @dev The honest node's served, not yet posted record (0 salt: none).
    uint256 private _servedSalt;
    uint64 private _servedTs;

    // ---- ghosts ----
    uint256 public ghostOpenBonds;
    uint256 public grieferBondsLost;
    uint256 public honestBondsEarned;
    uint256 public wronglyAccepted; // an attack on the honest node that did not revert
    uint256 public doubleSlashes; // a fault slashed a second time
    uint256 public honestMissedDeadline; // an honest challenge the handler failed to answer in time
    // progress
    uint256 public honestAnswered;
    uint256 public griefTried;
    uint256 public griefOpened;
    uint256 public griefRefused; // a well-formed challenge of the honest node could not be opened
    uint256 public answerRounds;
    uint256 public attacksRefused;
    uint256 public attacksTried;
    uint256 public liarSlashes;
    uint256 public liarLiesTried; // instant lies (misplaced records), each a new fault
    uint256 public settled;
    uint256 public settleTried;

    constructor() {
        token = new DevToken("T", "T", address(this));
        registry = new NodeRegistry(token, MIN_BOND, 14 days, address(this));
        ledger = new AttributionLedger(registry);
        disputes = new BatchDisputes(ledger, treasury, OMISSION_BOND, AVAILABILITY_BOND);
        registry.setSlasher(address(disputes));
        honest = vm.addr(_HONEST_KEY);
        liar = vm.addr(_LIAR_KEY);
        griefer = vm.addr(_GRIEFER_KEY);
        _bond(honest, HONEST_STAKE);
        _bond(liar, LIAR_STAKE);
        vmx.deal(griefer, 1_000_000 ether);
        vmx.deal(watcher, 1_000_000 ether);
        vmx.deal(sock, 1_000_000 ether);
        // bonds sent under vm.prank come from the handler's own balance
        vmx.deal(address(this), 1_000_000 ether);
    }

    // ================================================================
    //                        the honest node
    // ================================================================

    /// @notice The honest node serves one answer: signs a receipt for its next seq (posted later).
    function honestServe(uint256 salt) external {
        if (_servedSalt != 0) return;
        _servedSalt = salt | 1;
        _servedTs = uint64(block.timestamp);
    }

    /// @notice The honest node posts what it served, then a batch of 1-4 records over a 1..3000-byte v3 payload.
    function honestPost(uint256 count, uint256 salt, uint256 payLen) external {
        _postServed();
        // forge-lint: disable-next-line(unsafe-typecast) -- bound to 1..4
        _honestPost(uint32(bound(count, 1, 4)), salt >> 8, bound(payLen, 1, 3000));
    }

    /// @notice The honest node's process: answer every open challenge against it.
    function honestAnswer() public {
        if (_honestOpen.length > 0) ++answerRounds;
        for (uint256 i = _honestOpen.length; i > 0; --i) {
            uint256 id = _honestOpen[i - 1];
            _honestOpen.pop();
            IBatchDisputes.Dispute memory d = disputes.dispute(id);
            if (block.timestamp > d.deadline) {
                ++honestMissedDeadline;
                continue;
            }
            HonestBatch memory hb = _honestBatches[_challengedBatch[id]];
            if (d.kind == IBatchDisputes.Kind.Omission) {
                (, bytes32[] memory tree) = _tree(hb);
                uint64 seq = _challengedSeq[id];
                bytes32[] memory proof = StandardMerkle.proof(tree, _leaf(hb, seq));
                vm.prank(honest);
                disputes.respondOmission(id, proof);
            } else {
                bytes memory p = DisputesKit.payload(hb.paySeed, hb.payLen);
                bytes memory commitment = DisputesKit.commitmentV3(p, hb.paySeed);
                bytes memory chunk;
                bytes32[] memory proof;
                if (d.index < DisputesKit.chunkCount(p.length)) {
                    chunk = DisputesKit.chunk(p, d.index);
                    proof = DisputesKit.chunkProof(p, d.index);
                }
                vm.prank(honest);
                disputes.resolveAvailability(id, commitment, chunk, proof);
            }
            ghostOpenBonds -= d.bond;
            honestBondsEarned += d.bond;
            grieferBondsLost += d.bond;
            ++honestAnswered;
        }
    }

    // ================================================================
    //                          the griefer
    // ================================================================

    /// @notice The griefer challenges an honest posted record (with the honest node's real receipt).
    function griefOmission(uint256 batchSeed, uint256 offset) external {
        if (_honestBatches.length == 0) return;
        uint256 bi = batchSeed % _honestBatches.length;
        HonestBatch memory hb = _honestBatches[bi];
        if (block.timestamp > ledger.batch(hb.batchId).postedAt + disputes.CHALLENGE_WINDOW()) return;
        // forge-lint: disable-next-line(unsafe-typecast) -- offset % count < 4
        uint64 seq = hb.firstSeq + uint64(offset % hb.count);
        IAttributionLedger.Record memory rec = _rec(honest, seq, hb.salt + (seq - hb.firstSeq), hb.ts);
        bytes memory receipt = _sign(_HONEST_KEY, honest, seq, ledger.recordLeaf(rec));
        _grief(abi.encodeCall(disputes.openOmission, (rec, receipt, hb.batchId)), OMISSION_BOND, bi, seq);
    }

    /// @notice The griefer challenges a chunk of an honest batch (index 0-2: some past the payload).
    function griefAvailability(uint256 batchSeed, uint256 index) external {
        if (_honestBatches.length == 0) return;
        uint256 bi = batchSeed % _honestBatches.length;
        HonestBatch memory hb = _honestBatches[bi];
        if (block.timestamp > ledger.batch(hb.batchId).postedAt + disputes.CHALLENGE_WINDOW()) return;
        // forge-lint: disable-next-line(unsafe-typecast) -- index % 3 < 3
        _grief(abi.encodeCall(disputes.openAvailability, (hb.batchId, uint32(index % 3))), AVAILABILITY_BOND, bi, 0);
    }

    /// @notice The griefer tries to slash the honest node at once: each attempt must revert.
    function griefInstant(uint256 kind, uint256 batchSeed, uint256 offset) external {
        bytes memory call;
        if (kind % 4 == 0) {
            // an "equivocation" whose second receipt the griefer signed itself
            bytes32 la = keccak256(abi.encode("a", offset));
            bytes32 lb = keccak256(abi.encode("b", offset));
            call = abi.encodeCall(
                disputes.proveEquivocation,
                (honest, 0, la, _sign(_HONEST_KEY, honest, 0, la), lb, _sign(_GRIEFER_KEY, honest, 0, lb))
            );
        } else if (kind % 4 == 3) {
            // an early omission of the served, unposted record
            if (_servedSalt == 0) return;
            IAttributionLedger.Record memory rec = _rec(honest, ledger.nextSeq(honest), _servedSalt, _servedTs);
            bytes memory receipt = _sign(_HONEST_KEY, honest, rec.seq, ledger.recordLeaf(rec));
            call = abi.encodeCall(disputes.openOmission, (rec, receipt, 0));
        } else {
            if (_honestBatches.length == 0) return;
            HonestBatch memory hb = _honestBatches[batchSeed % _honestBatches.length];
            (IAttributionLedger.Record[] memory recs, bytes32[] memory tree) = _tree(hb);
            IAttributionLedger.Record memory rec = recs[offset % hb.count];
            bytes32[] memory proof = StandardMerkle.proof(tree, ledger.recordLeaf(rec));
            if (kind % 4 == 1) {
                // an in-place record passed off as misplaced
                call = abi.encodeCall(disputes.proveMisplacedRecord, (hb.batchId, rec, proof));
            } else {
                // a "conflicting receipt" the griefer forged
                bytes32 other = keccak256(abi.encode("other", offset));
                call = abi.encodeCall(
                    disputes.proveReceiptConflict,
                    (hb.batchId, rec, proof, other, _sign(_GRIEFER_KEY, honest, rec.seq, other))
                );
            }
        }
        ++attacksTried;
        vm.prank(griefer);
        (bool ok,) = address(disputes).call{value: kind % 4 == 3 ? OMISSION_BOND : 0}(call);
        if (ok) ++wronglyAccepted;
        else ++attacksRefused;
    }

    // ================================================================
    //                     the liar and its watchers
    // ================================================================

    /// @notice The liar posts a batch holding a record outside its range; the watcher proves it.
    function liarMisplaces(uint256 salt) external {
        salt >>= 8; // room for salt + 1
        if (!registry.isActive(liar)) return;
        ++liarLiesTried;
        uint64 first = ledger.nextSeq(liar);
        IAttributionLedger.Record memory good = _rec(liar, first, salt, uint64(block.timestamp));
        // forge-lint: disable-next-line(unsafe-typecast) -- salt % 5 < 5
        uint64 past = first + 1 + uint64(salt % 5);
        IAttributionLedger.Record memory bad = _rec(liar, past, salt + 1, uint64(block.timestamp));
        bytes32[] memory leaves = new bytes32[](2);
        leaves[0] = ledger.recordLeaf(good);
        leaves[1] = ledger.recordLeaf(bad);
        bytes32[] memory tree = StandardMerkle.build(leaves);
        uint256 batchId = _postAs(liar, first, 1, uint64(block.timestamp), tree[0], hex"0100d0");
        bytes32[] memory proof = StandardMerkle.proof(tree, leaves[1]);
        _liarSlash(watcher, abi.encodeCall(disputes.proveMisplacedRecord, (batchId, bad, proof)));
    }

    /// @notice The liar signs two leaves for one seq; the watcher (or the liar's sock) proves it.
    function liarEquivocates(uint64 seq, bool bySock) external {
        bytes32 la = keccak256(abi.encode("la", seq));
        bytes32 lb = keccak256(abi.encode("lb", seq));
        _liarSlash(
            bySock ? sock : watcher,
            abi.encodeCall(
                disputes.proveEquivocation,
                (liar, seq, la, _sign(_LIAR_KEY, liar, seq, la), lb, _sign(_LIAR_KEY, liar, seq, lb))
            )
        );
    }

    /// @notice The liar posts a batch and withholds its payload; the watcher challenges a chunk.
    function liarWithholds(uint256 seed) external {
        if (!registry.isActive(liar)) return;
        uint64 first = ledger.nextSeq(liar);
        bytes memory p = DisputesKit.payload(seed, 500);
        uint256 batchId =
            _postAs(liar, first, 1, uint64(block.timestamp), keccak256("r"), DisputesKit.commitmentV3(p, 9));
        vm.prank(watcher);
        _liarOpen.push(disputes.openAvailability{value: AVAILABILITY_BOND}(batchId, 0));
        ghostOpenBonds += AVAILABILITY_BOND;
    }

    /// @notice The liar posts another leaf than the one it signed; the watcher (or sock) challenges the omission.
    function liarOmits(uint256 salt, bool bySock) external {
        salt >>= 8; // room for salt + 1
        if (!registry.isActive(liar)) return;
        uint64 first = ledger.nextSeq(liar);
        // an equivocation on this seq may have been punished already: one slash per (node, seq)
        if (disputes.isPunished(disputes.faultKey(IBatchDisputes.Kind.Omission, uint160(liar), first))) return;
        uint64 ts = uint64(block.timestamp);
        IAttributionLedger.Record memory signed = _rec(liar, first, salt, ts);
        IAttributionLedger.Record memory posted = _rec(liar, first, salt + 1, ts);
        uint256 batchId = _postAs(liar, first, 1, ts, ledger.recordLeaf(posted), hex"0100d0");
        bytes memory receipt = _sign(_LIAR_KEY, liar, first, ledger.recordLeaf(signed));
        vm.prank(bySock ? sock : watcher);
        _liarOpen.push(disputes.openOmission{value: OMISSION_BOND}(signed, receipt, batchId));
        ghostOpenBonds += OMISSION_BOND;
    }

    /// @notice Anyone settles the liar's expired challenges (and tries to settle the honest node's open ones).
    function settle() external {
        for (uint256 i; i < _honestOpen.length; ++i) {
            ++attacksTried;
            vm.prank(griefer);
            (bool ok,) = address(disputes).call(abi.encodeCall(disputes.settleExpired, (_honestOpen[i])));
            if (ok) ++wronglyAccepted;
            else ++attacksRefused;
        }
        for (uint256 i = _liarOpen.length; i > 0; --i) {
            uint256 id = _liarOpen[i - 1];
            IBatchDisputes.Dispute memory d = disputes.dispute(id);
            if (block.timestamp <= d.deadline) continue;
            ++settleTried;
            uint256 before = _stake(liar);
            disputes.settleExpired(id);
            ghostOpenBonds -= d.bond;
            _liarOpen[i - 1] = _liarOpen[_liarOpen.length - 1];
            _liarOpen.pop();
            ++settled;
            if (_stake(liar) < before) ++liarSlashes;
        }
    }

    /// @notice Time passes (up to a day); the honest node answers and posts what it served first.
    function warp(uint256 dt) external {
        honestAnswer();
        _postServed();
        vm.warp(block.timestamp + bound(dt, 1, 1 days));
    }

    /// @notice Everyone withdraws what is owed to them.
    function withdrawAll() external {
        address[4] memory who = [honest, griefer, watcher, sock];
        for (uint256 i; i < 4; ++i) {
            if (disputes.owed(who[i]) == 0) continue;
            vm.prank(who[i]);
            disputes.withdraw();
        }
    }

    // ================================================================
    //                            views
    // ================================================================

    function openHonestChallenges() external view returns (uint256) {
        return _honestOpen.length;
    }

    function handlerTokenBalance(address account) external view returns (uint256) {
        return token.balanceOf(account);
    }

    /// @dev Σ owed to every actor the handler uses.
    function totalOwed() external view returns (uint256) {
        return disputes.owed(honest) + disputes.owed(griefer) + disputes.owed(watcher) + disputes.owed(sock)
            + disputes.owed(address(this));
    }

    function stakeOf(address node) external view returns (uint256) {
        return _stake(node);
    }

    // ================================================================
    //                          internals
    // ================================================================

    function _liarSlash(address challenger, bytes memory call) private {
        uint256 before = _stake(liar);
        vm.prank(challenger);
        (bool ok, bytes memory ret) = address(disputes).call(call);
        if (!ok) {
            // only a fault already punished may be refused
            // forge-lint: disable-next-line(unsafe-typecast) -- the revert's selector: its first four bytes
            if (bytes4(ret) != IBatchDisputes.DisputesAlreadyPunished.selector) ++wronglyAccepted;
            return;
        }
        if (_stake(liar) < before) ++liarSlashes;
        // the same proof again never slashes twice
        vm.prank(challenger);
        (bool again,) = address(disputes).call(call);
        if (again) ++doubleSlashes;
    }

    /// @dev Open a griefer challenge on the honest node; a well-formed one must always open.
    function _grief(bytes memory call, uint96 bond, uint256 bi, uint64 seq) private {
        ++griefTried;
        vm.prank(griefer);
        (bool ok, bytes memory ret) = address(disputes).call{value: bond}(call);
        if (!ok) {
            ++griefRefused;
            return;
        }
        ++griefOpened;
        uint256 id = abi.decode(ret, (uint256));
        _honestOpen.push(id);
        _challengedBatch[id] = bi;
        _challengedSeq[id] = seq;
        ghostOpenBonds += bond;
    }

    function _postServed() private {
        if (_servedSalt == 0) return;
        uint64 first = ledger.nextSeq(honest);
        bytes32 leaf = ledger.recordLeaf(_rec(honest, first, _servedSalt, _servedTs));
        bytes memory p = DisputesKit.payload(_servedSalt, 100);
        uint256 batchId = _postAs(honest, first, 1, _servedTs, leaf, DisputesKit.commitmentV3(p, _servedSalt));
        _honestBatches.push(HonestBatch(batchId, first, 1, _servedTs, _servedSalt, _servedSalt, 100));
        _servedSalt = 0;
    }

    function _honestPost(uint32 count, uint256 salt, uint256 payLen) private {
        uint64 first = ledger.nextSeq(honest);
        HonestBatch memory hb = HonestBatch(0, first, count, uint64(block.timestamp), salt, salt, payLen);
        (, bytes32[] memory tree) = _tree(hb);
        bytes memory p = DisputesKit.payload(salt, payLen);
        hb.batchId = _postAs(honest, first, count, hb.ts, tree[0], DisputesKit.commitmentV3(p, salt));
        _honestBatches.push(hb);
    }

    function _postAs(address node, uint64 first, uint32 count, uint64 ts, bytes32 root, bytes memory commitment)
        private
        returns (uint256)
    {
        uint64 prev = ledger.lastRecordTimestamp(node);
        vm.prank(node);
        return ledger.postBatch(first, count, ts < prev ? prev : ts, ts < prev ? prev : ts, root, commitment);
    }

    function _tree(HonestBatch memory hb)
        private
        view
        returns (IAttributionLedger.Record[] memory recs, bytes32[] memory tree)
    {
        recs = new IAttributionLedger.Record[](hb.count);
        bytes32[] memory leaves = new bytes32[](hb.count);
        for (uint256 i; i < hb.count; ++i) {
            // forge-lint: disable-next-line(unsafe-typecast) -- i < 4
            recs[i] = _rec(honest, hb.firstSeq + uint64(i), hb.salt + i, hb.ts);
            leaves[i] = ledger.recordLeaf(recs[i]);
        }
        tree = StandardMerkle.build(leaves);
    }

    function _leaf(HonestBatch memory hb, uint64 seq) private view returns (bytes32) {
        return ledger.recordLeaf(_rec(honest, seq, hb.salt + (seq - hb.firstSeq), hb.ts));
    }

    function _rec(address node, uint64 seq, uint256 salt, uint64 ts)
        private
        view
        returns (IAttributionLedger.Record memory r)
    {
        r.chainId = block.chainid;
        r.ledger = address(ledger);
        r.node = node;
        r.seq = seq;
        r.modelId = keccak256("model");
        r.adapterId = keccak256(abi.encode(salt));
        r.datasetIds = new bytes32[](0);
        r.weightsBps = new uint16[](0);
        // forge-lint: disable-next-line(unsafe-typecast) -- < 1000
        r.promptTokens = uint32(salt % 1000);
        r.completionTokens = 7;
        r.timestamp = ts;
        r.ioHash = keccak256(abi.encode("io", salt, seq));
    }

    function _sign(uint256 key, address node, uint64 seq, bytes32 leaf) private view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vmx.sign(key, disputes.receiptDigest(node, seq, leaf));
        return abi.encodePacked(r, s, v);
    }

    function _stake(address node) private view returns (uint256) {
        INodeRegistry.Node memory n = registry.node(node);
        return n.bonded + n.unbonding;
    }

    function _bond(address node, uint256 amount) private {
        token.mint(node, amount);
        vm.startPrank(node);
        token.approve(address(registry), amount);
        registry.bond(amount);
        vm.stopPrank();
    }

    function bound(uint256 x, uint256 min, uint256 max) private pure returns (uint256) {
        if (x >= min && x <= max) return x;
        return min + (x % (max - min + 1));
    }
}
