// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Vm} from "../utils/Vm.sol";
import {DevToken} from "../../src/DevToken.sol";
import {NodeRegistry} from "../../src/NodeRegistry.sol";
import {AttributionLedger} from "../../src/AttributionLedger.sol";
import {IAttributionLedger} from "../../interfaces/IAttributionLedger.sol";

/// @notice Invariant handler for AttributionLedger: several nodes post valid and invalid batches while their
/// activity changes (bond, unbond, slash). Ghost state records what the ledger must hold.
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
    uint256 public calls;

    constructor() {
        token = new DevToken("T", "T", address(this));
        registry = new NodeRegistry(token, MIN_BOND, 1 days, address(this));
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
        count = uint32(1 + (count % 10_000));
        if (root == bytes32(0)) root = bytes32(uint256(1));
        bytes memory c = new bytes(1 + uint256(commitmentLength));
        c[0] = 0x01;
        uint64 firstSeq = ghostNextSeq[node];
        bool active = registry.isActive(node);
        vm.prank(node);
        try ledger.postBatch(firstSeq, count, root, c) returns (uint256 batchId) {
            if (!active) ++inactivePosts;
            require(batchId == ghostBatches.length + 1, "batch ids are sequential from 1");
            ghostBatches.push(
                IAttributionLedger.Batch({
                    root: root,
                    daCommitmentHash: keccak256(c),
                    node: node,
                    firstSeq: firstSeq,
                    count: count,
                    postedAt: uint64(block.timestamp)
                })
            );
            ghostNextSeq[node] = firstSeq + count;
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
            firstSeq = uint64(firstSeq % next); // replay of an already posted seq
            if (count == 0) count = 1;
        }
        vm.prank(node);
        try ledger.postBatch(firstSeq, count, bytes32(uint256(1)), hex"01") {
            ++invalidPostsAccepted;
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
        vm.warp(block.timestamp + (secs % 7 days));
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
