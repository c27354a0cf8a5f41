// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {INodeRegistry} from "../interfaces/INodeRegistry.sol";
import {Governed} from "./utils/Governed.sol";

/// @title NodeRegistry
/// @notice Node operators bond an ERC-20 stake to become active; unbonding waits `unbondingDelay`; only the slasher
/// (the disputes contract, on a proof) can slash bonded and unbonding stake; governance cannot. See {INodeRegistry}.
contract NodeRegistry is INodeRegistry, Governed, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /*//////////////////////////////////////////////////////////////
                                CONSTANTS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc INodeRegistry
    uint64 public constant MAX_UNBONDING_DELAY = 365 days;

    /// @inheritdoc INodeRegistry
    uint64 public constant MIN_UNBONDING_DELAY = 14 days;

    /*//////////////////////////////////////////////////////////////
                                 STORAGE
    //////////////////////////////////////////////////////////////*/

    IERC20 private immutable _stakeToken;
    uint256 private _minBond;
    uint64 private _unbondingDelay;
    address private _slasher;
    mapping(address node => Node) private _nodes;

    /*//////////////////////////////////////////////////////////////
                               CONSTRUCTOR
    //////////////////////////////////////////////////////////////*/

    /// @param stakeToken_ The ERC-20 used for stake (non-zero).
    /// @param minBond_ The minimum bonded stake of an active node (> 0).
    /// @param unbondingDelay_ Seconds between {requestUnbond} and {withdraw} (in `[MIN_UNBONDING_DELAY,
    /// MAX_UNBONDING_DELAY]`).
    /// @param governance_ The governance address (non-zero).
    constructor(IERC20 stakeToken_, uint256 minBond_, uint64 unbondingDelay_, address governance_)
        Governed(governance_)
    {
        if (address(stakeToken_) == address(0)) revert NodeRegistryZeroAddress();
        if (minBond_ == 0) revert NodeRegistryZeroMinBond();
        _checkDelay(unbondingDelay_);
        _stakeToken = stakeToken_;
        _minBond = minBond_;
        _unbondingDelay = unbondingDelay_;
    }

    /*//////////////////////////////////////////////////////////////
                                 STAKING
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc INodeRegistry
    function bond(uint256 amount) external nonReentrant returns (uint256 credited) {
        if (amount == 0) revert NodeRegistryZeroAmount();
        // Credit what arrived, not what was asked for: a fee-on-transfer token delivers less than `amount`, and
        // crediting `amount` would promise stake the registry does not hold.
        uint256 before = _stakeToken.balanceOf(address(this));
        _stakeToken.safeTransferFrom(msg.sender, address(this), amount);
        credited = _stakeToken.balanceOf(address(this)) - before;
        if (credited == 0) revert NodeRegistryZeroAmount();
        Node storage n = _nodes[msg.sender];
        uint256 bonded = n.bonded + credited;
        n.bonded = bonded;
        n.exitAt = 0; // bonded again: no longer leaving
        emit Bonded(msg.sender, credited, bonded);
    }

    /// @inheritdoc INodeRegistry
    function requestUnbond(uint256 amount) external {
        if (amount == 0) revert NodeRegistryZeroAmount();
        Node storage n = _nodes[msg.sender];
        uint256 bonded = n.bonded;
        if (amount > bonded) revert NodeRegistryInsufficientBond(msg.sender, amount, bonded);
        // unchecked: amount <= bonded was checked just above.
        unchecked {
            n.bonded = bonded - amount;
        }
        uint256 unbonding = n.unbonding + amount;
        uint64 unbondableAt = uint64(block.timestamp) + _unbondingDelay;
        n.unbonding = unbonding;
        n.unbondableAt = unbondableAt;
        // Unbonding everything is leaving: the node has exited once all of it could be withdrawn.
        if (n.bonded == 0) n.exitAt = unbondableAt;
        emit UnbondRequested(msg.sender, amount, unbonding, unbondableAt);
    }

    /// @inheritdoc INodeRegistry
    function withdraw() external returns (uint256 amount) {
        Node storage n = _nodes[msg.sender];
        amount = n.unbonding;
        if (amount == 0) revert NodeRegistryNothingToWithdraw(msg.sender);
        uint64 unbondableAt = n.unbondableAt;
        if (block.timestamp < unbondableAt) {
            revert NodeRegistryUnbondingNotElapsed(msg.sender, unbondableAt, uint64(block.timestamp));
        }
        n.unbonding = 0;
        n.unbondableAt = 0;
        emit Withdrawn(msg.sender, amount);
        _stakeToken.safeTransfer(msg.sender, amount);
    }

    /*//////////////////////////////////////////////////////////////
                                SLASHING
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc INodeRegistry
    function slash(address node_, uint256 amount, address to) external {
        if (msg.sender != _slasher || msg.sender == address(0)) revert NodeRegistryNotSlasher(msg.sender);
        if (amount == 0) revert NodeRegistryZeroAmount();
        if (to == address(0)) revert NodeRegistryZeroAddress();
        Node storage n = _nodes[node_];
        uint256 bonded = n.bonded;
        uint256 unbonding = n.unbonding;
        uint256 stake = bonded + unbonding;
        if (amount > stake) revert NodeRegistrySlashExceedsStake(node_, amount, stake);
        // Bonded stake first, then unbonding: requesting an unbond does not escape a slash.
        // unchecked: each subtraction is bounded by the min/compare right before it and amount <= stake.
        unchecked {
            if (amount <= bonded) {
                n.bonded = bonded - amount;
            } else {
                n.bonded = 0;
                n.unbonding = unbonding - (amount - bonded);
                if (n.unbonding == 0) n.unbondableAt = 0;
            }
        }
        // A slash that takes the whole bond starts the exit clock, as if the node had asked to leave now: it never
        // makes the node "exited" at once (its fee credit stays until its batches are paid for).
        if (n.bonded == 0 && n.exitAt == 0) n.exitAt = uint64(block.timestamp) + _unbondingDelay;
        emit Slashed(node_, amount, to);
        _stakeToken.safeTransfer(to, amount);
    }

    /*//////////////////////////////////////////////////////////////
                               GOVERNANCE
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc INodeRegistry
    function setSlasher(address newSlasher) external onlyOwner {
        address old = _slasher;
        _slasher = newSlasher;
        emit SlasherChanged(old, newSlasher);
    }

    /// @inheritdoc INodeRegistry
    function setMinBond(uint256 newMinBond) external onlyOwner {
        if (newMinBond == 0) revert NodeRegistryZeroMinBond();
        uint256 old = _minBond;
        _minBond = newMinBond;
        emit MinBondChanged(old, newMinBond);
    }

    /// @inheritdoc INodeRegistry
    function setUnbondingDelay(uint64 newDelay) external onlyOwner {
        _checkDelay(newDelay);
        uint64 old = _unbondingDelay;
        _unbondingDelay = newDelay;
        emit UnbondingDelayChanged(old, newDelay);
    }

    /*//////////////////////////////////////////////////////////////
                                  VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc INodeRegistry
    function isActive(address node_) external view returns (bool) {
        return _nodes[node_].bonded >= _minBond;
    }

    /// @inheritdoc INodeRegistry
    function hasExited(address node_) external view returns (bool) {
        Node storage n = _nodes[node_];
        // bonded == 0 with exitAt == 0 only for an address that never bonded: it never could post.
        return n.bonded == 0 && block.timestamp >= n.exitAt;
    }

    /// @inheritdoc INodeRegistry
    function slasher() external view returns (address) {
        return _slasher;
    }

    /// @inheritdoc INodeRegistry
    function node(address node_) external view returns (Node memory) {
        return _nodes[node_];
    }

    /// @inheritdoc INodeRegistry
    function stakeToken() external view returns (IERC20) {
        return _stakeToken;
    }

    /// @inheritdoc INodeRegistry
    function minBond() external view returns (uint256) {
        return _minBond;
    }

    /// @inheritdoc INodeRegistry
    function unbondingDelay() external view returns (uint64) {
        return _unbondingDelay;
    }

    /// @inheritdoc INodeRegistry
    function governance() public view override(INodeRegistry, Governed) returns (address) {
        return owner();
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNALS
    //////////////////////////////////////////////////////////////*/

    function _checkDelay(uint64 delay) private pure {
        if (delay < MIN_UNBONDING_DELAY) revert NodeRegistryDelayTooShort(delay, MIN_UNBONDING_DELAY);
        if (delay > MAX_UNBONDING_DELAY) revert NodeRegistryDelayTooLong(delay, MAX_UNBONDING_DELAY);
    }
}
