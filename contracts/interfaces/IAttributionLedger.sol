// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {INodeRegistry} from "./INodeRegistry.sol";

/// @title IAttributionLedger
/// @notice Gap-free, exactly-once log of attribution batches posted by active nodes. Each batch commits to a
/// StandardMerkleTree root over `count` attribution records with `seq` in `[firstSeq, firstSeq + count)` and to the
/// DA commitment of the `LLB2` payload those records were decoded from.
/// @dev Deployed as `constructor(INodeRegistry registry)`; the registry address is immutable and must be non-zero
/// (else {LedgerZeroAddress}). Batch ids start at 1 and increase by one per batch; id 0 means "no batch".
interface IAttributionLedger {
    /*//////////////////////////////////////////////////////////////
                                 STRUCTS
    //////////////////////////////////////////////////////////////*/

    /// @notice A posted batch as returned by {batch}.
    /// @param root StandardMerkleTree root over the batch's records.
    /// @param daCommitmentHash keccak256 of the DA commitment bytes passed to {postBatch}.
    /// @param node The node (msg.sender of {postBatch}) that posted the batch.
    /// @param firstSeq The seq of the batch's first record.
    /// @param count The number of records; the batch covers seqs `[firstSeq, firstSeq + count)`.
    /// @param postedAt `block.timestamp` of the posting block.
    /// @param firstTimestamp The first record's timestamp as the node declared it (every record lies in
    /// `[firstTimestamp, lastTimestamp]`, else the batch is malformed and earns nothing).
    /// @param lastTimestamp The last record's timestamp (≤ `postedAt`).
    struct Batch {
        bytes32 root;
        bytes32 daCommitmentHash;
        address node;
        uint64 firstSeq;
        uint32 count;
        uint64 postedAt;
        uint64 firstTimestamp;
        uint64 lastTimestamp;
    }

    /// @notice An attribution record (v1). Field order is the leaf encoding order (DESIGN.md, "Attribution record").
    struct Record {
        uint256 chainId;
        address ledger;
        address node;
        uint64 seq;
        bytes32 modelId;
        bytes32 adapterId;
        bytes32[] datasetIds;
        uint16[] weightsBps;
        uint32 promptTokens;
        uint32 completionTokens;
        uint64 timestamp;
        bytes32 ioHash;
    }

    /*//////////////////////////////////////////////////////////////
                                 EVENTS
    //////////////////////////////////////////////////////////////*/

    /// @notice Emitted when `node` posted batch `batchId` covering seqs `[firstSeq, firstSeq + count)`.
    /// @param batchId The new batch id (starts at 1).
    /// @param node The posting node.
    /// @param root The records' Merkle root.
    /// @param firstSeq The first seq covered.
    /// @param count The number of records covered.
    /// @param firstTimestamp The first record's timestamp (the header's lower bound for every record's timestamp).
    /// @param lastTimestamp The last record's timestamp (the upper bound).
    /// @param daCommitmentHash keccak256 of the DA commitment (as stored). The commitment's bytes are not in the
    /// event: they are the `daCommitment` argument of the {postBatch} call in the same transaction's calldata, which
    /// an indexer decodes and checks against this hash (docs/contracts.md, "Reading a batch's commitment").
    event BatchPosted(
        uint256 indexed batchId,
        address indexed node,
        bytes32 root,
        uint64 firstSeq,
        uint32 count,
        uint64 firstTimestamp,
        uint64 lastTimestamp,
        bytes32 daCommitmentHash
    );

    /*//////////////////////////////////////////////////////////////
                                 ERRORS
    //////////////////////////////////////////////////////////////*/

    /// @notice The caller is not an active node in the NodeRegistry; bond at least `minBond` first.
    /// @param node The caller.
    error LedgerNodeNotActive(address node);

    /// @notice `firstSeq` is not the node's next seq; read {nextSeq} and post from there (batches are gap-free).
    /// @param expected The node's next seq.
    /// @param got The firstSeq passed.
    error LedgerSeqGap(uint64 expected, uint64 got);

    /// @notice A batch must cover at least one record.
    error LedgerZeroCount();

    /// @notice The Merkle root must be non-zero.
    error LedgerZeroRoot();

    /// @notice The DA commitment must be non-empty.
    error LedgerEmptyCommitment();

    /// @notice More records than fit in one 16 MiB `LLB2` payload; seal smaller batches.
    /// @param count The count passed.
    /// @param max The maximum ({MAX_BATCH_RECORDS}).
    error LedgerCountTooLarge(uint32 count, uint32 max);

    /// @notice The DA commitment is longer than any real one can be.
    /// @param length The commitment's length in bytes.
    /// @param max The maximum ({MAX_COMMITMENT_BYTES}).
    error LedgerCommitmentTooLong(uint256 length, uint256 max);

    /// @notice `firstSeq + count` does not fit in a uint64.
    /// @param firstSeq The firstSeq passed.
    /// @param count The count passed.
    error LedgerSeqOverflow(uint64 firstSeq, uint32 count);

    /// @notice The batch's first record timestamp is after its last; pass the timestamps of its first and last
    /// records in seq order.
    error LedgerTimestampsOutOfOrder(uint64 firstTimestamp, uint64 lastTimestamp);

    /// @notice The batch's last record timestamp lies after the posting block's timestamp; records are served
    /// before they are posted.
    error LedgerTimestampInFuture(uint64 lastTimestamp, uint64 blockTimestamp);

    /// @notice The batch starts before the node's previous batch ended: record timestamps never go back per node.
    /// @param firstTimestamp The batch's first record timestamp.
    /// @param previousLast The last record timestamp of the node's previous batch ({lastRecordTimestamp}).
    error LedgerTimestampBeforePrevious(uint64 firstTimestamp, uint64 previousLast);

    /// @notice No batch with this id exists; ids run from 1 to {batchCount}.
    /// @param batchId The id asked for.
    error LedgerUnknownBatch(uint256 batchId);

    /// @notice A constructor address argument was zero.
    error LedgerZeroAddress();

    /*//////////////////////////////////////////////////////////////
                                FUNCTIONS
    //////////////////////////////////////////////////////////////*/

    /// @notice Post the next batch of the caller's records.
    /// @dev Only an active node (`registry.isActive(msg.sender)`). Requires `0 < count ≤ MAX_BATCH_RECORDS`,
    /// `root != 0`, a commitment of 1 to {MAX_COMMITMENT_BYTES} bytes, `firstSeq == nextSeq(msg.sender)` and
    /// `lastTimestamp(msg.sender) ≤ firstTimestamp ≤ lastTimestamp ≤ block.timestamp`; advances `nextSeq` by `count`.
    /// @param firstSeq The seq of the first record; must equal {nextSeq} of the caller.
    /// @param count The number of records (1 to {MAX_BATCH_RECORDS}).
    /// @param firstTimestamp The first record's timestamp (≥ the end of the node's previous batch).
    /// @param lastTimestamp The last record's timestamp (≤ `block.timestamp`).
    /// @param root The StandardMerkleTree root over the records' leaves (see {recordLeaf}).
    /// @param daCommitment The DA commitment of the batch's `LLB2` payload.
    /// @return batchId The new batch's id.
    function postBatch(
        uint64 firstSeq,
        uint32 count,
        uint64 firstTimestamp,
        uint64 lastTimestamp,
        bytes32 root,
        bytes calldata daCommitment
    ) external returns (uint256 batchId);

    /// @notice The most records one batch may cover: what fits one 16 MiB `LLB2` payload,
    /// `(16 MiB − 93-byte header) / 62 bytes per record slot` = 270598.
    function MAX_BATCH_RECORDS() external view returns (uint32);

    /// @notice The longest DA commitment accepted (24576 bytes). Our DA server's commitment is 387 bytes at any payload
    /// size (certificate v2); certificate v1, which listed one 48-byte KZG commitment per 4096-element chunk, made
    /// 17411 bytes for a 16 MiB payload. The bound keeps room for a drop-in eigenda-proxy's larger certificates.
    function MAX_COMMITMENT_BYTES() external view returns (uint256);

    /// @notice The NodeRegistry that decides which nodes may post.
    function registry() external view returns (INodeRegistry);

    /// @notice The batch with id `batchId`; reverts with {LedgerUnknownBatch} if there is none.
    /// @param batchId The batch id (1-based).
    function batch(uint256 batchId) external view returns (Batch memory);

    /// @notice The seq that `node`'s next batch must start at (0 before its first batch).
    /// @param node The node address.
    function nextSeq(address node) external view returns (uint64);

    /// @notice The last record timestamp of `node`'s latest batch (0 before its first batch): its next batch's
    /// `firstTimestamp` must not be earlier.
    function lastRecordTimestamp(address node) external view returns (uint64);

    /// @notice The block in which `node` posted its latest batch (0 before its first batch). The RewardDistributor
    /// keeps a node's fee credit until a settled epoch covers this block.
    function lastPostBlock(address node) external view returns (uint64);

    /// @notice The number of batches posted so far, which is also the id of the latest batch.
    function batchCount() external view returns (uint256);

    /// @notice The StandardMerkleTree leaf of `record`:
    /// `keccak256(bytes.concat(keccak256(abi.encode(<the 12 fields as separate values>))))`.
    /// @param record The record.
    function recordLeaf(Record calldata record) external pure returns (bytes32);

    /// @notice Whether `record` is attributed by batch `batchId`: its chainId is this chain, its ledger is this
    /// contract, its node posted the batch, its seq lies in the batch's range, and `proof` proves its leaf
    /// against the batch's root. Reverts with {LedgerUnknownBatch} for an unknown batch id.
    /// @param batchId The batch id.
    /// @param record The record to check.
    /// @param proof The StandardMerkleTree proof of the record's leaf.
    function verifyRecord(uint256 batchId, Record calldata record, bytes32[] calldata proof)
        external
        view
        returns (bool);
}
