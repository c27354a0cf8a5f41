// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

import {INodeRegistry} from "../interfaces/INodeRegistry.sol";
import {IRewardDistributor} from "../interfaces/IRewardDistributor.sol";

/// @title GovernanceTimelock
/// @notice Governance of every contract on a real chain: OpenZeppelin's `TimelockController` whose delay never goes
/// below the NodeRegistry's unbonding delay plus the RewardDistributor's challenge window (read live, so raising
/// either raises the floor), and whose guardian may cancel any scheduled operation. So an honest node always sees a
/// governance action coming in time to unbond and leave, with its last epoch settled, before it executes (the
/// "exit window" rule). `updateDelay` may store a lower figure, but {getMinDelay} never returns less than the floor.
/// @dev Self-administered (no admin). The deployer binds the two contracts once, right after deploying them (they
/// take the timelock's address as governance, so they are deployed after it).
contract GovernanceTimelock is TimelockController {
    /// @notice The contracts are already bound, or the caller is not the deployer.
    error TimelockAlreadyBound();

    /// @notice A bound address was zero.
    error TimelockZeroAddress();

    /// @notice Emitted when the deployer bound the contracts whose parameters make the delay floor.
    event FloorBound(INodeRegistry nodeRegistry, IRewardDistributor distributor);

    address private immutable _binder;
    INodeRegistry private _nodeRegistry;
    IRewardDistributor private _distributor;

    /// @param minDelay The initial delay (the floor applies on top once bound).
    /// @param proposers Who may schedule (and cancel) operations.
    /// @param executors Who may execute ready operations.
    /// @param guardian Who may cancel scheduled operations (the RewardDistributor's guardian; non-zero).
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors, address guardian)
        TimelockController(minDelay, proposers, executors, address(0))
    {
        if (guardian == address(0)) revert TimelockZeroAddress();
        _grantRole(CANCELLER_ROLE, guardian);
        _binder = msg.sender;
    }

    /// @notice Deployer only, once: bind the contracts whose unbonding delay and challenge window make the floor.
    function bindFloor(INodeRegistry nodeRegistry_, IRewardDistributor distributor_) external {
        if (msg.sender != _binder || address(_nodeRegistry) != address(0)) revert TimelockAlreadyBound();
        if (address(nodeRegistry_) == address(0) || address(distributor_) == address(0)) {
            revert TimelockZeroAddress();
        }
        _nodeRegistry = nodeRegistry_;
        _distributor = distributor_;
        emit FloorBound(nodeRegistry_, distributor_);
    }

    /// @notice The lowest delay any operation can be scheduled with: unbonding delay + challenge window (0 before
    /// {bindFloor}).
    function delayFloor() public view returns (uint256) {
        if (address(_nodeRegistry) == address(0)) return 0;
        return uint256(_nodeRegistry.unbondingDelay()) + _distributor.challengeWindow();
    }

    /// @notice The delay operations are scheduled with at least: the stored delay or the floor, whichever is higher.
    function getMinDelay() public view override returns (uint256) {
        uint256 stored = super.getMinDelay();
        uint256 floor = delayFloor();
        return stored > floor ? stored : floor;
    }
}
