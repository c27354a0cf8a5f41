// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

import {IRewardDistributor} from "../interfaces/IRewardDistributor.sol";
import {Governed} from "./utils/Governed.sol";

/// @title RewardDistributor
/// @notice Cumulative Merkle reward claims with a challenge window and a guardian veto. See {IRewardDistributor}.
contract RewardDistributor is IRewardDistributor, Governed {
    using SafeERC20 for IERC20;

    /*//////////////////////////////////////////////////////////////
                                CONSTANTS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IRewardDistributor
    uint64 public constant MAX_CHALLENGE_WINDOW = 30 days;

    uint256 private constant _BPS = 10_000;

    /*//////////////////////////////////////////////////////////////
                                 STORAGE
    //////////////////////////////////////////////////////////////*/

    IERC20 private immutable _token;
    address private _poster;
    address private _guardian;
    address private _treasury;
    uint64 private _challengeWindow;
    uint16 private _nodeShareBps;
    uint16 private _adapterShareBps;
    /// @dev The latest proposed epoch (pending, claimable or vetoed).
    uint64 private _latestEpoch;
    /// @dev The last epoch known to be claimable when a newer one was proposed; {currentEpoch} may be newer.
    uint64 private _settledEpoch;
    uint256 private _totalClaimed;
    mapping(uint64 epoch => Proposal) private _proposals;
    mapping(address account => uint256) private _claimed;

    /*//////////////////////////////////////////////////////////////
                               CONSTRUCTOR
    //////////////////////////////////////////////////////////////*/

    /// @param token_ The reward token (non-zero).
    /// @param governance_ Governance (non-zero): sets parameters and roles.
    /// @param poster_ Proposes roots (non-zero).
    /// @param guardian_ Vetoes roots during their window (non-zero).
    /// @param treasury_ Receives rounding dust in the off-chain computation (non-zero).
    /// @param challengeWindow_ Seconds before a proposed root becomes claimable (≤ {MAX_CHALLENGE_WINDOW}).
    constructor(
        IERC20 token_,
        address governance_,
        address poster_,
        address guardian_,
        address treasury_,
        uint64 challengeWindow_
    ) Governed(governance_) {
        if (
            address(token_) == address(0) || poster_ == address(0) || guardian_ == address(0) || treasury_ == address(0)
        ) revert DistributorZeroAddress();
        if (challengeWindow_ > MAX_CHALLENGE_WINDOW) {
            revert DistributorWindowTooLong(challengeWindow_, MAX_CHALLENGE_WINDOW);
        }
        _token = token_;
        _poster = poster_;
        _guardian = guardian_;
        _treasury = treasury_;
        _challengeWindow = challengeWindow_;
        _nodeShareBps = 2000;
        _adapterShareBps = 3000;
    }

    /*//////////////////////////////////////////////////////////////
                                  ROOTS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IRewardDistributor
    function proposeRoot(uint64 epoch, bytes32 root, uint256 total, bytes calldata payloadCommitment) external {
        if (msg.sender != _poster) revert DistributorNotPoster(msg.sender);
        if (root == bytes32(0)) revert DistributorZeroRoot();
        uint64 latest = _latestEpoch;
        if (latest != 0) {
            Proposal storage last = _proposals[latest];
            if (last.vetoed) {
                if (epoch < latest) revert DistributorEpochNotIncreasing(epoch, latest);
            } else {
                if (epoch <= latest) revert DistributorEpochNotIncreasing(epoch, latest);
                if (block.timestamp < last.claimableAt) revert DistributorWindowOpen(latest, last.claimableAt);
                _settledEpoch = latest;
            }
        } else if (epoch == 0) {
            revert DistributorEpochNotIncreasing(epoch, latest);
        }
        uint256 previous = _proposals[_settledEpoch].total;
        if (total < previous) revert DistributorTotalDecreased(total, previous);
        uint256 funded = totalFunded();
        if (total > funded) revert DistributorUnderfunded(total, funded);

        uint64 claimableAt = uint64(block.timestamp) + _challengeWindow;
        _latestEpoch = epoch;
        _proposals[epoch] = Proposal({
            root: root,
            total: total,
            payloadCommitmentHash: keccak256(payloadCommitment),
            proposedAt: uint64(block.timestamp),
            claimableAt: claimableAt,
            vetoed: false
        });
        emit RootProposed(epoch, root, total, claimableAt, payloadCommitment);
    }

    /// @inheritdoc IRewardDistributor
    function vetoRoot(uint64 epoch) external {
        if (msg.sender != _guardian) revert DistributorNotGuardian(msg.sender);
        if (epoch == 0 || epoch != _latestEpoch) revert DistributorUnknownEpoch(epoch);
        Proposal storage p = _proposals[epoch];
        if (p.vetoed || block.timestamp >= p.claimableAt) revert DistributorWindowClosed(epoch, p.claimableAt);
        p.vetoed = true;
        emit RootVetoed(epoch, p.root);
    }

    /*//////////////////////////////////////////////////////////////
                                 CLAIMS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IRewardDistributor
    function claim(address account, uint256 cumulativeAmount, bytes32 expectedRoot, bytes32[] calldata proof)
        external
        returns (uint256 amount)
    {
        // check
        if (account == address(0)) revert DistributorZeroAddress();
        bytes32 current = _proposals[_currentEpoch()].root;
        if (current == bytes32(0)) revert DistributorNoRoot();
        if (expectedRoot != current) revert DistributorRootMismatch(expectedRoot, current);
        // verify
        if (!MerkleProof.verifyCalldata(proof, current, claimLeaf(account, cumulativeAmount))) {
            revert DistributorInvalidProof(account, cumulativeAmount);
        }
        uint256 already = _claimed[account];
        if (cumulativeAmount <= already) revert DistributorNothingToClaim(account, cumulativeAmount, already);
        // mark; unchecked: cumulativeAmount > already was checked just above.
        unchecked {
            amount = cumulativeAmount - already;
        }
        _claimed[account] = cumulativeAmount;
        _totalClaimed += amount;
        // transfer
        _token.safeTransfer(account, amount);
        // emit
        emit Claimed(account, amount, cumulativeAmount, current);
    }

    /// @inheritdoc IRewardDistributor
    function fund(uint256 amount) external {
        if (amount == 0) revert DistributorZeroAmount();
        _token.safeTransferFrom(msg.sender, address(this), amount);
        emit Funded(msg.sender, amount);
    }

    /*//////////////////////////////////////////////////////////////
                               GOVERNANCE
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IRewardDistributor
    function setShares(uint16 nodeShareBps_, uint16 adapterShareBps_) external onlyOwner {
        uint256 sum = uint256(nodeShareBps_) + adapterShareBps_;
        if (sum > _BPS) revert DistributorSharesTooHigh(sum);
        _nodeShareBps = nodeShareBps_;
        _adapterShareBps = adapterShareBps_;
        emit SharesChanged(nodeShareBps_, adapterShareBps_);
    }

    /// @inheritdoc IRewardDistributor
    function setPoster(address newPoster) external onlyOwner {
        if (newPoster == address(0)) revert DistributorZeroAddress();
        address old = _poster;
        _poster = newPoster;
        emit PosterChanged(old, newPoster);
    }

    /// @inheritdoc IRewardDistributor
    function setGuardian(address newGuardian) external onlyOwner {
        if (newGuardian == address(0)) revert DistributorZeroAddress();
        address old = _guardian;
        _guardian = newGuardian;
        emit GuardianChanged(old, newGuardian);
    }

    /// @inheritdoc IRewardDistributor
    function setTreasury(address newTreasury) external onlyOwner {
        if (newTreasury == address(0)) revert DistributorZeroAddress();
        address old = _treasury;
        _treasury = newTreasury;
        emit TreasuryChanged(old, newTreasury);
    }

    /// @inheritdoc IRewardDistributor
    function setChallengeWindow(uint64 newWindow) external onlyOwner {
        if (newWindow > MAX_CHALLENGE_WINDOW) revert DistributorWindowTooLong(newWindow, MAX_CHALLENGE_WINDOW);
        uint64 old = _challengeWindow;
        _challengeWindow = newWindow;
        emit ChallengeWindowChanged(old, newWindow);
    }

    /*//////////////////////////////////////////////////////////////
                                  VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IRewardDistributor
    function currentRoot() external view returns (bytes32) {
        return _proposals[_currentEpoch()].root;
    }

    /// @inheritdoc IRewardDistributor
    function currentEpoch() external view returns (uint64) {
        return _currentEpoch();
    }

    /// @inheritdoc IRewardDistributor
    function latestEpoch() external view returns (uint64) {
        return _latestEpoch;
    }

    /// @inheritdoc IRewardDistributor
    function proposal(uint64 epoch) external view returns (Proposal memory) {
        return _proposals[epoch];
    }

    /// @inheritdoc IRewardDistributor
    function claimLeaf(address account, uint256 cumulativeAmount) public view returns (bytes32) {
        return keccak256(
            bytes.concat(
                keccak256(abi.encode(block.chainid, address(this), account, address(_token), cumulativeAmount))
            )
        );
    }

    /// @inheritdoc IRewardDistributor
    function claimed(address account) external view returns (uint256) {
        return _claimed[account];
    }

    /// @inheritdoc IRewardDistributor
    function totalClaimed() external view returns (uint256) {
        return _totalClaimed;
    }

    /// @inheritdoc IRewardDistributor
    function totalFunded() public view returns (uint256) {
        return _token.balanceOf(address(this)) + _totalClaimed;
    }

    /// @inheritdoc IRewardDistributor
    function token() external view returns (IERC20) {
        return _token;
    }

    /// @inheritdoc IRewardDistributor
    function poster() external view returns (address) {
        return _poster;
    }

    /// @inheritdoc IRewardDistributor
    function guardian() external view returns (address) {
        return _guardian;
    }

    /// @inheritdoc IRewardDistributor
    function treasury() external view returns (address) {
        return _treasury;
    }

    /// @inheritdoc IRewardDistributor
    function challengeWindow() external view returns (uint64) {
        return _challengeWindow;
    }

    /// @inheritdoc IRewardDistributor
    function nodeShareBps() external view returns (uint16) {
        return _nodeShareBps;
    }

    /// @inheritdoc IRewardDistributor
    function adapterShareBps() external view returns (uint16) {
        return _adapterShareBps;
    }

    /// @inheritdoc IRewardDistributor
    function governance() public view override(IRewardDistributor, Governed) returns (address) {
        return owner();
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNALS
    //////////////////////////////////////////////////////////////*/

    /// @dev The latest proposed epoch if its window passed and it was not vetoed, else the last settled one.
    function _currentEpoch() private view returns (uint64) {
        uint64 latest = _latestEpoch;
        if (latest != 0) {
            Proposal storage p = _proposals[latest];
            if (!p.vetoed && block.timestamp >= p.claimableAt) return latest;
        }
        return _settledEpoch;
    }
}
