// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {IAttributionLedger} from "./IAttributionLedger.sol";
import {INodeRegistry} from "./INodeRegistry.sol";

/// @title IRewardDistributor
/// @notice Fees paid from prepaid node credit, and cumulative Merkle reward claims.
///
/// Money comes only from fees that were paid (no emissions): anyone may top up a node's fee credit with
/// {depositFees}. Epochs are consecutive (`epoch == currentEpoch() + 1`) and cover consecutive L2 block ranges: epoch
/// `e` covers the blocks `(proposal(e - 1).endBlock, proposal(e).endBlock]`. A proposal is made in pages so that any
/// number of nodes fits, each transaction bounded ({MAX_PAGE_NODES}): {proposeRoot} opens it (epoch, end block, root,
/// total, payload commitment), {addDebits} takes each page's debits from the nodes' credit at once, {sealRoot}
/// checks that `total` equals the previous root's total plus every debit and starts the challenge window (never
/// below {MIN_CHALLENGE_WINDOW}). Each debit is bounded by the node's credit as it stood at the epoch's end block
/// ({creditAt}), so no deposit after that block, and no withdrawal, can change or block a proposal. The guardian
/// (never the poster) vetoes an open or sealed proposal until its window ends; anyone then releases its pages
/// ({releaseDebits}) and the same epoch is proposed again. A node withdraws unused credit only after it exited the
/// NodeRegistry and a settled epoch covers the block of its last batch ({withdrawFeeCredit}).
/// `claim` pays `cumulativeAmount - claimed[account]` against the current root, which the caller must name
/// (`expectedRoot`), so a root cannot be swapped under a claimant, and never lets {totalClaimed} exceed the
/// claimable root's `total`. Hence: total claimed ≤ claimable total ≤ Σ debits ≤ Σ deposits.
/// @dev Deployed as `constructor(IERC20 token, INodeRegistry nodeRegistry, IAttributionLedger ledger, address
/// governance, address poster, address guardian, address treasury, uint64 challengeWindow)` (all addresses non-zero,
/// poster ≠ guardian, window in `[MIN_CHALLENGE_WINDOW, MAX_CHALLENGE_WINDOW]`). Governance is an OpenZeppelin
/// `Ownable2Step` owner (renouncing disabled; others get `OwnableUnauthorizedAccount(address)`); on a real chain the
/// GovernanceTimelock, whose delay is at least the unbonding delay plus the challenge window. No governance function
/// moves a node's credit.
/// Leaf: `keccak256(bytes.concat(keccak256(abi.encode(block.chainid, address(this), account, address(token),
/// cumulativeAmount))))` — StandardMerkleTree over `(uint256, address, address, address, uint256)`.
interface IRewardDistributor {
    /*//////////////////////////////////////////////////////////////
                                 STRUCTS
    //////////////////////////////////////////////////////////////*/

    /// @notice A proposal as returned by {proposal}.
    /// @param root The Merkle root of cumulative amounts.
    /// @param total The sum of all cumulative amounts in the tree (previous total + `debited`).
    /// @param debited The sum of the debits its pages took from node credit.
    /// @param payloadCommitmentHash keccak256 of the payload commitment passed to {proposeRoot}.
    /// @param endBlock The epoch's last L2 block (its credit and batches are read at this block).
    /// @param proposedAt When it was opened.
    /// @param claimableAt When its challenge window ends (0 until it is sealed).
    /// @param pages The number of debit pages added.
    /// @param releasedPages The number of pages released after a veto.
    /// @param vetoed Whether the guardian vetoed it.
    struct Proposal {
        bytes32 root;
        uint256 total;
        uint256 debited;
        bytes32 payloadCommitmentHash;
        uint64 endBlock;
        uint64 proposedAt;
        uint64 claimableAt;
        uint32 pages;
        uint32 releasedPages;
        bool vetoed;
    }

    /*//////////////////////////////////////////////////////////////
                                 EVENTS
    //////////////////////////////////////////////////////////////*/

    /// @notice Emitted when the poster opened the proposal of `epoch`, covering the blocks up to `endBlock`.
    event RootProposed(
        uint64 indexed epoch, bytes32 indexed root, uint256 total, uint64 endBlock, bytes payloadCommitment
    );

    /// @notice Emitted when page `page` of `epoch` took `debits[i]` from the fee credit of `nodes[i]`.
    event DebitsAdded(uint64 indexed epoch, uint32 page, address[] nodes, uint256[] debits);

    /// @notice Emitted when the proposal of `epoch` was sealed with `debited` in all; claimable from `claimableAt`.
    event RootSealed(uint64 indexed epoch, bytes32 indexed root, uint256 debited, uint64 claimableAt);

    /// @notice Emitted when the guardian vetoed the proposal of `epoch`; its pages are released with {releaseDebits}.
    event RootVetoed(uint64 indexed epoch, bytes32 indexed root, uint256 debited);

    /// @notice Emitted when page `page` of vetoed `epoch` gave `released` back to its nodes' credit.
    event DebitsReleased(uint64 indexed epoch, uint32 page, uint256 released);

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

    /// @notice Epochs are consecutive: propose `expected` (the current epoch + 1; a vetoed epoch again).
    error DistributorEpochNotNext(uint64 epoch, uint64 expected);

    /// @notice The latest proposal is open or in its challenge window; seal it, or wait until `claimableAt`.
    error DistributorWindowOpen(uint64 epoch, uint64 claimableAt);

    /// @notice The proposal's challenge window is over (or it was already vetoed): it can no longer be vetoed.
    error DistributorWindowClosed(uint64 epoch, uint64 claimableAt);

    /// @notice Only the latest proposed epoch can be vetoed, paged or sealed, and it must exist.
    error DistributorUnknownEpoch(uint64 epoch);

    /// @notice The proposal is sealed or vetoed: no more pages, no second seal.
    error DistributorNotOpen(uint64 epoch);

    /// @notice The vetoed proposal's pages are not all released yet; call {releaseDebits} for each page first.
    error DistributorReleasePending(uint64 epoch, uint32 releasedPages, uint32 pages);

    /// @notice Only a vetoed proposal's pages are released, in order, each with the nodes and debits it added.
    error DistributorBadRelease(uint64 epoch, uint32 page);

    /// @notice The end block must be after the previous epoch's end block and before the current block.
    error DistributorBadEndBlock(uint64 endBlock, uint64 previousEndBlock, uint256 currentBlock);

    /// @notice The root's total is not the previous root's total plus this proposal's debits.
    /// @param total The total given.
    /// @param expected Previous total + Σ debits.
    error DistributorTotalMismatch(uint256 total, uint256 expected);

    /// @notice `nodes` and `debits` have different lengths.
    error DistributorLengthMismatch(uint256 nodesLength, uint256 debitsLength);

    /// @notice More nodes than one page may debit (a page and its release must fit in a block); use more pages.
    error DistributorTooManyNodes(uint256 count, uint256 max);

    /// @notice `node`'s credit at the epoch's end block cannot cover the debit; debit at most {creditAt}.
    error DistributorInsufficientCredit(address node, uint256 debit, uint256 credit);

    /// @notice Paying this claim would take the total claimed past the claimable root's total (the tree promises
    /// more than its total: a dishonest root).
    /// @param totalClaimed The total claimed after this claim.
    /// @param total The claimable root's total.
    error DistributorClaimExceedsTotal(uint256 totalClaimed, uint256 total);

    /// @notice `node` has not exited the NodeRegistry; unbond everything and wait the unbonding delay first.
    error DistributorNodeNotExited(address node);

    /// @notice `node`'s last batch (posted in `lastPostBlock`) is not yet paid for by a settled epoch (which covers
    /// blocks up to `settledEndBlock`); wait until an epoch that covers it is claimable.
    error DistributorCreditLocked(address node, uint64 lastPostBlock, uint64 settledEndBlock);

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

    /// @notice Poster only: open the proposal of `epoch` (the current epoch + 1, or a vetoed epoch again once its
    /// pages are released) covering the blocks up to `endBlock`. Add its debits with {addDebits}, then {sealRoot}.
    /// @param epoch The epoch.
    /// @param endBlock The epoch's last block: after the previous epoch's and before the current block.
    /// @param root The root of the cumulative reward tree (non-zero).
    /// @param total The sum of all cumulative amounts: the previous root's total + Σ debits (checked at the seal).
    /// @param payloadCommitment Where the full reward table is published (e.g. a DA commitment); may be empty.
    function proposeRoot(uint64 epoch, uint64 endBlock, bytes32 root, uint256 total, bytes calldata payloadCommitment)
        external;

    /// @notice Poster only: take `debits[i]` from the credit of `nodes[i]` for the open proposal of `epoch`. Each
    /// debit must be at most the node's {creditAt} the epoch's end block (a node may repeat; each debit counts).
    /// @param nodes At most {MAX_PAGE_NODES} nodes.
    /// @param debits Each node's debit, parallel to `nodes`.
    function addDebits(uint64 epoch, address[] calldata nodes, uint256[] calldata debits) external;

    /// @notice Poster only: close the open proposal of `epoch` once every page is in; checks its total and starts
    /// the challenge window.
    function sealRoot(uint64 epoch) external;

    /// @notice Guardian only: veto the latest proposal while it is open or in its challenge window.
    /// @param epoch The latest proposed epoch.
    function vetoRoot(uint64 epoch) external;

    /// @notice Anyone: give page `page` of vetoed `epoch` back to its nodes' credit (pages in order, each with
    /// exactly the nodes and debits it added, as in its {DebitsAdded} event).
    function releaseDebits(uint64 epoch, uint32 page, address[] calldata nodes, uint256[] calldata debits) external;

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
    /// credits what actually arrived. Anyone may top up any node; it counts for epochs ending at or after this
    /// block. Plain transfers are not credit.
    /// @return credited The amount added to the credit.
    function depositFees(address node, uint256 amount) external returns (uint256 credited);

    /// @notice Node only, after it exited the NodeRegistry ({INodeRegistry-hasExited}) and once a settled epoch
    /// covers the block of its last batch: withdraw all its unused fee credit to `to`.
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

    /// @notice Governance only: set the challenge window for future seals (in `[MIN_CHALLENGE_WINDOW,
    /// MAX_CHALLENGE_WINDOW]`).
    function setChallengeWindow(uint64 newWindow) external;

    /// @notice The claimable root: the latest sealed proposal whose window passed and that was not vetoed (0 if none).
    function currentRoot() external view returns (bytes32);

    /// @notice The epoch of {currentRoot} (0 if none): the last settled epoch.
    function currentEpoch() external view returns (uint64);

    /// @notice The latest proposed epoch, open, sealed, vetoed or claimable (0 if none).
    function latestEpoch() external view returns (uint64);

    /// @notice The proposal stored for `epoch` (all zero if none).
    function proposal(uint64 epoch) external view returns (Proposal memory);

    /// @notice The keccak256 of `abi.encode(nodes, debits)` of page `page` of `epoch`.
    function pageHash(uint64 epoch, uint32 page) external view returns (bytes32);

    /// @notice The leaf for `(account, cumulativeAmount)` in this distributor's trees.
    function claimLeaf(address account, uint256 cumulativeAmount) external view returns (bytes32);

    /// @notice The total paid to `account` so far.
    function claimed(address account) external view returns (uint256);

    /// @notice The total paid to all accounts so far.
    function totalClaimed() external view returns (uint256);

    /// @notice `node`'s unused fee credit now: its deposits, minus debits of proposals not vetoed (or not yet
    /// released), minus withdrawals.
    function feeCredit(address node) external view returns (uint256);

    /// @notice `node`'s credit for an epoch ending at `blockNumber`: deposits up to that block, minus every debit
    /// and withdrawal so far (0 if that is negative). What the rule debits at most; deposits made after the block
    /// do not count.
    function creditAt(address node, uint64 blockNumber) external view returns (uint256);

    /// @notice Everything ever credited by {depositFees}.
    function totalDeposited() external view returns (uint256);

    /// @notice Σ debits taken and not released (= the latest sealed, not vetoed root's total, plus the open
    /// proposal's pages).
    function totalDebited() external view returns (uint256);

    /// @notice Everything withdrawn by {withdrawFeeCredit}.
    function totalWithdrawn() external view returns (uint256);

    /// @notice The NodeRegistry that says whether a node has exited.
    function nodeRegistry() external view returns (INodeRegistry);

    /// @notice The AttributionLedger whose {IAttributionLedger-lastPostBlock} locks a node's credit.
    function ledger() external view returns (IAttributionLedger);

    /// @notice The reward token.
    function token() external view returns (IERC20);

    /// @notice The address allowed to propose roots.
    function poster() external view returns (address);

    /// @notice The address allowed to veto roots.
    function guardian() external view returns (address);

    /// @notice The address that receives rounding dust in the off-chain reward computation.
    function treasury() external view returns (address);

    /// @notice The challenge window of new seals, in seconds.
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
    /// sealed, so the guardian always has time to veto.
    function MIN_CHALLENGE_WINDOW() external view returns (uint64);

    /// @notice The most nodes one {addDebits} or {releaseDebits} page may carry (200: a page stays under ~7M gas).
    function MAX_PAGE_NODES() external view returns (uint256);
}
