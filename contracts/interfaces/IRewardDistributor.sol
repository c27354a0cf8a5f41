// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title IRewardDistributor
/// @notice Cumulative Merkle reward claims. Per epoch the poster proposes a root over every account's cumulative
/// reward; the root becomes claimable once its challenge window has passed, unless the guardian vetoed it.
/// `claim` pays `cumulativeAmount - claimed[account]` against the current root, which the caller must name
/// (`expectedRoot`), so a root cannot be swapped under a claimant.
/// @dev Deployed as `constructor(IERC20 token, address governance, address poster, address guardian,
/// address treasury, uint64 challengeWindow)` (all addresses non-zero, window ≤ {MAX_CHALLENGE_WINDOW}).
/// Governance is an OpenZeppelin `Ownable2Step` owner (renouncing disabled; others get
/// `OwnableUnauthorizedAccount(address)`).
/// Leaf: `keccak256(bytes.concat(keccak256(abi.encode(block.chainid, address(this), account, address(token),
/// cumulativeAmount))))` — StandardMerkleTree over `(uint256, address, address, address, uint256)`.
/// Funding: {totalFunded} = token balance + {totalClaimed} (so {fund} and plain transfers both count). A root's
/// `total` is the sum of all cumulative amounts in its tree; it must be ≤ {totalFunded} and ≥ the total of the
/// root it follows (cumulative totals never decrease), i.e. each epoch adds at most "funded minus committed".
/// Only one proposal can be in its window at a time. Epochs strictly increase, except that a vetoed latest epoch
/// may be proposed again.
interface IRewardDistributor {
    /*//////////////////////////////////////////////////////////////
                                 STRUCTS
    //////////////////////////////////////////////////////////////*/

    /// @notice A proposed root as returned by {proposal}.
    /// @param root The Merkle root of cumulative amounts.
    /// @param total The sum of all cumulative amounts in the tree.
    /// @param payloadCommitmentHash keccak256 of the payload commitment passed to {proposeRoot}.
    /// @param proposedAt When it was proposed.
    /// @param claimableAt When its challenge window ends (it is claimable from this timestamp on).
    /// @param vetoed Whether the guardian vetoed it.
    struct Proposal {
        bytes32 root;
        uint256 total;
        bytes32 payloadCommitmentHash;
        uint64 proposedAt;
        uint64 claimableAt;
        bool vetoed;
    }

    /*//////////////////////////////////////////////////////////////
                                 EVENTS
    //////////////////////////////////////////////////////////////*/

    /// @notice Emitted when the poster proposed `root` for `epoch`, claimable from `claimableAt`.
    event RootProposed(
        uint64 indexed epoch, bytes32 indexed root, uint256 total, uint64 claimableAt, bytes payloadCommitment
    );

    /// @notice Emitted when the guardian vetoed the root of `epoch`.
    event RootVetoed(uint64 indexed epoch, bytes32 indexed root);

    /// @notice Emitted when `amount` was paid to `account`, whose claimed total is now `cumulativeAmount`.
    event Claimed(address indexed account, uint256 amount, uint256 cumulativeAmount, bytes32 indexed root);

    /// @notice Emitted when `from` funded the distributor with `amount` through {fund}.
    event Funded(address indexed from, uint256 amount);

    /// @notice Emitted when governance changed the reward split parameters.
    event SharesChanged(uint16 nodeShareBps, uint16 adapterShareBps);

    /// @notice Emitted when governance changed the poster.
    event PosterChanged(address indexed oldPoster, address indexed newPoster);

    /// @notice Emitted when governance changed the guardian.
    event GuardianChanged(address indexed oldGuardian, address indexed newGuardian);

    /// @notice Emitted when governance changed the treasury.
    event TreasuryChanged(address indexed oldTreasury, address indexed newTreasury);

    /// @notice Emitted when governance changed the challenge window.
    event ChallengeWindowChanged(uint64 oldWindow, uint64 newWindow);

    /*//////////////////////////////////////////////////////////////
                                 ERRORS
    //////////////////////////////////////////////////////////////*/

    /// @notice Only the poster may propose roots.
    error DistributorNotPoster(address caller);

    /// @notice Only the guardian may veto roots.
    error DistributorNotGuardian(address caller);

    /// @notice An address argument was zero.
    error DistributorZeroAddress();

    /// @notice The amount must be non-zero.
    error DistributorZeroAmount();

    /// @notice The root must be non-zero.
    error DistributorZeroRoot();

    /// @notice `epoch` must be greater than the latest proposed epoch (or equal to it if that one was vetoed).
    error DistributorEpochNotIncreasing(uint64 epoch, uint64 latest);

    /// @notice The latest proposal is still in its challenge window; propose again at or after `claimableAt`.
    error DistributorWindowOpen(uint64 epoch, uint64 claimableAt);

    /// @notice The proposal's challenge window is over (or it was already vetoed): it can no longer be vetoed.
    error DistributorWindowClosed(uint64 epoch, uint64 claimableAt);

    /// @notice Only the latest proposed epoch can be vetoed, and it must exist.
    error DistributorUnknownEpoch(uint64 epoch);

    /// @notice The root's total exceeds what was funded; fund the distributor first.
    error DistributorUnderfunded(uint256 total, uint256 funded);

    /// @notice The root's total is below the total of the root it follows (cumulative totals never decrease).
    error DistributorTotalDecreased(uint256 total, uint256 previous);

    /// @notice The split parameters sum to more than 10000 basis points.
    error DistributorSharesTooHigh(uint256 sum);

    /// @notice The challenge window exceeds the maximum.
    error DistributorWindowTooLong(uint64 window, uint64 max);

    /// @notice There is no claimable root yet.
    error DistributorNoRoot();

    /// @notice `expectedRoot` is not the current claimable root; re-read {currentRoot} and fetch its proof.
    error DistributorRootMismatch(bytes32 expected, bytes32 current);

    /// @notice The proof does not prove `(account, cumulativeAmount)` against the current root.
    error DistributorInvalidProof(address account, uint256 cumulativeAmount);

    /// @notice `account` already claimed `claimed` ≥ `cumulativeAmount`: nothing to pay.
    error DistributorNothingToClaim(address account, uint256 cumulativeAmount, uint256 claimed);

    /*//////////////////////////////////////////////////////////////
                                FUNCTIONS
    //////////////////////////////////////////////////////////////*/

    /// @notice Poster only: propose `root` for `epoch`; claimable after the challenge window unless vetoed.
    /// @param epoch The epoch (> latest, or == latest if that was vetoed).
    /// @param root The root of the cumulative reward tree (non-zero).
    /// @param total The sum of all cumulative amounts (≤ {totalFunded}, ≥ the previous root's total).
    /// @param payloadCommitment Where the full reward table is published (e.g. a DA commitment); may be empty.
    function proposeRoot(uint64 epoch, bytes32 root, uint256 total, bytes calldata payloadCommitment) external;

    /// @notice Guardian only: veto the latest proposal while it is in its challenge window.
    /// @param epoch The latest proposed epoch.
    function vetoRoot(uint64 epoch) external;

    /// @notice Pay `account` its unclaimed reward: `cumulativeAmount - claimed(account)`. Anyone may call.
    /// @param account The account to pay.
    /// @param cumulativeAmount The account's cumulative amount in the current tree.
    /// @param expectedRoot The root the proof was made for; must equal {currentRoot}.
    /// @param proof The StandardMerkleTree proof of the account's leaf.
    /// @return amount The amount paid.
    function claim(address account, uint256 cumulativeAmount, bytes32 expectedRoot, bytes32[] calldata proof)
        external
        returns (uint256 amount);

    /// @notice Pull `amount` reward tokens from the caller (approve first). Plain transfers also count as funding.
    function fund(uint256 amount) external;

    /// @notice Governance only: set the reward split (`nodeShareBps + adapterShareBps ≤ 10000`).
    function setShares(uint16 nodeShareBps, uint16 adapterShareBps) external;

    /// @notice Governance only: set the poster (non-zero).
    function setPoster(address newPoster) external;

    /// @notice Governance only: set the guardian (non-zero).
    function setGuardian(address newGuardian) external;

    /// @notice Governance only: set the treasury (non-zero).
    function setTreasury(address newTreasury) external;

    /// @notice Governance only: set the challenge window for future proposals (≤ {MAX_CHALLENGE_WINDOW}).
    function setChallengeWindow(uint64 newWindow) external;

    /// @notice The claimable root: the latest proposal whose window passed and that was not vetoed (0 if none).
    function currentRoot() external view returns (bytes32);

    /// @notice The epoch of {currentRoot} (0 if none).
    function currentEpoch() external view returns (uint64);

    /// @notice The latest proposed epoch, vetoed or pending or claimable (0 if none).
    function latestEpoch() external view returns (uint64);

    /// @notice The proposal stored for `epoch` (all zero if none).
    function proposal(uint64 epoch) external view returns (Proposal memory);

    /// @notice The leaf for `(account, cumulativeAmount)` in this distributor's trees.
    function claimLeaf(address account, uint256 cumulativeAmount) external view returns (bytes32);

    /// @notice The total paid to `account` so far.
    function claimed(address account) external view returns (uint256);

    /// @notice The total paid to all accounts so far.
    function totalClaimed() external view returns (uint256);

    /// @notice Everything ever funded: the token balance plus {totalClaimed}.
    function totalFunded() external view returns (uint256);

    /// @notice The reward token.
    function token() external view returns (IERC20);

    /// @notice The address allowed to propose roots.
    function poster() external view returns (address);

    /// @notice The address allowed to veto roots.
    function guardian() external view returns (address);

    /// @notice The address that receives rounding dust in the off-chain reward computation.
    function treasury() external view returns (address);

    /// @notice The challenge window of new proposals, in seconds.
    function challengeWindow() external view returns (uint64);

    /// @notice The node operator's share of each fee, in basis points (devnet default 2000).
    function nodeShareBps() external view returns (uint16);

    /// @notice The adapter owner's share of each fee, in basis points (devnet default 3000).
    function adapterShareBps() external view returns (uint16);

    /// @notice The current governance address (the Ownable2Step owner).
    function governance() external view returns (address);

    /// @notice The upper bound for {challengeWindow} (30 days).
    function MAX_CHALLENGE_WINDOW() external view returns (uint64);
}
