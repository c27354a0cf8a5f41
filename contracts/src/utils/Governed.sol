// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";

/// @title Governed
/// @notice Two-step governance (OpenZeppelin `Ownable2Step`) that cannot be renounced: a registry or distributor
/// without governance could never be re-parameterised (or given its slasher) again.
abstract contract Governed is Ownable2Step {
    /// @notice Renouncing governance is disabled; transfer it with `transferOwnership` + `acceptOwnership`.
    error GovernanceRenounceDisabled();

    /// @param governance_ The initial governance address (non-zero, else OZ's `OwnableInvalidOwner(address(0))`).
    constructor(address governance_) Ownable(governance_) {}

    /// @notice The current governance address (the owner).
    function governance() public view virtual returns (address) {
        return owner();
    }

    /// @notice Always reverts with {GovernanceRenounceDisabled}.
    function renounceOwnership() public view override onlyOwner {
        revert GovernanceRenounceDisabled();
    }
}
