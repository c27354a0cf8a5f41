// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "./Test.sol";
import {StandardMerkle} from "./StandardMerkle.sol";
import {DevToken} from "../../src/DevToken.sol";
import {NodeRegistry} from "../../src/NodeRegistry.sol";
import {AttributionLedger} from "../../src/AttributionLedger.sol";
import {RewardDistributor} from "../../src/RewardDistributor.sol";
import {AssetRegistry} from "../../src/AssetRegistry.sol";
import {IAttributionLedger} from "../../interfaces/IAttributionLedger.sol";

/// @title Fixture
/// @notice Deploys the whole system the way `loraledger contracts deploy` does on the devnet (one DevToken for stake
/// and rewards) with labelled actors, plus helpers to bond nodes, build records and trees.
abstract contract Fixture is Test {
    uint256 internal constant MIN_BOND = 100e18;
    uint64 internal constant UNBONDING_DELAY = 14 days;
    uint64 internal constant WINDOW = 1 days;
    uint64 internal constant CHANGE_DELAY = 1 days;
    uint256 internal constant MAX_PRICE = 1e24;

    address internal governance;
    address internal poster;
    address internal guardian;
    address internal treasury;
    /// @dev Stands in for the disputes contract (the only slasher on a real deployment).
    address internal slasher;
    address internal nodeA;
    address internal nodeB;
    address internal alice;
    address internal bob;

    DevToken internal token;
    NodeRegistry internal nodes;
    AttributionLedger internal ledger;
    RewardDistributor internal distributor;
    AssetRegistry internal assets;

    function setUp() public virtual {
        vm.warp(1_700_000_000);
        governance = makeAddr("governance");
        poster = makeAddr("poster");
        guardian = makeAddr("guardian");
        treasury = makeAddr("treasury");
        slasher = makeAddr("slasher");
        nodeA = makeAddr("nodeA");
        nodeB = makeAddr("nodeB");
        alice = makeAddr("alice");
        bob = makeAddr("bob");

        token = new DevToken("Dev Token", "DEV", address(this));
        nodes = new NodeRegistry(token, MIN_BOND, UNBONDING_DELAY, governance);
        ledger = new AttributionLedger(nodes);
        distributor = new RewardDistributor(token, nodes, ledger, governance, poster, guardian, treasury, WINDOW);
        assets = new AssetRegistry(governance, CHANGE_DELAY, MAX_PRICE);
        vm.prank(governance);
        nodes.setSlasher(slasher);
        vm.label(address(token), "DevToken");
        vm.label(address(nodes), "NodeRegistry");
        vm.label(address(ledger), "AttributionLedger");
        vm.label(address(distributor), "RewardDistributor");
        vm.label(address(assets), "AssetRegistry");
    }

    // ---- staking ----

    function _bond(address node, uint256 amount) internal {
        token.mint(node, amount);
        vm.startPrank(node);
        token.approve(address(nodes), amount);
        nodes.bond(amount);
        vm.stopPrank();
    }

    // ---- fees ----

    /// @dev Mint `amount` and deposit it as `node`'s fee credit.
    function _deposit(address node, uint256 amount) internal {
        token.mint(address(this), amount);
        token.approve(address(distributor), amount);
        distributor.depositFees(node, amount);
    }

    // ---- batches ----

    /// @dev A stand-in DA commitment of `len` bytes shaped like ours: 0x01 0x00 0xd0 then deterministic bytes.
    function _commitment(uint256 len, uint256 salt) internal pure returns (bytes memory c) {
        c = new bytes(len);
        for (uint256 i; i < len; ++i) {
            c[i] = bytes1(uint8(uint256(keccak256(abi.encode(salt, i)))));
        }
        if (len > 0) c[0] = 0x01;
        if (len > 1) c[1] = 0x00;
        if (len > 2) c[2] = 0xd0;
    }

    function _post(address node, uint64 firstSeq, uint32 count, bytes32 root) internal returns (uint256 batchId) {
        // Read before the prank: an external call in the argument list would use it up.
        uint64 first = ledger.lastRecordTimestamp(node);
        bytes memory c = _commitment(200, firstSeq);
        vm.prank(node);
        batchId = ledger.postBatch(firstSeq, count, first, uint64(block.timestamp), root, c);
    }

    // ---- records ----

    /// @dev A deterministic record of `node` with `seq` for this chain and ledger; provenance varies with `salt`.
    function _record(address node, uint64 seq, uint256 salt)
        internal
        view
        returns (IAttributionLedger.Record memory r)
    {
        uint256 n = salt % 3; // 0, 1 or 2 datasets
        bytes32[] memory ids = new bytes32[](n);
        uint16[] memory w = new uint16[](n);
        if (n == 1) {
            ids[0] = keccak256(abi.encode("ds", salt));
            w[0] = 10_000;
        } else if (n == 2) {
            ids[0] = keccak256(abi.encode("ds", salt));
            ids[1] = keccak256(abi.encode("ds2", salt));
            w[0] = 7000;
            w[1] = 3000;
        }
        r = IAttributionLedger.Record({
            chainId: block.chainid,
            ledger: address(ledger),
            node: node,
            seq: seq,
            modelId: keccak256("model"),
            adapterId: n == 0 ? bytes32(0) : keccak256(abi.encode("adapter", salt)),
            datasetIds: ids,
            weightsBps: w,
            // forge-lint: disable-next-line(unsafe-typecast) -- salt % 4096 < 2^32
            promptTokens: uint32(salt % 4096),
            // forge-lint: disable-next-line(unsafe-typecast) -- (salt >> 16) % 4096 < 2^32
            completionTokens: uint32((salt >> 16) % 4096),
            timestamp: uint64(block.timestamp),
            ioHash: keccak256(abi.encode("io", salt, seq))
        });
    }

    /// @dev Records `[firstSeq, firstSeq + count)` of `node`, their leaves and tree.
    function _batchRecords(address node, uint64 firstSeq, uint32 count, uint256 salt)
        internal
        view
        returns (IAttributionLedger.Record[] memory recs, bytes32[] memory tree)
    {
        recs = new IAttributionLedger.Record[](count);
        bytes32[] memory leaves = new bytes32[](count);
        for (uint256 i; i < count; ++i) {
            // forge-lint: disable-next-line(unsafe-typecast) -- i < count (a uint32)
            recs[i] = _record(node, firstSeq + uint64(i), uint256(keccak256(abi.encode(salt, i))));
            leaves[i] = ledger.recordLeaf(recs[i]);
        }
        tree = StandardMerkle.build(leaves);
    }
}
