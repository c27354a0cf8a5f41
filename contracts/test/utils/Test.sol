// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {Vm} from "./Vm.sol";

/// @title Test
/// @notice Minimal test base (forge-std is not vendored): the cheatcode handle, `bound`, `makeAddr`, and the
/// invariant-target views forge reads (`targetContracts`, `targetSelectors`, `targetSenders`), as forge-std's
/// StdInvariant exposes them.
abstract contract Test {
    /// @dev Forge's cheatcode address: address(uint160(uint256(keccak256("hevm cheat code")))).
    Vm internal constant vm = Vm(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);

    /// @dev Forge decodes this shape from {targetSelectors}.
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    address[] private _targetedContracts;
    FuzzSelector[] private _targetedSelectors;
    address[] private _targetedSenders;

    // ---- invariant targets (read by forge) ----

    /// @notice Contracts the invariant fuzzer calls.
    function targetContracts() public view returns (address[] memory) {
        return _targetedContracts;
    }

    /// @notice Selectors the invariant fuzzer calls, per contract.
    function targetSelectors() public view returns (FuzzSelector[] memory) {
        return _targetedSelectors;
    }

    /// @notice Senders the invariant fuzzer uses (empty: forge picks).
    function targetSenders() public view returns (address[] memory) {
        return _targetedSenders;
    }

    function targetContract(address target) internal {
        _targetedContracts.push(target);
    }

    function targetSelector(FuzzSelector memory selector) internal {
        _targetedSelectors.push(selector);
    }

    function targetSender(address sender) internal {
        _targetedSenders.push(sender);
    }

    // ---- helpers ----

    /// @dev Map `x` into `[min, max]` (inclusive) without discarding runs, keeping in-range values unchanged.
    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        require(min <= max, "bound: max < min");
        if (x >= min && x <= max) return x;
        if (min == 0 && max == type(uint256).max) return x;
        uint256 size = max - min + 1;
        return min + (x % size);
    }

    /// @dev A labelled address derived from `name`.
    function makeAddr(string memory name) internal returns (address a) {
        a = vm.addr(uint256(keccak256(bytes(name))));
        vm.label(a, name);
    }
}
