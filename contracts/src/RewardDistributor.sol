// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

import {INodeRegistry} from "../interfaces/INodeRegistry.sol";
import {IRewardDistributor} from "../interfaces/IRewardDistributor.sol";
import {Governed} from "./utils/Governed.sol";

/// @title RewardDistributor
/// @notice Prepaid node fee credit, per-epoch debits reserved at proposal, and cumulative Merkle reward claims with
/// a challenge window and a guardian veto. See {IRewardDistributor}.
contract RewardDistributor is IRewardDistributor, Governed, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /*//////////////////////////////////////////////////////////////
                                CONSTANTS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IRewardDistributor
    uint64 public constant MAX_CHALLENGE_WINDOW = 7 days;

    /// @inheritdoc IRewardDistributor
    uint64 public constant MIN_CHALLENGE_WINDOW = 1 hours;

    /// @inheritdoc IRewardDistributor
    uint256 public constant MAX_EPOCH_NODES = 256;

    uint256 private constant _BPS = 10_000;

    /*//////////////////////////////////////////////////////////////
                                 STORAGE
    //////////////////////////////////////////////////////////////*/

    IERC20 private immutable _token;
    INodeRegistry private immutable _nodeRegistry;
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
    uint256 private _totalDeposited;
    uint256 private _totalDebited;
    mapping(uint64 epoch => Proposal) private _proposals;
    mapping(uint64 epoch => address[]) private _debitNodes;
    mapping(uint64 epoch => uint256[]) private _debitAmounts;
    mapping(address account => uint256) private _claimed;
    mapping(address node => uint256) private _feeCredit;

    /*//////////////////////////////////////////////////////////////
                               CONSTRUCTOR
    //////////////////////////////////////////////////////////////*/

    /// @param token_ The reward token, in which fees are paid (non-zero).
    /// @param nodeRegistry_ The NodeRegistry that says whether a node has exited (non-zero).
    /// @param governance_ Governance (non-zero): sets parameters and roles.
    /// @param poster_ Proposes roots (non-zero, not the guardian).
    /// @param guardian_ Vetoes roots during their window (non-zero, not the poster).
    /// @param treasury_ Receives rounding dust in the off-chain computation (non-zero).
    /// @param challengeWindow_ Seconds before a proposed root becomes claimable (in `[MIN_CHALLENGE_WINDOW,
    /// MAX_CHALLENGE_WINDOW]`).
    constructor(
        IERC20 token_,
        INodeRegistry nodeRegistry_,
        address governance_,
        address poster_,
        address guardian_,
        address treasury_,
        uint64 challengeWindow_
    ) Governed(governance_) {
        if (
            address(token_) == address(0) || address(nodeRegistry_) == address(0) || poster_ == address(0)
                || guardian_ == address(0) || treasury_ == address(0)
        ) revert DistributorZeroAddress();
        if (poster_ == guardian_) revert DistributorPosterIsGuardian(poster_);
        _checkWindow(challengeWindow_);
        _token = token_;
        _nodeRegistry = nodeRegistry_;
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
    function proposeRoot(
        uint64 epoch,
        bytes32 root,
        uint256 total,
        bytes calldata payloadCommitment,
        address[] calldata nodes,
        uint256[] calldata debits
    ) external {
        if (msg.sender != _poster) revert DistributorNotPoster(msg.sender);
        if (root == bytes32(0)) revert DistributorZeroRoot();
        _settleForProposal(epoch);
        uint256 debited = _reserve(epoch, nodes, debits);
        uint64 claimableAt = _store(epoch, root, total, debited, keccak256(payloadCommitment));
        emit RootProposed(epoch, root, total, claimableAt, payloadCommitment, nodes, debits);
    }

    /// @inheritdoc IRewardDistributor
    function vetoRoot(uint64 epoch) external {
        if (msg.sender != _guardian) revert DistributorNotGuardian(msg.sender);
        if (epoch == 0 || epoch != _latestEpoch) revert DistributorUnknownEpoch(epoch);
        Proposal storage p = _proposals[epoch];
        if (p.vetoed || block.timestamp >= p.claimableAt) revert DistributorWindowClosed(epoch, p.claimableAt);
        p.vetoed = true;
        address[] storage nodes = _debitNodes[epoch];
        uint256[] storage debits = _debitAmounts[epoch];
        uint256 n = nodes.length;
        for (uint256 i; i < n; ++i) {
            _feeCredit[nodes[i]] += debits[i];
        }
        uint256 released = p.debited;
        _totalDebited -= released;
        emit RootVetoed(epoch, p.root, released);
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
        uint256 credit = _feeCredit[node] + credited;
        _feeCredit[node] = credit;
        _totalDeposited += credited;
        emit FeesDeposited(node, msg.sender, credited, credit);
    }

    /// @inheritdoc IRewardDistributor
    function withdrawFeeCredit(address to) external nonReentrant returns (uint256 amount) {
        if (to == address(0)) revert DistributorZeroAddress();
        // Only after exit: a node that could still post could otherwise pull its credit before the epoch that
        // debits its latest batches is proposed.
        if (!_nodeRegistry.hasExited(msg.sender)) revert DistributorNodeNotExited(msg.sender);
        amount = _feeCredit[msg.sender];
        if (amount == 0) revert DistributorZeroAmount();
        _feeCredit[msg.sender] = 0;
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
    function proposalDebits(uint64 epoch) external view returns (address[] memory nodes, uint256[] memory debits) {
        return (_debitNodes[epoch], _debitAmounts[epoch]);
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
        return _feeCredit[node];
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

    /// @dev Check that `epoch` may be proposed now; the latest proposal, if its window passed, becomes settled.
    function _settleForProposal(uint64 epoch) private {
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
    }

    /// @dev Take each debit from its node's credit now: the money a root promises is set aside before anyone can
    /// claim it, and a veto gives exactly this back.
    function _reserve(uint64 epoch, address[] calldata nodes, uint256[] calldata debits)
        private
        returns (uint256 debited)
    {
        uint256 n = nodes.length;
        if (n != debits.length) revert DistributorLengthMismatch(n, debits.length);
        if (n > MAX_EPOCH_NODES) revert DistributorTooManyNodes(n, MAX_EPOCH_NODES);
        for (uint256 i; i < n; ++i) {
            address node = nodes[i];
            uint256 debit = debits[i];
            uint256 credit = _feeCredit[node];
            if (debit > credit) revert DistributorInsufficientCredit(node, debit, credit);
            // unchecked: debit <= credit was checked just above.
            unchecked {
                _feeCredit[node] = credit - debit;
            }
            debited += debit;
        }
        _debitNodes[epoch] = nodes;
        _debitAmounts[epoch] = debits;
    }

    /// @dev Store the proposal of `epoch` after checking its total; returns when it becomes claimable.
    function _store(uint64 epoch, bytes32 root, uint256 total, uint256 debited, bytes32 payloadCommitmentHash)
        private
        returns (uint64 claimableAt)
    {
        uint256 expected = _proposals[_settledEpoch].total + debited;
        if (total != expected) revert DistributorTotalMismatch(total, expected);
        _totalDebited += debited;
        uint64 nowTs = _now();
        claimableAt = nowTs + _challengeWindow;
        _latestEpoch = epoch;
        _proposals[epoch] = Proposal({
            root: root,
            total: total,
            debited: debited,
            payloadCommitmentHash: payloadCommitmentHash,
            proposedAt: nowTs,
            claimableAt: claimableAt,
            vetoed: false
        });
    }

    function _now() private view returns (uint64) {
        return uint64(block.timestamp);
    }

    function _checkWindow(uint64 window) private pure {
        if (window < MIN_CHALLENGE_WINDOW) revert DistributorWindowTooShort(window, MIN_CHALLENGE_WINDOW);
        if (window > MAX_CHALLENGE_WINDOW) revert DistributorWindowTooLong(window, MAX_CHALLENGE_WINDOW);
    }

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
