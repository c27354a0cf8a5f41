// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IAttributionLedger} from "./IAttributionLedger.sol";
import {INodeRegistry} from "./INodeRegistry.sol";

/// @title IBatchDisputes
/// @notice The dispute games of DESIGN.md v3 ("Disputes"): whoever holds a proof that a node lied slashes it, with no
/// governance call. The contract is the NodeRegistry's only slasher.
/// - **Omission** (respond or be slashed): a node-signed EIP-712 receipt plus the record behind it opens a challenge
///   with a bond; if the seq is posted the node answers with a proof that exactly that leaf is in the batch's root
///   within {RESPONSE_WINDOW}; if the seq is still unposted {MAX_POSTING_DELAY} after the record's timestamp (or the
///   record is dated more than {FUTURE_TOLERANCE} ahead), the node is at fault at once.
/// - **Equivocation**: two receipts of one node for one seq with different leaves: slashed at once.
/// - **Commission**: a record proven in a batch's root that names another chain, ledger or node, or whose seq lies
///   outside the batch's range, or that conflicts with the node's receipt for its seq: slashed at once.
/// - **Availability**: a bonded challenge names a batch and one chunk of its DA payload within {CHALLENGE_WINDOW} of
///   the post; the node publishes the chunk's bytes (calldata of {resolveAvailability}) within {RESPONSE_WINDOW},
///   checked against the chunk root of the batch's certificate v3. Unresolved: slashed, and the batch is unavailable
///   ({isUnavailable}: it earns nothing).
/// An answered challenge pays the challenger's bond (native currency) to the node; an upheld one refunds it. A slash
/// takes {SLASH_BPS} of the node's stake (bonded + unbonding), {CHALLENGER_BPS} of it to the challenger and the rest
/// to the treasury, once per fault ({faultKey}). Native-currency payouts are pulled with {withdraw}.
/// @dev Deployed as `constructor(IAttributionLedger ledger, address treasury, uint96 omissionBond,
/// uint96 availabilityBond)`; governance must then make it the registry's slasher (`NodeRegistry.setSlasher`).
interface IBatchDisputes {
    /*//////////////////////////////////////////////////////////////
                                 TYPES
    //////////////////////////////////////////////////////////////*/

    /// @notice The four games.
    enum Kind {
        Omission,
        Equivocation,
        Commission,
        Availability
    }

    /// @notice A dispute's state: `Open` (a challenge waiting for its answer), `Answered` (the node answered: it was
    /// honest), `Upheld` (the node was at fault; slashed unless the fault was already punished or it had no stake).
    enum Status {
        None,
        Open,
        Answered,
        Upheld
    }

    /// @notice Why a revealed record in a batch's root is a commission.
    enum CommissionReason {
        WrongChain,
        WrongLedger,
        WrongNode,
        SeqOutOfRange,
        ReceiptConflict
    }

    /// @notice One dispute, as returned by {dispute}.
    /// @param kind The game.
    /// @param status Its state.
    /// @param node The accused node.
    /// @param deadline For an open challenge, the last timestamp at which it can be answered (0 for instant proofs).
    /// @param challenger Who opened it (paid on a slash).
    /// @param bond The native-currency bond locked while it is open (0 for instant proofs).
    /// @param batchId The batch (0 for an omission of an unposted seq and for equivocation).
    /// @param index The seq (omission, equivocation, commission) or the chunk index (availability).
    /// @param leaf Omission: the receipt's leaf; commission: the record's leaf; availability: the published chunk's
    /// keccak once resolved; equivocation: the first receipt's leaf.
    struct Dispute {
        Kind kind;
        Status status;
        address node;
        uint64 deadline;
        address challenger;
        uint96 bond;
        uint64 batchId;
        uint64 index;
        bytes32 leaf;
    }

    /*//////////////////////////////////////////////////////////////
                                 EVENTS
    //////////////////////////////////////////////////////////////*/

    /// @notice Emitted when `challenger` opened challenge `disputeId` against `node` with `bond`, to be answered by
    /// `deadline`.
    /// @param disputeId The new dispute id (starts at 1).
    /// @param kind {Kind.Omission} or {Kind.Availability}.
    /// @param node The accused node.
    /// @param batchId The batch the answer must come from.
    /// @param index The seq (omission) or chunk index (availability).
    /// @param leaf The receipt's leaf (omission) or 0 (availability).
    /// @param challenger The challenger.
    /// @param bond The bond locked.
    /// @param deadline The last timestamp for an answer.
    event ChallengeOpened(
        uint256 indexed disputeId,
        Kind kind,
        address indexed node,
        uint256 indexed batchId,
        uint64 index,
        bytes32 leaf,
        address challenger,
        uint256 bond,
        uint64 deadline
    );

    /// @notice Emitted when challenge `disputeId` was answered (the node was honest) and its `bond` went to `node`.
    /// @param evidence Omission: the proven leaf; availability: the published chunk's keccak (its bytes are the
    /// calldata of the resolving transaction), or 0 when the chunk index lay past the payload's last chunk.
    event ChallengeAnswered(
        uint256 indexed disputeId, Kind kind, address indexed node, address answerer, uint256 bond, bytes32 evidence
    );

    /// @notice Emitted when `node` was found at fault in dispute `disputeId` and `slashed` of its stake was taken:
    /// `toChallenger` to `challenger`, `toTreasury` to the treasury (all 0 when the fault was already punished or the
    /// node has no stake left).
    event FaultProven(
        uint256 indexed disputeId,
        Kind kind,
        address indexed node,
        uint256 indexed batchId,
        uint64 index,
        address challenger,
        uint256 slashed,
        uint256 toChallenger,
        uint256 toTreasury
    );

    /// @notice Emitted with {FaultProven} for a commission: why the record in `batchId` was wrong.
    event CommissionProven(uint256 indexed disputeId, uint256 indexed batchId, bytes32 leaf, CommissionReason reason);

    /// @notice Emitted when batch `batchId` was marked unavailable by the unresolved challenge `disputeId`.
    event BatchMarkedUnavailable(uint256 indexed batchId, uint256 indexed disputeId);

    /// @notice Emitted when `account` withdrew `amount` of bonds paid to it.
    event Withdrawn(address indexed account, uint256 amount);

    /*//////////////////////////////////////////////////////////////
                                 ERRORS
    //////////////////////////////////////////////////////////////*/

    /// @notice A constructor address was zero.
    error DisputesZeroAddress();

    /// @notice A constructor bond was zero: a free challenge could grief an honest node at no cost.
    error DisputesZeroBond();

    /// @notice The native value sent is not the bond this challenge needs; send exactly `required`.
    error DisputesWrongBond(uint256 sent, uint256 required);

    /// @notice The record names another chain or ledger than this deployment's; a receipt binds one (chain, ledger).
    error DisputesForeignRecord(uint256 chainId, address ledger);

    /// @notice The receipt is not `node`'s low-s EIP-712 signature over (chainId, ledger, node, seq, leaf);
    /// `signer` is who it recovers to (0 when malformed).
    error DisputesBadReceipt(address node, uint64 seq, address signer);

    /// @notice `seq` of `node` is not in batch `batchId` (another node's batch or outside its range); name the batch
    /// whose range holds it (from the ledger's `BatchPosted` events).
    error DisputesSeqNotInBatch(uint256 batchId, address node, uint64 seq);

    /// @notice `seq` is posted, so the challenge must name the batch holding it (got 0).
    error DisputesBatchRequired(address node, uint64 seq);

    /// @notice `seq` is not posted yet and not overdue: the node has until `dueAt` to post it.
    error DisputesNotYetDue(address node, uint64 seq, uint64 dueAt);

    /// @notice Batch `batchId` can no longer be challenged: its window closed at `closedAt`.
    error DisputesChallengeWindowClosed(uint256 batchId, uint64 closedAt);

    /// @notice This fault (see {faultKey}) was already punished; a fault is slashed once.
    error DisputesAlreadyPunished(bytes32 key);

    /// @notice Dispute `disputeId` is not an open challenge of `kind` (unknown, already answered or upheld).
    error DisputesNotOpen(uint256 disputeId);

    /// @notice Dispute `disputeId` is of another kind than this call handles.
    error DisputesWrongKind(uint256 disputeId, Kind kind);

    /// @notice The answer came after the deadline; the challenge can only be settled ({settleExpired}).
    error DisputesDeadlinePassed(uint256 disputeId, uint64 deadline);

    /// @notice The challenge can still be answered until `deadline`; settle it afterwards.
    error DisputesDeadlineNotPassed(uint256 disputeId, uint64 deadline);

    /// @notice The proof does not show `leaf` in batch `batchId`'s root.
    error DisputesLeafNotInBatch(uint256 batchId, bytes32 leaf);

    /// @notice The two receipts carry the same leaf: no equivocation.
    error DisputesSameLeaf(bytes32 leaf);

    /// @notice The record is in its place (this chain, ledger and node, seq in range): no commission; for a receipt
    /// conflict use {proveReceiptConflict}.
    error DisputesRecordInPlace(uint256 batchId, uint64 seq);

    /// @notice The record sits outside its place; prove that with {proveMisplacedRecord} instead.
    error DisputesRecordMisplaced(uint256 batchId, uint64 seq);

    /// @notice The chunk index is past the largest payload's last chunk (`max` chunks).
    error DisputesChunkIndexTooLarge(uint32 chunkIndex, uint32 max);

    /// @notice Batch `batchId` is already unavailable: nothing left to challenge.
    error DisputesBatchUnavailable(uint256 batchId);

    /// @notice The commitment passed does not hash to the one batch `batchId` stored.
    error DisputesCommitmentMismatch(uint256 batchId, bytes32 got, bytes32 stored);

    /// @notice The batch's commitment is not a certificate v3 (`0x01 0x00 0xd0` then version 3 with a chunk root and a
    /// payload length ≤ 16 MiB); such a batch cannot be resolved, so an availability challenge on it is upheld.
    error DisputesCertificateNotV3(uint256 batchId, uint256 version);

    /// @notice The chunk has `got` bytes where the payload's chunk `chunkIndex` has `expected`.
    error DisputesChunkLength(uint32 chunkIndex, uint256 expected, uint256 got);

    /// @notice The proof does not show the chunk's keccak at `chunkIndex` under the certificate's chunk root.
    error DisputesBadChunkProof(uint32 chunkIndex, bytes32 chunkHash);

    /// @notice `account` has no bonds to withdraw.
    error DisputesNothingToWithdraw(address account);

    /// @notice Sending `amount` to `account` failed; withdraw to an account that accepts native currency.
    error DisputesPayoutFailed(address account, uint256 amount);

    /*//////////////////////////////////////////////////////////////
                               OMISSION
    //////////////////////////////////////////////////////////////*/

    /// @notice Challenge the node that signed `receipt` for `record` to show the record is posted. Send exactly
    /// {omissionBond}. If the record's seq is posted, name the batch holding it (`batchId`, within
    /// {CHALLENGE_WINDOW} of its post): the node must answer with {respondOmission} by the returned deadline. If it
    /// is unposted and overdue (`record.timestamp + MAX_POSTING_DELAY ≤ now`, or the record is dated more than
    /// {FUTURE_TOLERANCE} ahead), the node is slashed at once and the bond is refunded (`batchId` ignored).
    /// @param record The record behind the receipt (its leaf is what the receipt signed).
    /// @param receipt The node's 65-byte EIP-712 receipt signature (low s).
    /// @param batchId The batch whose range holds `record.seq` (0 when unposted).
    /// @return disputeId The dispute id.
    function openOmission(IAttributionLedger.Record calldata record, bytes calldata receipt, uint256 batchId)
        external
        payable
        returns (uint256 disputeId);

    /// @notice Answer omission challenge `disputeId` (anyone may; the bond goes to the node): `proof` shows the
    /// challenged leaf in the batch's root.
    function respondOmission(uint256 disputeId, bytes32[] calldata proof) external;

    /*//////////////////////////////////////////////////////////////
                             EQUIVOCATION
    //////////////////////////////////////////////////////////////*/

    /// @notice Prove that `node` signed two different leaves for `seq`; slashes it at once.
    /// @return disputeId The dispute id.
    function proveEquivocation(
        address node,
        uint64 seq,
        bytes32 leafA,
        bytes calldata receiptA,
        bytes32 leafB,
        bytes calldata receiptB
    ) external returns (uint256 disputeId);

    /*//////////////////////////////////////////////////////////////
                              COMMISSION
    //////////////////////////////////////////////////////////////*/

    /// @notice Prove that batch `batchId`'s root holds `record` (by `proof`) although it names another chain, ledger
    /// or node than the batch, or its seq lies outside the batch's range; slashes the batch's node at once.
    /// @return disputeId The dispute id.
    function proveMisplacedRecord(uint256 batchId, IAttributionLedger.Record calldata record, bytes32[] calldata proof)
        external
        returns (uint256 disputeId);

    /// @notice Prove that batch `batchId`'s root holds `record` (in its place) while the batch's node signed a
    /// receipt for the same seq with another leaf; slashes the node at once.
    /// @return disputeId The dispute id.
    function proveReceiptConflict(
        uint256 batchId,
        IAttributionLedger.Record calldata record,
        bytes32[] calldata proof,
        bytes32 receiptLeaf,
        bytes calldata receipt
    ) external returns (uint256 disputeId);

    /*//////////////////////////////////////////////////////////////
                             AVAILABILITY
    //////////////////////////////////////////////////////////////*/

    /// @notice Challenge batch `batchId`'s node to publish chunk `chunkIndex` of its DA payload. Send exactly
    /// {availabilityBond}; within {CHALLENGE_WINDOW} of the post.
    /// @return disputeId The dispute id.
    function openAvailability(uint256 batchId, uint32 chunkIndex) external payable returns (uint256 disputeId);

    /// @notice Resolve availability challenge `disputeId` (anyone may; the bond goes to the node): `commitment` is the
    /// batch's DA commitment (a certificate v3), `chunk` the payload's bytes
    /// `[chunkIndex · CHUNK_BYTES, min((chunkIndex + 1) · CHUNK_BYTES, payloadLength))` and `proof` the
    /// StandardMerkleTree proof of `(chunkIndex, keccak256(chunk))` under the certificate's chunk root. When the index
    /// lies past the payload's last chunk, pass an empty chunk and proof.
    function resolveAvailability(
        uint256 disputeId,
        bytes calldata commitment,
        bytes calldata chunk,
        bytes32[] calldata proof
    ) external;

    /*//////////////////////////////////////////////////////////////
                               SETTLING
    //////////////////////////////////////////////////////////////*/

    /// @notice Uphold open challenge `disputeId` after its deadline passed unanswered (anyone may call): slash the
    /// node, refund the bond, and for availability mark the batch unavailable.
    function settleExpired(uint256 disputeId) external;

    /// @notice Send the caller every bond paid to it (answered challenges for a node, refunds for a challenger).
    /// @return amount The amount sent.
    function withdraw() external returns (uint256 amount);

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @notice Dispute `disputeId` (all zero for an unknown id).
    function dispute(uint256 disputeId) external view returns (Dispute memory);

    /// @notice The number of disputes so far (the latest id).
    function disputeCount() external view returns (uint256);

    /// @notice Whether batch `batchId` was found unavailable: the rewards rule gives it nothing.
    function isUnavailable(uint256 batchId) external view returns (bool);

    /// @notice The number of availability challenges on `batchId` still open: the rewards rule waits for 0.
    function openAvailabilityChallenges(uint256 batchId) external view returns (uint256);

    /// @notice Whether the fault `key` (see {faultKey}) was punished.
    function isPunished(bytes32 key) external view returns (bool);

    /// @notice The key a fault is punished once under: `keccak256(abi.encode(kind, a, b))` with (node, seq) for
    /// omission, equivocation and receipt conflicts (one slash per node and seq), (batchId, leaf) for a misplaced
    /// record and (batchId, 0) for availability.
    function faultKey(Kind kind, uint256 a, uint256 b) external pure returns (bytes32);

    /// @notice Native currency `account` can {withdraw}.
    function owed(address account) external view returns (uint256);

    /// @notice The EIP-712 digest `node` signs for `(block.chainid, ledger, node, seq, leaf)`.
    function receiptDigest(address node, uint64 seq, bytes32 leaf) external view returns (bytes32);

    /// @notice The chunk-tree leaf: `keccak256(bytes.concat(keccak256(abi.encode(uint256 index, bytes32 chunkHash))))`
    /// (StandardMerkleTree over `["uint256", "bytes32"]`).
    function chunkLeaf(uint256 index, bytes32 chunkHash) external pure returns (bytes32);

    /// @notice The number of chunks of a `payloadLength`-byte payload: `ceil(payloadLength / CHUNK_BYTES)`.
    function chunkCount(uint256 payloadLength) external pure returns (uint256);

    /// @notice The ledger whose batches are disputed.
    function ledger() external view returns (IAttributionLedger);

    /// @notice The NodeRegistry this contract slashes (the ledger's).
    function registry() external view returns (INodeRegistry);

    /// @notice Receives the non-challenger part of every slash.
    function treasury() external view returns (address);

    /// @notice The bond of an omission challenge (native currency).
    function omissionBond() external view returns (uint256);

    /// @notice The bond of an availability challenge (native currency): it covers a full-chunk resolve.
    function availabilityBond() external view returns (uint256);

    /// @notice How long after a record's timestamp its node may leave it unposted (7 days): longer than any DA or L2
    /// outage a node rides out (invariant 3), and shorter than the 14-day minimum unbonding delay, so a node that
    /// signs and then unbonds is still slashable when the omission falls due.
    function MAX_POSTING_DELAY() external view returns (uint64);

    /// @notice How far ahead of the block's time a record may be dated (1 day): a record dated later is a fault at
    /// once (else a node could postpone an omission forever by dating records ahead).
    function FUTURE_TOLERANCE() external view returns (uint64);

    /// @notice How long after a batch is posted it can be challenged for omission or availability (4 days).
    function CHALLENGE_WINDOW() external view returns (uint64);

    /// @notice How long a node has to answer a challenge (2 days).
    function RESPONSE_WINDOW() external view returns (uint64);

    /// @notice The payload bytes per availability chunk (126,976 = 31 × 4096): a full-chunk resolve fits one
    /// transaction (128 KiB).
    function CHUNK_BYTES() external view returns (uint256);

    /// @notice The chunks of the largest payload (16 MiB): 133.
    function MAX_CHUNKS() external view returns (uint32);

    /// @notice The share of the node's stake one proven fault takes, in basis points (5000).
    function SLASH_BPS() external view returns (uint256);

    /// @notice The challenger's share of a slash, in basis points (5000); the rest goes to the treasury.
    function CHALLENGER_BPS() external view returns (uint256);
}
