// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Vm} from "../utils/Vm.sol";
import {DevToken} from "../../src/DevToken.sol";
import {NodeRegistry} from "../../src/NodeRegistry.sol";
import {AttributionLedger} from "../../src/AttributionLedger.sol";
import {IAttributionLedger} from "../../interfaces/IAttributionLedger.sol";

/// @notice Invariant handler for AttributionLedger: several nodes post valid and invalid (gap, replay, zero,
/// oversized) batches while their activity changes (bond, unbond, slash, withdraw), and try to post, unbond and run
/// before a dispute could reach them. Ghost state records what the ledger must hold.
contract LedgerHandler {
    Vm private constant vm = Vm(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);
    uint256 private constant MIN_BOND = 100;

    DevToken public immutable token;
    NodeRegistry public immutable registry;
    AttributionLedger public immutable ledger;
    address[3] public actors;

    /// @dev Ghost: what each batch id must hold, and each node's expected next seq.
    IAttributionLedger.Batch[] public ghostBatches;
    mapping(address node => uint64) public ghostNextSeq;
    /// @dev Ghost: violations observed during calls (the invariants assert they stay 0).
    uint256 public inactivePosts; // a post from an inactive node succeeded
    uint256 public invalidPostsAccepted; // a gap, replay or zero count succeeded
    uint256 public validPostsRejected; // a valid post from an active node reverted
    uint256 public ranAway; // stake withdrawn within the longest dispute window after the node's last post
    uint256 public wrongBatchId; // a post returned another id than the next one
    uint256 public validPosts; // progress: valid posts that succeeded
    uint256 public validPostsTried; // progress: valid posts by an active node
    uint256 public calls;
    /// @dev The longest dispute window (RewardDistributor.MAX_CHALLENGE_WINDOW).
    uint256 private constant DISPUTE_WINDOW = 7 days;
    mapping(address node => uint256) public lastPostAt;
    mapping(address node => uint64) public ghostLastTimestamp;

    constructor() {
        token = new DevToken("T", "T", address(this));
        registry = new NodeRegistry(token, MIN_BOND, 14 days, address(this));
        registry.setSlasher(address(this)); // the handler stands in for the disputes contract
        ledger = new AttributionLedger(registry);
        actors = [address(0xA11CE), address(0xB0B), address(0xCA401)];
        // The first two start active, the third inactive.
        _bond(actors[0], MIN_BOND);
        _bond(actors[1], MIN_BOND);
    }

    // ---- actions ----

    function postValid(uint256 actorSeed, uint32 count, bytes32 root, uint8 commitmentLength) external {
        ++calls;
        address node = actors[actorSeed % 3];
        // forge-lint: disable-next-line(unsafe-typecast) -- 1 + (count % 10000) <= 10000 fits uint32
        count = uint32(1 + (count % 10_000));
        if (root == bytes32(0)) root = bytes32(uint256(1));
        bytes memory c = new bytes(1 + uint256(commitmentLength));
        c[0] = 0x01;
        uint64 firstSeq = ghostNextSeq[node];
        bool active = registry.isActive(node);
        if (active) ++validPostsTried;
        // Any header in [end of the node's previous batch, now], ordered.
        uint64 nowTs = uint64(block.timestamp);
        uint64 firstTs = ghostLastTimestamp[node] + uint64(uint256(root) % (nowTs - ghostLastTimestamp[node] + 1));
        uint64 lastTs = firstTs + uint64((uint256(root) >> 64) % (nowTs - firstTs + 1));
        vm.prank(node);
        try ledger.postBatch(firstSeq, count, firstTs, lastTs, root, c) returns (uint256 batchId) {
            if (!active) ++inactivePosts;
            // A require here would revert the call, which the fuzzer ignores (fail_on_revert = false): count instead.
            if (batchId != ghostBatches.length + 1) ++wrongBatchId;
            ++validPosts;
            ghostLastTimestamp[node] = lastTs;
            ghostBatches.push(
                IAttributionLedger.Batch({
                    root: root,
                    daCommitmentHash: keccak256(c),
                    node: node,
                    firstSeq: firstSeq,
                    count: count,
                    // forge-lint: disable-next-line(unsafe-typecast) -- test timestamps are far below 2^64
                    postedAt: uint64(block.timestamp),
                    firstTimestamp: firstTs,
                    lastTimestamp: lastTs
                })
            );
            ghostNextSeq[node] = firstSeq + count;
            lastPostAt[node] = block.timestamp;
        } catch {
            if (active) ++validPostsRejected;
        }
    }

    function postInvalid(uint256 actorSeed, uint64 firstSeq, uint32 count, uint8 kind) external {
        ++calls;
        address node = actors[actorSeed % 3];
        uint64 next = ghostNextSeq[node];
        if (kind % 3 == 0) {
            count = 0; // zero count
            firstSeq = next;
        } else if (kind % 3 == 1) {
            if (firstSeq == next) firstSeq = next + 1; // gap ahead
            if (count == 0) count = 1;
        } else {
            if (next == 0) return; // nothing to replay yet
            firstSeq = firstSeq % next; // replay of an already posted seq
            if (count == 0) count = 1;
        }
        vm.prank(node);
        try ledger.postBatch(firstSeq, count, 0, 0, bytes32(uint256(1)), hex"01") {
            ++invalidPostsAccepted;
        } catch {}
    }

    /// @dev Attacker (N6): a header that starts before the node's previous batch ended, ends in the future, or is
    /// out of order.
    function postBadTimestamps(uint256 actorSeed, uint8 kind, uint32 by) external {
        ++calls;
        address node = actors[actorSeed % 3];
        uint64 prev = ghostLastTimestamp[node];
        uint64 nowTs = uint64(block.timestamp);
        uint64 d = 1 + uint64(by % 1 days);
        uint64 firstTs;
        uint64 lastTs;
        if (kind % 3 == 0) {
            if (prev == 0) return; // nothing before the first batch
            firstTs = prev > d ? prev - d : 0;
            lastTs = nowTs;
        } else if (kind % 3 == 1) {
            firstTs = prev;
            lastTs = nowTs + d;
        } else {
            lastTs = prev;
            firstTs = prev + d;
        }
        uint64 seq = ghostNextSeq[node];
        vm.prank(node);
        try ledger.postBatch(seq, 1, firstTs, lastTs, bytes32(uint256(1)), hex"01") {
            ++invalidPostsAccepted;
        } catch {}
    }

    /// @dev Attacker: more records than one payload holds, or a commitment longer than any real one.
    function postOversized(uint256 actorSeed, uint32 count, bool longCommitment) external {
        ++calls;
        address node = actors[actorSeed % 3];
        uint32 max = ledger.MAX_BATCH_RECORDS();
        bytes memory c = new bytes(longCommitment ? ledger.MAX_COMMITMENT_BYTES() + 1 : 1);
        c[0] = 0x01;
        if (!longCommitment) count = max + 1 + (count % (type(uint32).max - max));
        else count = 1;
        vm.prank(node);
        try ledger.postBatch(ghostNextSeq[node], count, 0, 0, bytes32(uint256(1)), c) {
            ++invalidPostsAccepted;
        } catch {}
    }

    /// @dev Attacker (M3): post, request to unbond everything and try to withdraw at once.
    function postUnbondAndRun(uint256 actorSeed) external {
        ++calls;
        address node = actors[actorSeed % 3];
        if (!registry.isActive(node)) return;
        this.postValid(actorSeed, 1, bytes32(uint256(2)), 1);
        vm.startPrank(node);
        registry.requestUnbond(registry.node(node).bonded);
        try registry.withdraw() {
            ++ranAway;
        } catch {}
        vm.stopPrank();
    }

    /// @dev Stake that was still bonded when the node last posted (its unbond was requested after the post) must
    /// not leave within the longest dispute window of that post.
    function withdraw(uint256 actorSeed) external {
        ++calls;
        address node = actors[actorSeed % 3];
        uint64 unbondableAt = registry.node(node).unbondableAt;
        if (unbondableAt == 0) return;
        uint256 requestedAt = uint256(unbondableAt) - registry.unbondingDelay();
        vm.prank(node);
        try registry.withdraw() {
            uint256 post = lastPostAt[node];
            if (post != 0 && requestedAt >= post && block.timestamp < post + DISPUTE_WINDOW) ++ranAway;
        } catch {}
    }

    function bond(uint256 actorSeed, uint256 amount) external {
        ++calls;
        _bond(actors[actorSeed % 3], 1 + (amount % (2 * MIN_BOND)));
    }

    function unbond(uint256 actorSeed, uint256 amount) external {
        ++calls;
        address node = actors[actorSeed % 3];
        uint256 bonded = registry.node(node).bonded;
        if (bonded == 0) return;
        vm.prank(node);
        registry.requestUnbond(1 + (amount % bonded));
    }

    function slash(uint256 actorSeed, uint256 amount) external {
        ++calls;
        address node = actors[actorSeed % 3];
        uint256 bonded = registry.node(node).bonded;
        if (bonded == 0) return;
        registry.slash(node, 1 + (amount % bonded), address(0xdead));
    }

    function warp(uint32 secs) external {
        ++calls;
        vm.warp(block.timestamp + (secs % 10 days));
    }

    // ---- views for the invariants ----

    function ghostBatchCount() external view returns (uint256) {
        return ghostBatches.length;
    }

    function ghostBatch(uint256 batchId) external view returns (IAttributionLedger.Batch memory) {
        return ghostBatches[batchId - 1];
    }

    function actor(uint256 i) external view returns (address) {
        return actors[i];
    }

    function _bond(address node, uint256 amount) private {
        token.mint(node, amount);
        vm.startPrank(node);
        token.approve(address(registry), amount);
        registry.bond(amount);
        vm.stopPrank();
    }
}
