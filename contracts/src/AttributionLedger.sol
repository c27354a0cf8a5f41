// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

import {IAttributionLedger} from "../interfaces/IAttributionLedger.sol";
import {INodeRegistry} from "../interfaces/INodeRegistry.sol";

/// @title AttributionLedger
/// @notice Gap-free, exactly-once log of attribution batches posted by active nodes. See {IAttributionLedger}.
/// @dev Gas: a batch takes three storage slots (root, commitment hash, and one packed slot holding a ledger-local
/// node index, firstSeq, count, postedAt and the first and last record timestamps). The node index (1-based, assigned on a node's first post) is what
/// lets the packed slot fit; a node's first post pays once for its index entry.
contract AttributionLedger is IAttributionLedger {
    /*//////////////////////////////////////////////////////////////
                                CONSTANTS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IAttributionLedger
    /// @dev (16 MiB − 3 header units of 31 bytes) / 62-byte record slots, rounded down; the same figure as the
    /// Python payload codec's `max_records_for(0)`.
    uint32 public constant MAX_BATCH_RECORDS = 270_598;

    /// @inheritdoc IAttributionLedger
    /// @dev 24 KiB: 1.41 × the 17411-byte v1 certificate of a 16 MiB payload, 63 × our 387-byte v2 certificate
    /// (docs/contracts.md has the arithmetic): room for a real eigenda-proxy's certificate, whose BLS non-signer data
    /// grows with the operator set, without letting a node store megabytes of junk per batch.
    uint256 public constant MAX_COMMITMENT_BYTES = 24 * 1024;

    /*//////////////////////////////////////////////////////////////
                                 STORAGE
    //////////////////////////////////////////////////////////////*/

    /// @dev One batch in storage. `nodeIndex` indexes `_nodeAt`; the timestamps are uint40 (until year 36812), so
    /// the third slot holds 248 bits.
    struct StoredBatch {
        bytes32 root;
        bytes32 daCommitmentHash;
        uint32 nodeIndex;
        uint64 firstSeq;
        uint32 count;
        uint40 postedAt;
        uint40 firstTimestamp;
        uint40 lastTimestamp;
    }

    /// @dev Per-node state in one slot: the next seq, the node's 1-based index (0 = never posted), the last record
    /// timestamp of its latest batch and the block that batch was posted in.
    struct NodeState {
        uint64 nextSeq;
        uint32 index;
        uint40 lastTimestamp;
        uint48 lastPostBlock;
    }

    /// @dev Global counters in one slot, both written by a node's first post.
    struct Counters {
        uint64 batchCount;
        uint32 nodeCount;
    }

    INodeRegistry private immutable _registry;
    Counters private _counters;
    mapping(uint256 batchId => StoredBatch) private _batches;
    mapping(address node => NodeState) private _nodeStates;
    mapping(uint32 index => address node) private _nodeAt;

    /*//////////////////////////////////////////////////////////////
                               CONSTRUCTOR
    //////////////////////////////////////////////////////////////*/

    /// @param registry_ The NodeRegistry deciding which nodes may post (non-zero).
    constructor(INodeRegistry registry_) {
        if (address(registry_) == address(0)) revert LedgerZeroAddress();
        _registry = registry_;
    }

    /*//////////////////////////////////////////////////////////////
                                 POSTING
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IAttributionLedger
    function postBatch(
        uint64 firstSeq,
        uint32 count,
        uint64 firstTimestamp,
        uint64 lastTimestamp,
        bytes32 root,
        bytes calldata daCommitment
    ) external returns (uint256 batchId) {
        if (count == 0) revert LedgerZeroCount();
        if (count > MAX_BATCH_RECORDS) revert LedgerCountTooLarge(count, MAX_BATCH_RECORDS);
        if (root == bytes32(0)) revert LedgerZeroRoot();
        if (daCommitment.length == 0) revert LedgerEmptyCommitment();
        if (daCommitment.length > MAX_COMMITMENT_BYTES) {
            revert LedgerCommitmentTooLong(daCommitment.length, MAX_COMMITMENT_BYTES);
        }
        if (!_registry.isActive(msg.sender)) revert LedgerNodeNotActive(msg.sender);

        NodeState memory state = _nodeStates[msg.sender];
        if (firstSeq != state.nextSeq) revert LedgerSeqGap(state.nextSeq, firstSeq);
        uint256 end = uint256(firstSeq) + count;
        if (end > type(uint64).max) revert LedgerSeqOverflow(firstSeq, count);
        // A batch's records are served no later than it is posted and no earlier than the node's previous batch
        // ended: a node can misdate a record only inside the gap since its previous batch (docs/rewards.md).
        if (firstTimestamp > lastTimestamp) revert LedgerTimestampsOutOfOrder(firstTimestamp, lastTimestamp);
        if (lastTimestamp > block.timestamp) revert LedgerTimestampInFuture(lastTimestamp, uint64(block.timestamp));
        if (firstTimestamp < state.lastTimestamp) {
            revert LedgerTimestampBeforePrevious(firstTimestamp, state.lastTimestamp);
        }

        Counters memory counters = _counters;
        if (state.index == 0) {
            // First post of this node: assign the next index. uint32 holds 4e9 nodes.
            state.index = ++counters.nodeCount;
            _nodeAt[state.index] = msg.sender;
        }
        batchId = ++counters.batchCount;
        // casting to 'uint64' is safe because end <= type(uint64).max was checked above
        // forge-lint: disable-next-line(unsafe-typecast)
        state.nextSeq = uint64(end);
        // casting to 'uint40' is safe: lastTimestamp <= block.timestamp was checked above
        // forge-lint: disable-next-line(unsafe-typecast)
        state.lastTimestamp = uint40(lastTimestamp);
        // casting to 'uint48' is safe for 2^48 blocks
        // forge-lint: disable-next-line(unsafe-typecast)
        state.lastPostBlock = uint48(block.number);
        _counters = counters;
        _nodeStates[msg.sender] = state;
        bytes32 daCommitmentHash = keccak256(daCommitment);
        _batches[batchId] = StoredBatch({
            root: root,
            daCommitmentHash: daCommitmentHash,
            nodeIndex: state.index,
            firstSeq: firstSeq,
            count: count,
            // casting to 'uint40' is safe until the year 36812
            // forge-lint: disable-next-line(unsafe-typecast)
            postedAt: uint40(block.timestamp),
            // casting to 'uint40' is safe: firstTimestamp <= lastTimestamp <= block.timestamp (checked above)
            // forge-lint: disable-next-line(unsafe-typecast)
            firstTimestamp: uint40(firstTimestamp),
            // forge-lint: disable-next-line(unsafe-typecast)
            lastTimestamp: uint40(lastTimestamp)
        });
        // The commitment's hash, not its bytes: they are this call's calldata already, where readers take them
        // (docs/contracts.md, "Reading a batch's commitment"); logging them again was paid on every post.
        emit BatchPosted(batchId, msg.sender, root, firstSeq, count, firstTimestamp, lastTimestamp, daCommitmentHash);
    }

    /*//////////////////////////////////////////////////////////////
                                  VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IAttributionLedger
    function registry() external view returns (INodeRegistry) {
        return _registry;
    }

    /// @inheritdoc IAttributionLedger
    function batch(uint256 batchId) external view returns (Batch memory) {
        StoredBatch storage b = _storedBatch(batchId);
        return Batch({
            root: b.root,
            daCommitmentHash: b.daCommitmentHash,
            node: _nodeAt[b.nodeIndex],
            firstSeq: b.firstSeq,
            count: b.count,
            postedAt: b.postedAt,
            firstTimestamp: b.firstTimestamp,
            lastTimestamp: b.lastTimestamp
        });
    }

    /// @inheritdoc IAttributionLedger
    function nextSeq(address node) external view returns (uint64) {
        return _nodeStates[node].nextSeq;
    }

    /// @inheritdoc IAttributionLedger
    function lastRecordTimestamp(address node) external view returns (uint64) {
        return _nodeStates[node].lastTimestamp;
    }

    /// @inheritdoc IAttributionLedger
    function lastPostBlock(address node) external view returns (uint64) {
        return _nodeStates[node].lastPostBlock;
    }

    /// @inheritdoc IAttributionLedger
    function batchCount() external view returns (uint256) {
        return _counters.batchCount;
    }

    /// @inheritdoc IAttributionLedger
    function recordLeaf(Record calldata record) public pure returns (bytes32) {
        // 12 top-level values, not the struct as one tuple: the StandardMerkleTree leaf encodes each value as an
        // argument, which differs from a tuple encoding by the tuple's leading offset word.
        return keccak256(
            bytes.concat(
                keccak256(
                    abi.encode(
                        record.chainId,
                        record.ledger,
                        record.node,
                        record.seq,
                        record.modelId,
                        record.adapterId,
                        record.datasetIds,
                        record.weightsBps,
                        record.promptTokens,
                        record.completionTokens,
                        record.timestamp,
                        record.ioHash
                    )
                )
            )
        );
    }

    /// @inheritdoc IAttributionLedger
    function verifyRecord(uint256 batchId, Record calldata record, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        StoredBatch storage b = _storedBatch(batchId);
        if (record.chainId != block.chainid || record.ledger != address(this)) return false;
        if (record.node != _nodeAt[b.nodeIndex]) return false;
        uint64 firstSeq = b.firstSeq;
        if (record.seq < firstSeq || record.seq - firstSeq >= b.count) return false;
        return MerkleProof.verifyCalldata(proof, b.root, recordLeaf(record));
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNALS
    //////////////////////////////////////////////////////////////*/

    function _storedBatch(uint256 batchId) private view returns (StoredBatch storage b) {
        b = _batches[batchId];
        // Every stored batch has a non-zero root (postBatch requires it), so a zero root means "no such batch".
        if (b.root == bytes32(0)) revert LedgerUnknownBatch(batchId);
    }
}
