// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {StandardMerkle} from "../utils/StandardMerkle.sol";

/// @dev Cheatcodes the dispute tests need beyond test/utils/Vm.sol (same address; kept here so the shared Vm stays as
/// the contracts suite has it).
interface VmDisputes {
    function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);
    function deal(address account, uint256 newBalance) external;
}

/// @title DisputesKit
/// @notice Test-side reference of the availability encoding (docs/disputes.md): deterministic payloads, their
/// 126,976-byte chunks, the StandardMerkleTree over `(uint256 index, bytes32 keccak256(chunk))` and a certificate v3
/// commitment `0x01 0x00 0xd0 ‖ abi.encode(3, payloadKeccak, payloadLength, kzgCommitmentsHash, blobCount,
/// daSequence, storedAt, chunksRoot, operatorSignature)`.
library DisputesKit {
    uint256 internal constant CHUNK_BYTES = 126_976;

    /// @dev `len` deterministic bytes from `seed` (32 at a time: a full chunk is 3968 words).
    function payload(uint256 seed, uint256 len) internal pure returns (bytes memory p) {
        p = new bytes(len);
        uint256 words = (len + 31) / 32;
        for (uint256 i; i < words; ++i) {
            bytes32 w = keccak256(abi.encode(seed, i));
            // the last word may run past `len`: `new bytes` rounds its allocation up to whole words
            assembly ("memory-safe") {
                mstore(add(add(p, 32), mul(i, 32)), w)
            }
        }
    }

    function chunkCount(uint256 len) internal pure returns (uint256) {
        return (len + CHUNK_BYTES - 1) / CHUNK_BYTES;
    }

    function chunk(bytes memory p, uint256 index) internal pure returns (bytes memory c) {
        uint256 start = index * CHUNK_BYTES;
        uint256 end = start + CHUNK_BYTES < p.length ? start + CHUNK_BYTES : p.length;
        c = new bytes(end - start);
        for (uint256 i; i < c.length; i += 32) {
            assembly ("memory-safe") {
                mstore(add(add(c, 32), i), mload(add(add(p, 32), add(start, i))))
            }
        }
    }

    function chunkLeaf(uint256 index, bytes32 chunkHash) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(index, chunkHash))));
    }

    /// @dev The chunk tree's leaves, in chunk order.
    function chunkLeaves(bytes memory p) internal pure returns (bytes32[] memory leaves) {
        uint256 n = chunkCount(p.length);
        leaves = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            leaves[i] = chunkLeaf(i, keccak256(chunk(p, i)));
        }
    }

    function chunkProof(bytes memory p, uint256 index) internal pure returns (bytes32[] memory) {
        bytes32[] memory leaves = chunkLeaves(p);
        return StandardMerkle.proof(StandardMerkle.build(leaves), leaves[index]);
    }

    /// @dev A certificate v3 commitment for `p` (the operator signature is filler: the contract does not check it).
    function commitmentV3(bytes memory p, uint256 daSequence) internal pure returns (bytes memory) {
        bytes32 root = StandardMerkle.root(chunkLeaves(p));
        return commitmentWith(3, p.length, root, daSequence);
    }

    function commitmentWith(uint8 version, uint256 len, bytes32 chunksRoot, uint256 daSequence)
        internal
        pure
        returns (bytes memory)
    {
        bytes memory sig = new bytes(65);
        sig[64] = 0x1b;
        // forge-lint: disable-next-line(unsafe-typecast) -- test payloads are far below 4 GiB
        uint32 len32 = uint32(len);
        // forge-lint: disable-next-line(unsafe-typecast) -- a test sequence number; truncation is harmless
        uint64 seq64 = uint64(daSequence);
        bytes memory cert = abi.encode(
            version,
            keccak256(abi.encode(len, chunksRoot)),
            len32,
            bytes32(0),
            uint32(0),
            seq64,
            uint64(1_700_000_000),
            chunksRoot,
            sig
        );
        return bytes.concat(hex"0100d0", cert);
    }
}
