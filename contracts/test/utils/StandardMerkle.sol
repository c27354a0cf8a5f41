// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";

/// @title StandardMerkle
/// @notice Reference implementation (tests only) of OpenZeppelin StandardMerkleTree's tree shape: leaves sorted
/// ascending, laid out at the end of a `2n-1` array in reverse, inner nodes = commutative keccak of the children.
/// Checked against the npm merkle-tree library of OpenZeppelin by a golden root in StandardMerkle.t.sol.
library StandardMerkle {
    /// @dev Build the tree over `leaves` (already double-hashed). Returns the node array; `tree[0]` is the root.
    function build(bytes32[] memory leaves) internal pure returns (bytes32[] memory tree) {
        uint256 n = leaves.length;
        require(n > 0, "StandardMerkle: no leaves");
        bytes32[] memory sorted = _sorted(leaves);
        tree = new bytes32[](2 * n - 1);
        for (uint256 i; i < n; ++i) {
            tree[tree.length - 1 - i] = sorted[i];
        }
        for (uint256 i = tree.length - n; i > 0; --i) {
            uint256 j = i - 1;
            tree[j] = Hashes.commutativeKeccak256(tree[2 * j + 1], tree[2 * j + 2]);
        }
    }

    /// @dev The root over `leaves`.
    function root(bytes32[] memory leaves) internal pure returns (bytes32) {
        return build(leaves)[0];
    }

    /// @dev The proof of `leaf` (which must be in `tree`).
    function proof(bytes32[] memory tree, bytes32 leaf) internal pure returns (bytes32[] memory p) {
        uint256 n = (tree.length + 1) / 2;
        uint256 idx = type(uint256).max;
        for (uint256 i = tree.length - n; i < tree.length; ++i) {
            if (tree[i] == leaf) {
                idx = i;
                break;
            }
        }
        require(idx != type(uint256).max, "StandardMerkle: leaf not in tree");
        uint256 depth;
        for (uint256 j = idx; j > 0; j = (j - 1) / 2) {
            ++depth;
        }
        p = new bytes32[](depth);
        uint256 k;
        for (uint256 j = idx; j > 0; j = (j - 1) / 2) {
            p[k++] = tree[j % 2 == 1 ? j + 1 : j - 1];
        }
    }

    function _sorted(bytes32[] memory a) private pure returns (bytes32[] memory s) {
        s = new bytes32[](a.length);
        for (uint256 i; i < a.length; ++i) {
            s[i] = a[i];
        }
        // Insertion sort: test trees are small.
        for (uint256 i = 1; i < s.length; ++i) {
            bytes32 v = s[i];
            uint256 j = i;
            while (j > 0 && s[j - 1] > v) {
                s[j] = s[j - 1];
                --j;
            }
            s[j] = v;
        }
    }
}
