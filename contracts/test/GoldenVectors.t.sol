// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

import {Fixture} from "./utils/Fixture.sol";
import {StandardMerkle} from "./utils/StandardMerkle.sol";
import {VmDisputes} from "./invariant/DisputesKit.sol";
import {AttributionLedger} from "../src/AttributionLedger.sol";
import {BatchDisputes} from "../src/BatchDisputes.sol";
import {RewardDistributor} from "../src/RewardDistributor.sol";
import {IAttributionLedger} from "../interfaces/IAttributionLedger.sol";

/// @notice Differential tests against vectors produced outside Solidity:
/// - `contracts/test/vectors/merkle-golden.json`: the npm OpenZeppelin merkle-tree library (claims and records);
/// - `tests/vectors/records.json`: the Python attribution code (records, leaves, root, proofs; v3: the batch header
///   and its postBatch calldata, the node's receipt with low s only, a certificate-v3 commitment of the payload).
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

    /// @dev The v3 formats from the Python side: the header posts as the vector's exact calldata; the ledger's
    /// disputes contract computes the vector's receipt digest, recovers the low-s receipt and refuses the high-s one;
    /// the certificate v3 (Python-built chunk root) resolves an availability challenge with the payload's chunk.
    function test_Golden_PythonV3_HeaderReceiptAndCertificate() public {
        string memory json = vm.readFile(PY_VECTORS);
        vm.chainId(vm.parseJsonUint(json, ".chainId"));
        address ledgerAt = vm.parseJsonAddress(json, ".ledger");
        address node = vm.parseJsonAddress(json, ".node");
        vm.etch(ledgerAt, address(new AttributionLedger(nodes)).code);
        AttributionLedger golden = AttributionLedger(ledgerAt);
        _bond(node, MIN_BOND);
        bytes memory commitment = _goldenHeader(json, golden, node);
        BatchDisputes disputes = new BatchDisputes(golden, treasury, 1 ether, 1 ether);
        _goldenReceipt(json, disputes, node);
        _goldenCertificate(json, disputes, commitment);
    }

    /// @dev Our ABI encodes the vector's header fields to the vector's calldata, which the ledger accepts.
    function _goldenHeader(string memory json, AttributionLedger golden, address node)
        private
        returns (bytes memory commitment)
    {
        commitment = vm.parseJsonBytes(json, ".certificateV3.commitment");
        uint64 lastTs = uint64(vm.parseJsonUint(json, ".header.lastTimestamp"));
        bytes memory call = abi.encodeCall(
            IAttributionLedger.postBatch,
            (
                uint64(vm.parseJsonUint(json, ".header.firstSeq")),
                uint32(vm.parseJsonUint(json, ".header.count")),
                uint64(vm.parseJsonUint(json, ".header.firstTimestamp")),
                lastTs,
                vm.parseJsonBytes32(json, ".header.root"),
                commitment
            )
        );
        vm.assertEq(call, vm.parseJsonBytes(json, ".header.postBatchCalldata"), "postBatch calldata");
        if (block.timestamp < lastTs) vm.warp(lastTs);
        vm.prank(node);
        (bool ok,) = address(golden).call(call);
        vm.assertTrue(ok, "the vector's header posts");
        IAttributionLedger.Batch memory b = golden.batch(1);
        vm.assertEq(uint256(b.firstTimestamp), vm.parseJsonUint(json, ".header.firstTimestamp"));
        vm.assertEq(uint256(b.lastTimestamp), uint256(lastTs));
        vm.assertEq(b.daCommitmentHash, keccak256(commitment));
    }

    /// @dev The disputes contract computes the vector's receipt digest; the low-s signature recovers the node and
    /// the high-s twin is refused.
    function _goldenReceipt(string memory json, BatchDisputes disputes, address node) private view {
        bytes32 digest = vm.parseJsonBytes32(json, ".receipt.digest");
        uint64 seq = uint64(vm.parseJsonUint(json, ".receipt.seq"));
        vm.assertEq(
            disputes.receiptDigest(node, seq, vm.parseJsonBytes32(json, ".receipt.leaf")), digest, "receipt digest"
        );
        (address signer, ECDSA.RecoverError err,) =
            ECDSA.tryRecover(digest, vm.parseJsonBytes(json, ".receipt.signature"));
        vm.assertTrue(err == ECDSA.RecoverError.NoError && signer == node, "low-s receipt recovers the node");
        (, err,) = ECDSA.tryRecover(digest, vm.parseJsonBytes(json, ".receipt.highS"));
        vm.assertTrue(err == ECDSA.RecoverError.InvalidSignatureS, "high-s receipt refused");
    }

    /// @dev The certificate v3's signing digest and operator, then an availability challenge of batch 1 answered
    /// with the payload's only chunk under the Python-built chunk root.
    function _goldenCertificate(string memory json, BatchDisputes disputes, bytes memory commitment) private {
        bytes memory cert = new bytes(commitment.length - 3);
        for (uint256 i; i < cert.length; ++i) {
            cert[i] = commitment[i + 3];
        }
        bytes32 certDigest = _certDigest(cert);
        vm.assertEq(certDigest, vm.parseJsonBytes32(json, ".certificateV3.digest"), "certificate digest");
        (,,,,,,,, bytes memory sig) =
            abi.decode(cert, (uint8, bytes32, uint32, bytes32, uint32, uint64, uint64, bytes32, bytes));
        vm.assertEq(ECDSA.recover(certDigest, sig), vm.parseJsonAddress(json, ".certificateV3.operator"));
        bytes memory payload = vm.parseJsonBytes(json, ".payload");
        vm.assertEq(vm.parseJsonBytes32(json, ".certificateV3.payloadKeccak"), keccak256(payload));
        vm.assertEq(vm.parseJsonUint(json, ".certificateV3.payloadLength"), payload.length);
        VmDisputes(address(vm)).deal(alice, 1 ether);
        vm.prank(alice);
        uint256 id = disputes.openAvailability{value: 1 ether}(1, 0);
        disputes.resolveAvailability(id, commitment, payload, new bytes32[](0)); // one chunk: the root is its leaf
        vm.assertEq(disputes.dispute(id).leaf, keccak256(payload), "answered with the payload's only chunk");
    }

    /// @dev keccak256(abi.encode(<the certificate's fields without the signature>)) (docs/disputes.md).
    function _certDigest(bytes memory cert) private pure returns (bytes32) {
        (uint8 version, bytes32 payloadKeccak, uint32 len, bytes32 kzg, uint32 blobs, uint64 daSeq,,,) =
            abi.decode(cert, (uint8, bytes32, uint32, bytes32, uint32, uint64, uint64, bytes32, bytes));
        (,,,,,, uint64 storedAt, bytes32 chunksRoot,) =
            abi.decode(cert, (uint8, bytes32, uint32, bytes32, uint32, uint64, uint64, bytes32, bytes));
        return keccak256(abi.encode(version, payloadKeccak, len, kzg, blobs, daSeq, storedAt, chunksRoot));
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
