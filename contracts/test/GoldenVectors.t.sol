// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {Fixture} from "./utils/Fixture.sol";
import {StandardMerkle} from "./utils/StandardMerkle.sol";
import {AttributionLedger} from "../src/AttributionLedger.sol";
import {RewardDistributor} from "../src/RewardDistributor.sol";
import {IAttributionLedger} from "../interfaces/IAttributionLedger.sol";

/// @notice Differential tests against vectors produced outside Solidity:
/// - `contracts/test/vectors/merkle-golden.json`: the npm OpenZeppelin merkle-tree library (claims and records);
/// - `tests/vectors/records.json`: the Python attribution code (records, leaves, root, proofs).
/// The contracts' leaf encodings, OZ MerkleProof and the in-test reference tree must agree with both.
contract GoldenVectorsTest is Fixture {
    string private constant NPM_VECTORS = "contracts/test/vectors/merkle-golden.json";
    string private constant PY_VECTORS = "tests/vectors/records.json";

    /*//////////////////////////////////////////////////////////////
                         npm @openzeppelin/merkle-tree
    //////////////////////////////////////////////////////////////*/

    function test_Golden_ClaimLeavesRootAndProofs() public {
        string memory json = vm.readFile(NPM_VECTORS);
        address at = vm.parseJsonAddress(json, ".claims.distributor");
        address tokenAt = vm.parseJsonAddress(json, ".claims.token");
        vm.chainId(vm.parseJsonUint(json, ".chainId"));
        // The leaf binds the distributor's address: run our bytecode at the vector's address.
        RewardDistributor d =
            new RewardDistributor(IERC20(tokenAt), nodes, ledger, governance, poster, guardian, treasury, 1 hours);
        vm.etch(at, address(d).code);
        RewardDistributor golden = RewardDistributor(at);

        address[] memory accounts = _addresses(json, ".claims.accounts");
        uint256[] memory amounts = vm.parseJsonUintArray(json, ".claims.amounts");
        bytes32[] memory leaves = vm.parseJsonBytes32Array(json, ".claims.leaves");
        bytes32 root = vm.parseJsonBytes32(json, ".claims.root");
        bytes32[] memory ours = new bytes32[](accounts.length);
        for (uint256 i; i < accounts.length; ++i) {
            ours[i] = golden.claimLeaf(accounts[i], amounts[i]);
            vm.assertEq(ours[i], leaves[i], "claim leaf");
        }
        bytes32[] memory tree = StandardMerkle.build(ours);
        vm.assertEq(tree[0], root, "reference tree root");
        for (uint256 i; i < accounts.length; ++i) {
            bytes32[] memory proof = vm.parseJsonBytes32Array(json, _key(".claims.proofs", i));
            vm.assertEq(proof, StandardMerkle.proof(tree, leaves[i]), "reference proof");
        }
    }

    function test_Golden_RecordLeavesAndRoot() public view {
        string memory json = vm.readFile(NPM_VECTORS);
        address node = vm.parseJsonAddress(json, ".records.node");
        address ledgerAt = vm.parseJsonAddress(json, ".records.ledger");
        bytes32[] memory leaves = vm.parseJsonBytes32Array(json, ".records.leaves");
        bytes32[] memory ours = new bytes32[](3);
        for (uint256 i; i < 3; ++i) {
            // Same values as generate-merkle-golden.js.
            IAttributionLedger.Record memory r;
            r.chainId = 31_337;
            r.ledger = ledgerAt;
            r.node = node;
            // forge-lint: disable-next-line(unsafe-typecast) -- i is a small loop index
            r.seq = uint64(7 + i);
            r.modelId = bytes32(uint256(0x11));
            r.adapterId = i == 0 ? bytes32(0) : bytes32(uint256(0x22));
            r.datasetIds = new bytes32[](i == 2 ? 0 : 2);
            r.weightsBps = new uint16[](i == 2 ? 0 : 2);
            if (i != 2) {
                r.datasetIds[0] = bytes32(uint256(0x33));
                r.datasetIds[1] = bytes32(uint256(0x44));
                r.weightsBps[0] = 6000;
                r.weightsBps[1] = 4000;
            }
            // forge-lint: disable-next-line(unsafe-typecast) -- i is a small loop index
            r.promptTokens = uint32(10 + i);
            // forge-lint: disable-next-line(unsafe-typecast) -- i is a small loop index
            r.completionTokens = uint32(20 + i);
            // forge-lint: disable-next-line(unsafe-typecast) -- i is a small loop index
            r.timestamp = uint64(1_700_000_000 + i);
            r.ioHash = bytes32(uint256(0x55 + i));
            ours[i] = ledger.recordLeaf(r);
            vm.assertEq(ours[i], leaves[i], "record leaf");
        }
        vm.assertEq(StandardMerkle.root(ours), vm.parseJsonBytes32(json, ".records.root"), "record root");
    }

    /*//////////////////////////////////////////////////////////////
                       Python tests/vectors/records.json
    //////////////////////////////////////////////////////////////*/

    function test_Golden_PythonRecords_LeafAndVerifyRecord() public {
        string memory json = vm.readFile(PY_VECTORS);
        vm.chainId(vm.parseJsonUint(json, ".chainId"));
        address ledgerAt = vm.parseJsonAddress(json, ".ledger");
        address node = vm.parseJsonAddress(json, ".node");
        bytes32 root = vm.parseJsonBytes32(json, ".root");
        uint256 n = _count(json);
        vm.assertGt(n, 0);

        // Our ledger bytecode at the vectors' ledger address, the vectors' node bonded and posting the batch.
        AttributionLedger fresh = new AttributionLedger(nodes);
        vm.etch(ledgerAt, address(fresh).code);
        AttributionLedger golden = AttributionLedger(ledgerAt);
        _bond(node, MIN_BOND);

        IAttributionLedger.Record[] memory recs = new IAttributionLedger.Record[](n);
        uint64 firstSeq = type(uint64).max;
        for (uint256 i; i < n; ++i) {
            recs[i] = _parseRecord(json, i);
            vm.assertEq(golden.recordLeaf(recs[i]), vm.parseJsonBytes32(json, _field(i, "leaf")), "leaf");
            if (recs[i].seq < firstSeq) firstSeq = recs[i].seq;
        }
        uint256 id = _postCovering(golden, node, firstSeq, recs, root);

        for (uint256 i; i < n; ++i) {
            bytes32[] memory proof = vm.parseJsonBytes32Array(json, _field(i, "proof"));
            vm.assertTrue(golden.verifyRecord(id, recs[i], proof), "python proof verifies on-chain");
            if (proof.length > 0) {
                proof[0] ^= bytes32(uint256(1));
                vm.assertFalse(golden.verifyRecord(id, recs[i], proof), "flipped proof bit");
            }
        }
    }

    /*//////////////////////////////////////////////////////////////
                                 HELPERS
    //////////////////////////////////////////////////////////////*/

    function _count(string memory json) private view returns (uint256 n) {
        while (vm.keyExistsJson(json, _field(n, "leaf"))) ++n;
    }

    function _parseRecord(string memory json, uint256 i) private pure returns (IAttributionLedger.Record memory r) {
        r.chainId = vm.parseJsonUint(json, _field(i, "chainId"));
        r.ledger = vm.parseJsonAddress(json, _field(i, "ledger"));
        r.node = vm.parseJsonAddress(json, _field(i, "node"));
        r.seq = uint64(vm.parseJsonUint(json, _field(i, "seq")));
        r.modelId = vm.parseJsonBytes32(json, _field(i, "modelId"));
        r.adapterId = vm.parseJsonBytes32(json, _field(i, "adapterId"));
        r.datasetIds = vm.parseJsonBytes32Array(json, _field(i, "datasetIds"));
        uint256[] memory w = vm.parseJsonUintArray(json, _field(i, "weightsBps"));
        r.weightsBps = new uint16[](w.length);
        for (uint256 k; k < w.length; ++k) {
            r.weightsBps[k] = uint16(w[k]);
        }
        r.promptTokens = uint32(vm.parseJsonUint(json, _field(i, "promptTokens")));
        r.completionTokens = uint32(vm.parseJsonUint(json, _field(i, "completionTokens")));
        r.timestamp = uint64(vm.parseJsonUint(json, _field(i, "timestamp")));
        r.ioHash = vm.parseJsonBytes32(json, _field(i, "ioHash"));
    }

    function _field(uint256 i, string memory name) private pure returns (string memory) {
        return string.concat(".records[", vm.toString(i), "].", name);
    }

    function _key(string memory prefix, uint256 i) private pure returns (string memory) {
        return string.concat(prefix, "[", vm.toString(i), "]");
    }

    function _addresses(string memory json, string memory key) private pure returns (address[] memory a) {
        a = vm.parseJsonAddressArray(json, key);
    }

    /// @dev Post `recs` as one batch whose header spans their timestamps (the last no later than the posting block).
    function _postCovering(
        AttributionLedger golden,
        address node,
        uint64 firstSeq,
        IAttributionLedger.Record[] memory recs,
        bytes32 root
    ) private returns (uint256) {
        uint64 firstTs = type(uint64).max;
        uint64 lastTs;
        for (uint256 i; i < recs.length; ++i) {
            if (recs[i].timestamp < firstTs) firstTs = recs[i].timestamp;
            if (recs[i].timestamp > lastTs) lastTs = recs[i].timestamp;
        }
        if (block.timestamp < lastTs) vm.warp(lastTs);
        vm.prank(node);
        // forge-lint: disable-next-line(unsafe-typecast) -- a small vector length
        return golden.postBatch(firstSeq, uint32(recs.length), firstTs, lastTs, root, hex"010000d0");
    }
}
