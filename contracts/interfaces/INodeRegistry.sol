// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title INodeRegistry
/// @notice Node operators bond an ERC-20 stake to become active. Unbonding is a two-step process (request, then
/// withdraw after `unbondingDelay`); stake stays slashable until it is withdrawn. The unbonding delay never goes
/// below {MIN_UNBONDING_DELAY}, which exceeds the longest dispute window (the RewardDistributor's
/// `MAX_CHALLENGE_WINDOW`), so a node cannot post, unbond and leave before its batches can be disputed. Only the
/// {slasher} (the disputes contract, which slashes on a proof) can slash; governance cannot, it only sets the
/// parameters and the slasher (through a timelock whose delay exceeds the unbonding delay, so a node can leave first).
/// "Exited" is a timestamp ({Node-exitAt}): a slash never makes a node exited at once.
/// @dev Deployed as `constructor(IERC20 stakeToken, uint256 minBond, uint64 unbondingDelay, address governance)`
/// (`unbondingDelay` in `[MIN_UNBONDING_DELAY, MAX_UNBONDING_DELAY]`).
/// Governance is an OpenZeppelin `Ownable2Step` owner (`transferOwnership` + `acceptOwnership`; renouncing is
/// disabled); calls from anyone else revert with OZ's `OwnableUnauthorizedAccount(address)`.
interface INodeRegistry {
    /*//////////////////////////////////////////////////////////////
                                 STRUCTS
    //////////////////////////////////////////////////////////////*/

    /// @notice A node's stake as returned by {node}.
    /// @param bonded Stake that counts towards {isActive}.
    /// @param unbonding Stake requested for withdrawal, withdrawable at `unbondableAt`.
    /// @param unbondableAt Timestamp from which `unbonding` can be withdrawn (0 when nothing is unbonding).
    /// @param exitAt When the node has left (0 while it has bonded stake and asked for nothing): set when it unbonds
    /// its whole bond (to that request's `unbondableAt`) or a slash takes its whole bond (now + unbonding delay);
    /// cleared when it bonds again.
    struct Node {
        uint256 bonded;
        uint256 unbonding;
        uint64 unbondableAt;
        uint64 exitAt;
    }

    /*//////////////////////////////////////////////////////////////
                                 EVENTS
    //////////////////////////////////////////////////////////////*/

    /// @notice Emitted when `node` bonded `amount` (the amount the registry actually received), bringing its bonded
    /// stake to `bonded`.
    event Bonded(address indexed node, uint256 amount, uint256 bonded);

    /// @notice Emitted when `node` requested to unbond `amount`; `unbonding` is its total unbonding stake, which
    /// becomes withdrawable at `unbondableAt` (each request restarts the delay).
    event UnbondRequested(address indexed node, uint256 amount, uint256 unbonding, uint64 unbondableAt);

    /// @notice Emitted when `node` withdrew `amount` of unbonded stake.
    event Withdrawn(address indexed node, uint256 amount);

    /// @notice Emitted when the slasher slashed `amount` of `node`'s stake and sent it to `to`.
    event Slashed(address indexed node, uint256 amount, address indexed to);

    /// @notice Emitted when governance changed the slasher (address(0): nobody can slash).
    event SlasherChanged(address indexed oldSlasher, address indexed newSlasher);
    /// @notice Emitted when governance changed the minimum bond.
    event MinBondChanged(uint256 oldMinBond, uint256 newMinBond);

    /// @notice Emitted when governance changed the unbonding delay.
    event UnbondingDelayChanged(uint64 oldDelay, uint64 newDelay);

    /*//////////////////////////////////////////////////////////////
                                 ERRORS
    //////////////////////////////////////////////////////////////*/

    /// @notice The amount must be non-zero (for {bond}: the amount received, after any transfer fee).
    error NodeRegistryZeroAmount();

    /// @notice An address argument (stake token, governance, slash recipient) was zero.
    error NodeRegistryZeroAddress();

    /// @notice The minimum bond must be non-zero (a zero bond would make every address active).
    error NodeRegistryZeroMinBond();

    /// @notice The unbonding delay exceeds the maximum.
    /// @param delay The delay asked for.
    /// @param max The maximum delay ({MAX_UNBONDING_DELAY}).
    error NodeRegistryDelayTooLong(uint64 delay, uint64 max);

    /// @notice The unbonding delay is below the floor.
    /// @param delay The delay asked for.
    /// @param min The minimum delay ({MIN_UNBONDING_DELAY}).
    error NodeRegistryDelayTooShort(uint64 delay, uint64 min);

    /// @notice `node` asked to unbond more than it has bonded.
    /// @param node The node.
    /// @param requested The amount asked for.
    /// @param bonded The node's bonded stake.
    error NodeRegistryInsufficientBond(address node, uint256 requested, uint256 bonded);

    /// @notice `node` has no unbonding stake to withdraw; call {requestUnbond} first.
    error NodeRegistryNothingToWithdraw(address node);

    /// @notice The unbonding delay has not elapsed yet; retry at or after `unbondableAt`.
    /// @param node The node.
    /// @param unbondableAt When the stake becomes withdrawable.
    /// @param nowTs The current block timestamp.
    error NodeRegistryUnbondingNotElapsed(address node, uint64 unbondableAt, uint64 nowTs);

    /// @notice Only the slasher (the disputes contract) may slash; governance cannot.
    error NodeRegistryNotSlasher(address caller);
    /// @notice The slasher tried to slash more than `node`'s total (bonded + unbonding) stake.
    /// @param node The node.
    /// @param amount The amount asked for.
    /// @param stake The node's total stake.
    error NodeRegistrySlashExceedsStake(address node, uint256 amount, uint256 stake);

    /*//////////////////////////////////////////////////////////////
                                FUNCTIONS
    //////////////////////////////////////////////////////////////*/

    /// @notice Bond `amount` of the stake token for the caller (pulled with `transferFrom`; approve first). The
    /// caller is credited with what the registry's balance actually grew by (a fee-on-transfer token credits less).
    /// @param amount The amount to pull (> 0).
    /// @return credited The amount added to the caller's bonded stake.
    function bond(uint256 amount) external returns (uint256 credited);

    /// @notice Move `amount` of the caller's bonded stake to unbonding; withdrawable after the unbonding delay.
    /// Each request restarts the delay for the whole unbonding amount. The node stops being active as soon as its
    /// bonded stake falls below `minBond`.
    /// @param amount The amount to unbond (> 0, ≤ bonded).
    function requestUnbond(uint256 amount) external;

    /// @notice Withdraw all of the caller's unbonding stake once the delay has elapsed.
    /// @return amount The amount transferred to the caller.
    function withdraw() external returns (uint256 amount);

    /// @notice Slasher only: take `amount` from `node`'s stake (bonded first, then unbonding) and send it to `to`.
    /// @param node The node to slash.
    /// @param amount The amount (> 0, ≤ bonded + unbonding).
    /// @param to The recipient (non-zero).
    function slash(address node, uint256 amount, address to) external;

    /// @notice Governance only: set the slasher (address(0): nobody can slash). Timelocked on a real chain.
    function setSlasher(address newSlasher) external;
    /// @notice Governance only: set the minimum bond for {isActive} (> 0).
    function setMinBond(uint256 newMinBond) external;

    /// @notice Governance only: set the unbonding delay for future requests (in `[MIN_UNBONDING_DELAY,
    /// MAX_UNBONDING_DELAY]`).
    function setUnbondingDelay(uint64 newDelay) external;

    /// @notice Whether `node` may post batches: its bonded stake is at least `minBond`.
    function isActive(address node) external view returns (bool);

    /// @notice Whether `node` has left: no bonded stake, and its `exitAt` has passed (it unbonded everything, or a
    /// slash took its bond, at least an unbonding delay ago), or it never bonded. The
    /// RewardDistributor lets only such a node withdraw its unused fee credit (and only once its batches are paid).
    function hasExited(address node) external view returns (bool);
    /// @notice The only address that may {slash} (address(0) until governance sets the disputes contract).
    function slasher() external view returns (address);

    /// @notice `node`'s stake.
    function node(address node_) external view returns (Node memory);

    /// @notice The ERC-20 used for stake.
    function stakeToken() external view returns (IERC20);

    /// @notice The minimum bonded stake of an active node.
    function minBond() external view returns (uint256);

    /// @notice The delay between {requestUnbond} and {withdraw}, in seconds.
    function unbondingDelay() external view returns (uint64);

    /// @notice The current governance address (the Ownable2Step owner).
    function governance() external view returns (address);

    /// @notice The upper bound for {unbondingDelay} (365 days).
    function MAX_UNBONDING_DELAY() external view returns (uint64);

    /// @notice The lower bound for {unbondingDelay} (14 days: above the longest dispute window, the
    /// RewardDistributor's 7-day `MAX_CHALLENGE_WINDOW`, with a week for the last epoch of a leaving node).
    function MIN_UNBONDING_DELAY() external view returns (uint64);
}
