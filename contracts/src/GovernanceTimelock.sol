// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

// Governance of every contract on a real chain is OpenZeppelin's TimelockController, unchanged (DESIGN.md
// "Contracts"): importing it here makes `forge build` emit its artifact (out/TimelockController.sol/) for the Python
// deploy, which sets a delay of at least the RewardDistributor's challenge window.
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
