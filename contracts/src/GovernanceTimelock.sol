// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title GovernanceTimelock
/// @notice Governance of every contract on a real chain is OpenZeppelin's `TimelockController`, deployed unchanged
/// from its own artifact (`out/TimelockController.sol/`) by the Python deploy with a delay of at least the
/// RewardDistributor's challenge window (DESIGN.md "Contracts"). This file only makes `forge build` compile it; the
/// abstract contract adds nothing and is never deployed.
abstract contract GovernanceTimelock is TimelockController {}
