// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";

import {IAttributionLedger} from "../interfaces/IAttributionLedger.sol";
import {INodeRegistry} from "../interfaces/INodeRegistry.sol";
import {IRewardDistributor} from "../interfaces/IRewardDistributor.sol";
import {Governed} from "./utils/Governed.sol";

/// @title RewardDistributor
/// @notice Prepaid node fee credit, per-epoch debits taken in pages against the credit at the epoch's end block, and
/// cumulative Merkle reward claims with a challenge window and a guardian veto. See {IRewardDistributor}.
/// @dev A node's credit is `deposits up to a block − debits − withdrawals`: deposits are an OpenZeppelin
/// `Checkpoints.Trace208` of the cumulative amount keyed by block number, so the credit "as it stood at an epoch's
/// end block" is one lookup, and a deposit in a later block changes nothing about that epoch.
contract RewardDistributor is IRewardDistributor, Governed, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using Checkpoints for Checkpoints.Trace208;

    /*//////////////////////////////////////////////////////////////
                                CONSTANTS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IRewardDistributor
    uint64 public constant MAX_CHALLENGE_WINDOW = 7 days;

    /// @inheritdoc IRewardDistributor
    uint64 public constant MIN_CHALLENGE_WINDOW = 1 hours;

    /// @inheritdoc IRewardDistributor
    uint256 public constant MAX_PAGE_NODES = 200;

    uint256 private constant _BPS = 10_000;

    /*//////////////////////////////////////////////////////////////
                                 STORAGE
    //////////////////////////////////////////////////////////////*/

    IERC20 private immutable _token;
    INodeRegistry private immutable _nodeRegistry;
    IAttributionLedger private immutable _ledger;
    address private _poster;
    address private _guardian;
    address private _treasury;
    uint64 private _challengeWindow;
    uint16 private _nodeShareBps;
    uint16 private _adapterShareBps;
    /// @dev The latest proposed epoch (open, sealed, vetoed or claimable).
    uint64 private _latestEpoch;
    /// @dev The last epoch known to be claimable when a newer one was proposed; {currentEpoch} may be newer.
    uint64 private _settledEpoch;
    uint256 private _totalClaimed;
    uint256 private _totalDeposited;
    uint256 private _totalDebited;
    uint256 private _totalWithdrawn;
    mapping(uint64 epoch => Proposal) private _proposals;
    mapping(uint64 epoch => mapping(uint32 page => bytes32)) private _pageHashes;
    mapping(address account => uint256) private _claimed;
    mapping(address node => Checkpoints.Trace208) private _deposits;
    mapping(address node => uint256) private _debitedOf;
    mapping(address node => uint256) private _withdrawnOf;

    /*//////////////////////////////////////////////////////////////
                               CONSTRUCTOR
    //////////////////////////////////////////////////////////////*/

    /// @param token_ The reward token, in which fees are paid (non-zero).
    /// @param nodeRegistry_ The NodeRegistry that says whether a node has exited (non-zero).
    /// @param ledger_ The AttributionLedger that says when a node last posted (non-zero).
    /// @param governance_ Governance (non-zero): sets parameters and roles.
    /// @param poster_ Proposes roots (non-zero, not the guardian).
    /// @param guardian_ Vetoes roots during their window (non-zero, not the poster).
    /// @param treasury_ Receives rounding dust in the off-chain computation (non-zero).
    /// @param challengeWindow_ Seconds before a sealed root becomes claimable (in `[MIN_CHALLENGE_WINDOW,
    /// MAX_CHALLENGE_WINDOW]`).
    constructor(
        IERC20 token_,
        INodeRegistry nodeRegistry_,
        IAttributionLedger ledger_,
        address governance_,
        address poster_,
        address guardian_,
        address treasury_,
        uint64 challengeWindow_
    ) Governed(governance_) {
        if (
            address(token_) == address(0) || address(nodeRegistry_) == address(0) || address(ledger_) == address(0)
                || poster_ == address(0) || guardian_ == address(0) || treasury_ == address(0)
        ) revert DistributorZeroAddress();
        if (poster_ == guardian_) revert DistributorPosterIsGuardian(poster_);
        _checkWindow(challengeWindow_);
        _token = token_;
        _nodeRegistry = nodeRegistry_;
        _ledger = ledger_;
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
    function proposeRoot(uint64 epoch, uint64 endBlock, bytes32 root, uint256 total, bytes calldata payloadCommitment)
        external
    {
        if (msg.sender != _poster) revert DistributorNotPoster(msg.sender);
        if (root == bytes32(0)) revert DistributorZeroRoot();
        uint64 expected = _nextEpoch();
        if (epoch != expected) revert DistributorEpochNotNext(epoch, expected);
        // unchecked: epoch == _nextEpoch() >= 1.
        uint64 previousEnd;
        unchecked {
            previousEnd = _proposals[epoch - 1].endBlock;
        }
        // Strictly before the current block: deposits later in this block must not change the epoch's credit.
        if (endBlock <= previousEnd || endBlock >= block.number) {
            revert DistributorBadEndBlock(endBlock, previousEnd, block.number);
        }
        _latestEpoch = epoch;
        _proposals[epoch] = Proposal({
            root: root,
            total: total,
            debited: 0,
            payloadCommitmentHash: keccak256(payloadCommitment),
            endBlock: endBlock,
            proposedAt: _now(),
            claimableAt: 0,
            pages: 0,
            releasedPages: 0,
            vetoed: false
        });
        emit RootProposed(epoch, root, total, endBlock, payloadCommitment);
    }

    /// @inheritdoc IRewardDistributor
    function addDebits(uint64 epoch, address[] calldata nodes, uint256[] calldata debits) external {
        if (msg.sender != _poster) revert DistributorNotPoster(msg.sender);
        Proposal storage p = _open(epoch);
        uint256 n = nodes.length;
        if (n != debits.length) revert DistributorLengthMismatch(n, debits.length);
        if (n > MAX_PAGE_NODES) revert DistributorTooManyNodes(n, MAX_PAGE_NODES);
        uint48 key = uint48(p.endBlock);
        uint256 sum;
        for (uint256 i; i < n; ++i) {
            uint256 debit = debits[i];
            if (debit == 0) continue;
            address node = nodes[i];
            uint256 credit = _creditAt(node, key);
            if (debit > credit) revert DistributorInsufficientCredit(node, debit, credit);
            _debitedOf[node] += debit;
            sum += debit;
        }
        uint32 page = p.pages;
        _pageHashes[epoch][page] = keccak256(abi.encode(nodes, debits));
        p.pages = page + 1;
        p.debited += sum;
        _totalDebited += sum;
        emit DebitsAdded(epoch, page, nodes, debits);
    }

    /// @inheritdoc IRewardDistributor
    function sealRoot(uint64 epoch) external {
        if (msg.sender != _poster) revert DistributorNotPoster(msg.sender);
        Proposal storage p = _open(epoch);
        uint256 debited = p.debited;
        // unchecked: an open proposal's epoch is >= 1.
        uint256 expected;
        unchecked {
            expected = _proposals[epoch - 1].total + debited;
        }
        if (p.total != expected) revert DistributorTotalMismatch(p.total, expected);
        uint64 claimableAt = _now() + _challengeWindow;
        p.claimableAt = claimableAt;
        emit RootSealed(epoch, p.root, debited, claimableAt);
    }

    /// @inheritdoc IRewardDistributor
    function vetoRoot(uint64 epoch) external {
        if (msg.sender != _guardian) revert DistributorNotGuardian(msg.sender);
        if (epoch == 0 || epoch != _latestEpoch) revert DistributorUnknownEpoch(epoch);
        Proposal storage p = _proposals[epoch];
        uint64 claimableAt = p.claimableAt;
        if (p.vetoed || (claimableAt != 0 && block.timestamp >= claimableAt)) {
            revert DistributorWindowClosed(epoch, claimableAt);
        }
        p.vetoed = true;
        emit RootVetoed(epoch, p.root, p.debited);
    }

    /// @inheritdoc IRewardDistributor
    function releaseDebits(uint64 epoch, uint32 page, address[] calldata nodes, uint256[] calldata debits) external {
        Proposal storage p = _proposals[epoch];
        if (
            !p.vetoed || page != p.releasedPages || page >= p.pages
                || keccak256(abi.encode(nodes, debits)) != _pageHashes[epoch][page]
        ) revert DistributorBadRelease(epoch, page);
        uint256 n = nodes.length;
        uint256 sum;
        for (uint256 i; i < n; ++i) {
            uint256 debit = debits[i];
            if (debit == 0) continue;
            // Exactly what addDebits added for this page (its hash matched), so this never underflows.
            _debitedOf[nodes[i]] -= debit;
            sum += debit;
        }
        p.releasedPages = page + 1;
        _totalDebited -= sum;
        emit DebitsReleased(epoch, page, sum);
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
        Proposal storage p = _proposals[_currentEpoch()];
        bytes32 current = p.root;
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
        // A tree may promise more than its total (a dishonest or buggy root that got past the guardian); the total,
        // which the debits backed, is what the root can pay out, never more.
        uint256 totalClaimed_ = _totalClaimed + amount;
        uint256 total = p.total;
        if (totalClaimed_ > total) revert DistributorClaimExceedsTotal(totalClaimed_, total);
        _claimed[account] = cumulativeAmount;
        _totalClaimed = totalClaimed_;
        // transfer
        _token.safeTransfer(account, amount);
        // emit
        emit Claimed(account, amount, cumulativeAmount, current);
    }

    /*//////////////////////////////////////////////////////////////
                               FEE CREDIT
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IRewardDistributor
    function depositFees(address node, uint256 amount) external nonReentrant returns (uint256 credited) {
        if (node == address(0)) revert DistributorZeroAddress();
        if (amount == 0) revert DistributorZeroAmount();
        // Credit what arrived (a fee-on-transfer token delivers less than `amount`).
        uint256 before = _token.balanceOf(address(this));
        _token.safeTransferFrom(msg.sender, address(this), amount);
        credited = _token.balanceOf(address(this)) - before;
        if (credited == 0) revert DistributorZeroAmount();
        Checkpoints.Trace208 storage deposits = _deposits[node];
        deposits.push(SafeCast.toUint48(block.number), SafeCast.toUint208(deposits.latest() + credited));
        _totalDeposited += credited;
        emit FeesDeposited(node, msg.sender, credited, _feeCredit(node));
    }

    /// @inheritdoc IRewardDistributor
    function withdrawFeeCredit(address to) external nonReentrant returns (uint256 amount) {
        if (to == address(0)) revert DistributorZeroAddress();
        // Only after exit (a node that can post keeps paying) and once a settled epoch covers its last batch: until
        // then a proposal, or a proposal again after a veto, may still need this credit.
        if (!_nodeRegistry.hasExited(msg.sender)) revert DistributorNodeNotExited(msg.sender);
        uint64 lastPost = _ledger.lastPostBlock(msg.sender);
        uint64 settledEnd = _proposals[_currentEpoch()].endBlock;
        if (lastPost > settledEnd) revert DistributorCreditLocked(msg.sender, lastPost, settledEnd);
        amount = _feeCredit(msg.sender);
        if (amount == 0) revert DistributorZeroAmount();
        _withdrawnOf[msg.sender] += amount;
        _totalWithdrawn += amount;
        emit FeeCreditWithdrawn(msg.sender, to, amount);
        _token.safeTransfer(to, amount);
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
        emit SharesChanged(nodeShareBps_, adapterShareBps_, _now());
    }

    /// @inheritdoc IRewardDistributor
    function setPoster(address newPoster) external onlyOwner {
        if (newPoster == address(0)) revert DistributorZeroAddress();
        if (newPoster == _guardian) revert DistributorPosterIsGuardian(newPoster);
        address old = _poster;
        _poster = newPoster;
        emit PosterChanged(old, newPoster);
    }

    /// @inheritdoc IRewardDistributor
    function setGuardian(address newGuardian) external onlyOwner {
        if (newGuardian == address(0)) revert DistributorZeroAddress();
        if (newGuardian == _poster) revert DistributorPosterIsGuardian(newGuardian);
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
        _checkWindow(newWindow);
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
    function pageHash(uint64 epoch, uint32 page) external view returns (bytes32) {
        return _pageHashes[epoch][page];
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
    function feeCredit(address node) external view returns (uint256) {
        return _feeCredit(node);
    }

    /// @inheritdoc IRewardDistributor
    function creditAt(address node, uint64 blockNumber) external view returns (uint256) {
        return _creditAt(node, SafeCast.toUint48(blockNumber));
    }

    /// @inheritdoc IRewardDistributor
    function totalDeposited() external view returns (uint256) {
        return _totalDeposited;
    }

    /// @inheritdoc IRewardDistributor
    function totalDebited() external view returns (uint256) {
        return _totalDebited;
    }

    /// @inheritdoc IRewardDistributor
    function totalWithdrawn() external view returns (uint256) {
        return _totalWithdrawn;
    }

    /// @inheritdoc IRewardDistributor
    function ledger() external view returns (IAttributionLedger) {
        return _ledger;
    }

    /// @inheritdoc IRewardDistributor
    function nodeRegistry() external view returns (INodeRegistry) {
        return _nodeRegistry;
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

    /// @dev The epoch that may be proposed now: the current one + 1, or a vetoed one again once its pages are released.
    /// The latest proposal, if its window passed, becomes settled.
    function _nextEpoch() private returns (uint64) {
        uint64 latest = _latestEpoch;
        if (latest == 0) return 1;
        Proposal storage last = _proposals[latest];
        if (last.vetoed) {
            if (last.releasedPages != last.pages) {
                revert DistributorReleasePending(latest, last.releasedPages, last.pages);
            }
            return latest;
        }
        uint64 claimableAt = last.claimableAt;
        if (claimableAt == 0 || block.timestamp < claimableAt) revert DistributorWindowOpen(latest, claimableAt);
        _settledEpoch = latest;
        // unchecked: epochs grow by one per settled proposal, far below 2^64.
        unchecked {
            return latest + 1;
        }
    }

    /// @dev The latest proposal, which must be open (neither sealed nor vetoed) and be `epoch`.
    function _open(uint64 epoch) private view returns (Proposal storage p) {
        if (epoch == 0 || epoch != _latestEpoch) revert DistributorUnknownEpoch(epoch);
        p = _proposals[epoch];
        if (p.vetoed || p.claimableAt != 0) revert DistributorNotOpen(epoch);
    }

    /// @dev Deposits up to `key` (a block number) minus every debit and withdrawal, floored at 0.
    function _creditAt(address node, uint48 key) private view returns (uint256) {
        uint256 deposited = _deposits[node].upperLookupRecent(key);
        uint256 spent = _debitedOf[node] + _withdrawnOf[node];
        return deposited > spent ? deposited - spent : 0;
    }

    /// @dev The node's credit now.
    function _feeCredit(address node) private view returns (uint256) {
        uint256 deposited = _deposits[node].latest();
        uint256 spent = _debitedOf[node] + _withdrawnOf[node];
        return deposited > spent ? deposited - spent : 0;
    }

    function _now() private view returns (uint64) {
        return uint64(block.timestamp);
    }

    function _checkWindow(uint64 window) private pure {
        if (window < MIN_CHALLENGE_WINDOW) revert DistributorWindowTooShort(window, MIN_CHALLENGE_WINDOW);
        if (window > MAX_CHALLENGE_WINDOW) revert DistributorWindowTooLong(window, MAX_CHALLENGE_WINDOW);
    }

    /// @dev The latest proposed epoch if it was sealed, its window passed and it was not vetoed, else the last
    /// settled one.
    function _currentEpoch() private view returns (uint64) {
        uint64 latest = _latestEpoch;
        if (latest != 0) {
            Proposal storage p = _proposals[latest];
            uint64 claimableAt = p.claimableAt;
            if (!p.vetoed && claimableAt != 0 && block.timestamp >= claimableAt) return latest;
        }
        return _settledEpoch;
    }
}
