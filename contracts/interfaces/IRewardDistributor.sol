// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {INodeRegistry} from "./INodeRegistry.sol";

/// @title IRewardDistributor
/// @notice Fees paid from prepaid node credit, and cumulative Merkle reward claims.
///
/// Money comes only from fees that were paid (no emissions): anyone may top up a node's fee credit with
/// {depositFees}; a node withdraws unused credit only after it has exited the NodeRegistry ({withdrawFeeCredit}).
/// Per epoch the poster proposes `(epoch, root, total, payloadCommitment, nodes[], debits[])`: the debits are
/// taken from the nodes' credit at once (released on a veto), and `total` — the sum of all cumulative amounts in
/// the tree — must equal the previous root's total plus the debits. The root becomes claimable once its challenge
/// window (never below {MIN_CHALLENGE_WINDOW}) has passed, unless the guardian (never the poster) vetoed it.
/// `claim` pays `cumulativeAmount - claimed[account]` against the current root, which the caller must name
/// (`expectedRoot`), so a root cannot be swapped under a claimant, and never lets {totalClaimed} exceed the
/// claimable root's `total`. Hence: total claimed ≤ claimable total ≤ Σ debits ≤ Σ deposits.
/// @dev Deployed as `constructor(IERC20 token, INodeRegistry nodeRegistry, address governance, address poster,
/// address guardian, address treasury, uint64 challengeWindow)` (all addresses non-zero, poster ≠ guardian,
/// window in `[MIN_CHALLENGE_WINDOW, MAX_CHALLENGE_WINDOW]`). Governance is an OpenZeppelin `Ownable2Step` owner
/// (renouncing disabled; others get `OwnableUnauthorizedAccount(address)`); on a real chain an OZ
/// `TimelockController` whose delay is at least the challenge window.
/// Leaf: `keccak256(bytes.concat(keccak256(abi.encode(block.chainid, address(this), account, address(token),
/// cumulativeAmount))))` — StandardMerkleTree over `(uint256, address, address, address, uint256)`.
/// Only one proposal can be in its window at a time. Epochs strictly increase, except that a vetoed latest epoch
/// may be proposed again.
interface IRewardDistributor {
    /*//////////////////////////////////////////////////////////////
                                 STRUCTS
    //////////////////////////////////////////////////////////////*/

    /// @notice A proposed root as returned by {proposal}.
    /// @param root The Merkle root of cumulative amounts.
    /// @param total The sum of all cumulative amounts in the tree (previous total + `debited`).
    /// @param debited The sum of the debits taken from node credit by this proposal.
    /// @param payloadCommitmentHash keccak256 of the payload commitment passed to {proposeRoot}.
    /// @param proposedAt When it was proposed.
    /// @param claimableAt When its challenge window ends (it is claimable from this timestamp on).
    /// @param vetoed Whether the guardian vetoed it.
    struct Proposal {
        bytes32 root;
        uint256 total;
        uint256 debited;
        bytes32 payloadCommitmentHash;
        uint64 proposedAt;
        uint64 claimableAt;
        bool vetoed;
    }

    /*//////////////////////////////////////////////////////////////
                                 EVENTS
    //////////////////////////////////////////////////////////////*/

    /// @notice Emitted when the poster proposed `root` for `epoch`, claimable from `claimableAt`, taking `debits[i]`
    /// from the fee credit of `nodes[i]`.
    event RootProposed(
        uint64 indexed epoch,
        bytes32 indexed root,
        uint256 total,
        uint64 claimableAt,
        bytes payloadCommitment,
        address[] nodes,
        uint256[] debits
    );

    /// @notice Emitted when the guardian vetoed the root of `epoch`; its debits (`released` in all) went back to
    /// the nodes' credit.
    event RootVetoed(uint64 indexed epoch, bytes32 indexed root, uint256 released);

    /// @notice Emitted when `amount` was paid to `account`, whose claimed total is now `cumulativeAmount`.
    event Claimed(address indexed account, uint256 amount, uint256 cumulativeAmount, bytes32 indexed root);

    /// @notice Emitted when `from` added `amount` (what actually arrived) to `node`'s fee credit, now `credit`.
    event FeesDeposited(address indexed node, address indexed from, uint256 amount, uint256 credit);

    /// @notice Emitted when exited `node` withdrew its unused fee credit `amount` to `to`.
    event FeeCreditWithdrawn(address indexed node, address indexed to, uint256 amount);

    /// @notice Emitted when governance changed the reward split parameters, in effect from `effectiveAt` (the
    /// block's timestamp; on a real chain the timelock announced it a delay ahead).
    event SharesChanged(uint16 nodeShareBps, uint16 adapterShareBps, uint64 effectiveAt);

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

    /// @notice The root's total is not the previous root's total plus this proposal's debits.
    /// @param total The total given.
    /// @param expected Previous total + Σ debits.
    error DistributorTotalMismatch(uint256 total, uint256 expected);

    /// @notice `nodes` and `debits` have different lengths.
    error DistributorLengthMismatch(uint256 nodesLength, uint256 debitsLength);

    /// @notice More nodes than one proposal may debit (a veto must always fit in a block).
    error DistributorTooManyNodes(uint256 count, uint256 max);

    /// @notice `node`'s fee credit cannot cover the debit; debit at most its credit (DESIGN.md "Rewards").
    error DistributorInsufficientCredit(address node, uint256 debit, uint256 credit);

    /// @notice Paying this claim would take the total claimed past the claimable root's total (the tree promises
    /// more than its total: a dishonest root).
    /// @param totalClaimed The total claimed after this claim.
    /// @param total The claimable root's total.
    error DistributorClaimExceedsTotal(uint256 totalClaimed, uint256 total);

    /// @notice `node` still has stake in the NodeRegistry; unbond and withdraw it first.
    error DistributorNodeNotExited(address node);

    /// @notice The poster and the guardian must be different addresses (the guardian checks the poster).
    error DistributorPosterIsGuardian(address account);

    /// @notice The challenge window is below the minimum.
    error DistributorWindowTooShort(uint64 window, uint64 min);

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

    /// @notice Poster only: propose `root` for `epoch`, taking `debits[i]` from the fee credit of `nodes[i]` at once;
    /// claimable after the challenge window unless vetoed (a veto gives the debits back).
    /// @param epoch The epoch (> latest, or == latest if that was vetoed).
    /// @param root The root of the cumulative reward tree (non-zero).
    /// @param total The sum of all cumulative amounts: the previous (not vetoed) root's total + Σ `debits`.
    /// @param payloadCommitment Where the full reward table is published (e.g. a DA commitment); may be empty.
    /// @param nodes The nodes whose fees this epoch pays (≤ {MAX_EPOCH_NODES}; a node may repeat).
    /// @param debits Each node's debit (≤ its remaining credit), parallel to `nodes`.
    function proposeRoot(
        uint64 epoch,
        bytes32 root,
        uint256 total,
        bytes calldata payloadCommitment,
        address[] calldata nodes,
        uint256[] calldata debits
    ) external;

    /// @notice Guardian only: veto the latest proposal while it is in its challenge window; its debits go back to
    /// the nodes' fee credit.
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

    /// @notice Add to `node`'s fee credit: pulls `amount` reward tokens from the caller (approve first) and
    /// credits what actually arrived. Anyone may top up any node. Plain transfers are not credit.
    /// @return credited The amount added to the credit.
    function depositFees(address node, uint256 amount) external returns (uint256 credited);

    /// @notice Node only, after it exited the NodeRegistry ({INodeRegistry-hasExited}): withdraw all its unused
    /// fee credit to `to`.
    /// @return amount The amount sent.
    function withdrawFeeCredit(address to) external returns (uint256 amount);

    /// @notice Governance only: set the reward split (`nodeShareBps + adapterShareBps ≤ 10000`).
    function setShares(uint16 nodeShareBps, uint16 adapterShareBps) external;

    /// @notice Governance only: set the poster (non-zero, not the guardian).
    function setPoster(address newPoster) external;

    /// @notice Governance only: set the guardian (non-zero, not the poster).
    function setGuardian(address newGuardian) external;

    /// @notice Governance only: set the treasury (non-zero).
    function setTreasury(address newTreasury) external;

    /// @notice Governance only: set the challenge window for future proposals (in `[MIN_CHALLENGE_WINDOW,
    /// MAX_CHALLENGE_WINDOW]`).
    function setChallengeWindow(uint64 newWindow) external;

    /// @notice The claimable root: the latest proposal whose window passed and that was not vetoed (0 if none).
    function currentRoot() external view returns (bytes32);

    /// @notice The epoch of {currentRoot} (0 if none).
    function currentEpoch() external view returns (uint64);

    /// @notice The latest proposed epoch, vetoed or pending or claimable (0 if none).
    function latestEpoch() external view returns (uint64);

    /// @notice The proposal stored for `epoch` (all zero if none).
    function proposal(uint64 epoch) external view returns (Proposal memory);

    /// @notice The nodes and debits of the proposal stored for `epoch` (empty if none).
    function proposalDebits(uint64 epoch) external view returns (address[] memory nodes, uint256[] memory debits);

    /// @notice The leaf for `(account, cumulativeAmount)` in this distributor's trees.
    function claimLeaf(address account, uint256 cumulativeAmount) external view returns (bytes32);

    /// @notice The total paid to `account` so far.
    function claimed(address account) external view returns (uint256);

    /// @notice The total paid to all accounts so far.
    function totalClaimed() external view returns (uint256);

    /// @notice `node`'s unused fee credit (deposits minus debits of proposals that were not vetoed, minus
    /// withdrawals).
    function feeCredit(address node) external view returns (uint256);

    /// @notice Everything ever credited by {depositFees}.
    function totalDeposited() external view returns (uint256);

    /// @notice Σ debits of all proposals that were not vetoed (= the latest non-vetoed root's total).
    function totalDebited() external view returns (uint256);

    /// @notice The NodeRegistry that says whether a node has exited.
    function nodeRegistry() external view returns (INodeRegistry);

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

    /// @notice The upper bound for {challengeWindow} (7 days; the NodeRegistry's unbonding delay floor exceeds it).
    function MAX_CHALLENGE_WINDOW() external view returns (uint64);

    /// @notice The lower bound for {challengeWindow} (1 hour): a root is never claimable in the block it is
    /// proposed, so the guardian always has time to veto.
    function MIN_CHALLENGE_WINDOW() external view returns (uint64);

    /// @notice The most nodes one proposal may debit (256).
    function MAX_EPOCH_NODES() external view returns (uint256);
}
