// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {IAttributionLedger} from "../interfaces/IAttributionLedger.sol";
import {IBatchDisputes} from "../interfaces/IBatchDisputes.sol";
import {INodeRegistry} from "../interfaces/INodeRegistry.sol";

/// @title BatchDisputes
/// @notice Omission, equivocation, commission and availability games over the AttributionLedger's batches; the
/// NodeRegistry's only slasher. See {IBatchDisputes} and docs/disputes.md.
/// @dev Order in every path: check → verify → mark → emit → slash/transfer. Native-currency bonds are paid by pull
/// ({withdraw}) so a challenger or node that refuses payments cannot block a dispute.
contract BatchDisputes is IBatchDisputes, ReentrancyGuardTransient {
    /*//////////////////////////////////////////////////////////////
                                CONSTANTS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IBatchDisputes
    uint64 public constant MAX_POSTING_DELAY = 7 days;

    /// @inheritdoc IBatchDisputes
    uint64 public constant FUTURE_TOLERANCE = 1 days;

    /// @inheritdoc IBatchDisputes
    uint64 public constant CHALLENGE_WINDOW = 4 days;

    /// @inheritdoc IBatchDisputes
    uint64 public constant RESPONSE_WINDOW = 2 days;

    /// @inheritdoc IBatchDisputes
    uint256 public constant CHUNK_BYTES = 126_976;

    /// @inheritdoc IBatchDisputes
    uint32 public constant MAX_CHUNKS = 133;

    /// @inheritdoc IBatchDisputes
    uint256 public constant SLASH_BPS = 5000;

    /// @inheritdoc IBatchDisputes
    uint256 public constant CHALLENGER_BPS = 5000;

    uint256 private constant _BPS = 10_000;

    /// @dev The DA server's payload limit; a certificate declaring more is not one of ours.
    uint256 private constant _MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;

    /// @dev Certificate v3 layout after the 3-byte prefix `0x01 0x00 0xd0`: ABI head words 0 (version),
    /// 2 (payloadLength) and 7 (chunksRoot) of `abi.encode(uint8 version, bytes32 payloadKeccak, uint32 payloadLength,
    /// bytes32 kzgCommitmentsHash, uint32 blobCount, uint64 daSequence, uint64 storedAt, bytes32 chunksRoot,
    /// bytes operatorSignature)`; nine head words in all.
    uint256 private constant _CERT_PREFIX = 3;
    uint256 private constant _CERT_HEAD_BYTES = 9 * 32;
    uint256 private constant _CERT_VERSION = 3;

    bytes32 private constant _DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant _RECEIPT_TYPEHASH =
        keccak256("Receipt(uint256 chainId,address ledger,address node,uint64 seq,bytes32 leaf)");
    bytes32 private constant _NAME_HASH = keccak256("loraledger");
    bytes32 private constant _VERSION_HASH = keccak256("1");

    /*//////////////////////////////////////////////////////////////
                                 STORAGE
    //////////////////////////////////////////////////////////////*/

    IAttributionLedger private immutable _ledger;
    INodeRegistry private immutable _registry;
    address private immutable _treasury;
    uint96 private immutable _omissionBond;
    uint96 private immutable _availabilityBond;

    uint256 private _disputeCount;
    mapping(uint256 disputeId => Dispute) private _disputes;
    mapping(bytes32 key => bool) private _punished;
    mapping(uint256 batchId => bool) private _unavailable;
    mapping(uint256 batchId => uint256) private _openAvailability;
    mapping(address account => uint256) private _owed;

    /*//////////////////////////////////////////////////////////////
                               CONSTRUCTOR
    //////////////////////////////////////////////////////////////*/

    /// @param ledger_ The AttributionLedger whose batches are disputed (its registry is slashed).
    /// @param treasury_ Receives the non-challenger share of every slash (non-zero).
    /// @param omissionBond_ The omission challenge bond (> 0): at least an answer's gas.
    /// @param availabilityBond_ The availability challenge bond (> 0): at least a full-chunk resolve's gas.
    constructor(IAttributionLedger ledger_, address treasury_, uint96 omissionBond_, uint96 availabilityBond_) {
        if (address(ledger_) == address(0) || treasury_ == address(0)) revert DisputesZeroAddress();
        if (omissionBond_ == 0 || availabilityBond_ == 0) revert DisputesZeroBond();
        _ledger = ledger_;
        _registry = ledger_.registry();
        _treasury = treasury_;
        _omissionBond = omissionBond_;
        _availabilityBond = availabilityBond_;
    }

    /*//////////////////////////////////////////////////////////////
                                OMISSION
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IBatchDisputes
    function openOmission(IAttributionLedger.Record calldata record, bytes calldata receipt, uint256 batchId)
        external
        payable
        nonReentrant
        returns (uint256 disputeId)
    {
        if (msg.value != _omissionBond) revert DisputesWrongBond(msg.value, _omissionBond);
        if (record.chainId != block.chainid || record.ledger != address(_ledger)) {
            revert DisputesForeignRecord(record.chainId, record.ledger);
        }
        address node = record.node;
        uint64 seq = record.seq;
        bytes32 leaf = _ledger.recordLeaf(record);
        _checkReceipt(node, seq, leaf, receipt);
        bytes32 key = _faultKey(Kind.Omission, uint160(node), seq);
        if (_punished[key]) revert DisputesAlreadyPunished(key);

        disputeId = ++_disputeCount;
        if (seq >= _ledger.nextSeq(node)) {
            // Unposted: a fault once overdue, or at once for a record dated beyond any honest clock (checked first,
            // so a timestamp near 2^64 cannot overflow the due time and make the record unchallengeable).
            if (record.timestamp <= block.timestamp + FUTURE_TOLERANCE) {
                uint64 dueAt = record.timestamp + MAX_POSTING_DELAY;
                if (block.timestamp < dueAt) revert DisputesNotYetDue(node, seq, dueAt);
            }
            _disputes[disputeId] = Dispute({
                kind: Kind.Omission,
                status: Status.Upheld,
                node: node,
                deadline: 0,
                challenger: msg.sender,
                bond: 0,
                batchId: 0,
                index: seq,
                leaf: leaf
            });
            _owed[msg.sender] += msg.value;
            _slash(disputeId, key);
            return disputeId;
        }

        if (batchId == 0) revert DisputesBatchRequired(node, seq);
        IAttributionLedger.Batch memory b = _ledger.batch(batchId);
        if (b.node != node || seq < b.firstSeq || seq - b.firstSeq >= b.count) {
            revert DisputesSeqNotInBatch(batchId, node, seq);
        }
        _checkWindow(batchId, b.postedAt);
        // casting to 'uint64' is safe: block.timestamp fits for billions of years
        // forge-lint: disable-next-line(unsafe-typecast)
        uint64 deadline = uint64(block.timestamp) + RESPONSE_WINDOW;
        _disputes[disputeId] = Dispute({
            kind: Kind.Omission,
            status: Status.Open,
            node: node,
            deadline: deadline,
            challenger: msg.sender,
            // casting to 'uint96' is safe: msg.value == _omissionBond, a uint96
            // forge-lint: disable-next-line(unsafe-typecast)
            bond: uint96(msg.value),
            // casting to 'uint64' is safe: an existing batch id is at most the ledger's uint64 batch count
            // forge-lint: disable-next-line(unsafe-typecast)
            batchId: uint64(batchId),
            index: seq,
            leaf: leaf
        });
        emit ChallengeOpened(disputeId, Kind.Omission, node, batchId, seq, leaf, msg.sender, msg.value, deadline);
    }

    /// @inheritdoc IBatchDisputes
    function respondOmission(uint256 disputeId, bytes32[] calldata proof) external nonReentrant {
        Dispute storage d = _openForAnswer(disputeId, Kind.Omission);
        uint256 batchId = d.batchId;
        bytes32 leaf = d.leaf;
        if (!MerkleProof.verifyCalldata(proof, _ledger.batch(batchId).root, leaf)) {
            revert DisputesLeafNotInBatch(batchId, leaf);
        }
        _answer(disputeId, d, leaf);
    }

    /*//////////////////////////////////////////////////////////////
                              EQUIVOCATION
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IBatchDisputes
    function proveEquivocation(
        address node,
        uint64 seq,
        bytes32 leafA,
        bytes calldata receiptA,
        bytes32 leafB,
        bytes calldata receiptB
    ) external nonReentrant returns (uint256 disputeId) {
        if (leafA == leafB) revert DisputesSameLeaf(leafA);
        _checkReceipt(node, seq, leafA, receiptA);
        _checkReceipt(node, seq, leafB, receiptB);
        bytes32 key = _faultKey(Kind.Omission, uint160(node), seq);
        if (_punished[key]) revert DisputesAlreadyPunished(key);
        disputeId = _recordInstant(Kind.Equivocation, node, 0, seq, leafA);
        _slash(disputeId, key);
    }

    /*//////////////////////////////////////////////////////////////
                               COMMISSION
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IBatchDisputes
    function proveMisplacedRecord(uint256 batchId, IAttributionLedger.Record calldata record, bytes32[] calldata proof)
        external
        nonReentrant
        returns (uint256 disputeId)
    {
        (IAttributionLedger.Batch memory b, bytes32 leaf) = _provenRecord(batchId, record, proof);
        (bool misplaced, CommissionReason reason) = _misplacement(b, record);
        if (!misplaced) revert DisputesRecordInPlace(batchId, record.seq);
        bytes32 key = _faultKey(Kind.Commission, batchId, uint256(leaf));
        if (_punished[key]) revert DisputesAlreadyPunished(key);
        disputeId = _recordInstant(Kind.Commission, b.node, batchId, record.seq, leaf);
        emit CommissionProven(disputeId, batchId, leaf, reason);
        _slash(disputeId, key);
    }

    /// @inheritdoc IBatchDisputes
    function proveReceiptConflict(
        uint256 batchId,
        IAttributionLedger.Record calldata record,
        bytes32[] calldata proof,
        bytes32 receiptLeaf,
        bytes calldata receipt
    ) external nonReentrant returns (uint256 disputeId) {
        (IAttributionLedger.Batch memory b, bytes32 leaf) = _provenRecord(batchId, record, proof);
        (bool misplaced,) = _misplacement(b, record);
        if (misplaced) revert DisputesRecordMisplaced(batchId, record.seq);
        if (receiptLeaf == leaf) revert DisputesSameLeaf(leaf);
        uint64 seq = record.seq;
        _checkReceipt(b.node, seq, receiptLeaf, receipt);
        // One slash per (node, seq): the same lie also fails an omission challenge or shows as an equivocation.
        bytes32 key = _faultKey(Kind.Omission, uint160(b.node), seq);
        if (_punished[key]) revert DisputesAlreadyPunished(key);
        disputeId = _recordInstant(Kind.Commission, b.node, batchId, seq, leaf);
        emit CommissionProven(disputeId, batchId, leaf, CommissionReason.ReceiptConflict);
        _slash(disputeId, key);
    }

    /*//////////////////////////////////////////////////////////////
                              AVAILABILITY
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IBatchDisputes
    function openAvailability(uint256 batchId, uint32 chunkIndex)
        external
        payable
        nonReentrant
        returns (uint256 disputeId)
    {
        if (msg.value != _availabilityBond) revert DisputesWrongBond(msg.value, _availabilityBond);
        if (chunkIndex >= MAX_CHUNKS) revert DisputesChunkIndexTooLarge(chunkIndex, MAX_CHUNKS);
        IAttributionLedger.Batch memory b = _ledger.batch(batchId);
        if (_unavailable[batchId]) revert DisputesBatchUnavailable(batchId);
        _checkWindow(batchId, b.postedAt);
        disputeId = ++_disputeCount;
        // forge-lint: disable-next-line(unsafe-typecast)
        uint64 deadline = uint64(block.timestamp) + RESPONSE_WINDOW;
        _disputes[disputeId] = Dispute({
            kind: Kind.Availability,
            status: Status.Open,
            node: b.node,
            deadline: deadline,
            challenger: msg.sender,
            // casting to 'uint96' is safe: msg.value == _availabilityBond, a uint96
            // forge-lint: disable-next-line(unsafe-typecast)
            bond: uint96(msg.value),
            // casting to 'uint64' is safe: an existing batch id is at most the ledger's uint64 batch count
            // forge-lint: disable-next-line(unsafe-typecast)
            batchId: uint64(batchId),
            index: chunkIndex,
            leaf: bytes32(0)
        });
        ++_openAvailability[batchId];
        emit ChallengeOpened(
            disputeId, Kind.Availability, b.node, batchId, chunkIndex, bytes32(0), msg.sender, msg.value, deadline
        );
    }

    /// @inheritdoc IBatchDisputes
    function resolveAvailability(
        uint256 disputeId,
        bytes calldata commitment,
        bytes calldata chunk,
        bytes32[] calldata proof
    ) external nonReentrant {
        Dispute storage d = _openForAnswer(disputeId, Kind.Availability);
        uint256 batchId = d.batchId;
        // casting to 'uint32' is safe: index < MAX_CHUNKS was checked at open
        // forge-lint: disable-next-line(unsafe-typecast)
        bytes32 chunkHash = _checkChunk(batchId, uint32(d.index), commitment, chunk, proof);
        d.leaf = chunkHash;
        --_openAvailability[batchId];
        _answer(disputeId, d, chunkHash);
    }

    /*//////////////////////////////////////////////////////////////
                                SETTLING
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IBatchDisputes
    function settleExpired(uint256 disputeId) external nonReentrant {
        Dispute storage d = _disputes[disputeId];
        if (d.status != Status.Open) revert DisputesNotOpen(disputeId);
        uint64 deadline = d.deadline;
        if (block.timestamp <= deadline) revert DisputesDeadlineNotPassed(disputeId, deadline);
        d.status = Status.Upheld;
        uint256 batchId = d.batchId;
        _owed[d.challenger] += d.bond;
        bytes32 key;
        if (d.kind == Kind.Availability) {
            --_openAvailability[batchId];
            key = _faultKey(Kind.Availability, batchId, 0);
            if (!_unavailable[batchId]) {
                _unavailable[batchId] = true;
                emit BatchMarkedUnavailable(batchId, disputeId);
            }
        } else {
            key = _faultKey(Kind.Omission, uint160(d.node), d.index);
        }
        _slash(disputeId, key);
    }

    /// @inheritdoc IBatchDisputes
    function withdraw() external nonReentrant returns (uint256 amount) {
        amount = _owed[msg.sender];
        if (amount == 0) revert DisputesNothingToWithdraw(msg.sender);
        _owed[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert DisputesPayoutFailed(msg.sender, amount);
    }

    /*//////////////////////////////////////////////////////////////
                                  VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IBatchDisputes
    function dispute(uint256 disputeId) external view returns (Dispute memory) {
        return _disputes[disputeId];
    }

    /// @inheritdoc IBatchDisputes
    function disputeCount() external view returns (uint256) {
        return _disputeCount;
    }

    /// @inheritdoc IBatchDisputes
    function isUnavailable(uint256 batchId) external view returns (bool) {
        return _unavailable[batchId];
    }

    /// @inheritdoc IBatchDisputes
    function openAvailabilityChallenges(uint256 batchId) external view returns (uint256) {
        return _openAvailability[batchId];
    }

    /// @inheritdoc IBatchDisputes
    function isPunished(bytes32 key) external view returns (bool) {
        return _punished[key];
    }

    /// @inheritdoc IBatchDisputes
    function faultKey(Kind kind, uint256 a, uint256 b) external pure returns (bytes32) {
        return _faultKey(kind, a, b);
    }

    /// @inheritdoc IBatchDisputes
    function owed(address account) external view returns (uint256) {
        return _owed[account];
    }

    /// @inheritdoc IBatchDisputes
    function receiptDigest(address node, uint64 seq, bytes32 leaf) public view returns (bytes32) {
        bytes32 domain =
            keccak256(abi.encode(_DOMAIN_TYPEHASH, _NAME_HASH, _VERSION_HASH, block.chainid, address(_ledger)));
        bytes32 structHash = keccak256(abi.encode(_RECEIPT_TYPEHASH, block.chainid, address(_ledger), node, seq, leaf));
        return MessageHashUtils.toTypedDataHash(domain, structHash);
    }

    /// @inheritdoc IBatchDisputes
    function chunkLeaf(uint256 index, bytes32 chunkHash) external pure returns (bytes32) {
        return _chunkLeaf(index, chunkHash);
    }

    /// @inheritdoc IBatchDisputes
    function chunkCount(uint256 payloadLength) external pure returns (uint256) {
        return (payloadLength + CHUNK_BYTES - 1) / CHUNK_BYTES;
    }

    /// @inheritdoc IBatchDisputes
    function ledger() external view returns (IAttributionLedger) {
        return _ledger;
    }

    /// @inheritdoc IBatchDisputes
    function registry() external view returns (INodeRegistry) {
        return _registry;
    }

    /// @inheritdoc IBatchDisputes
    function treasury() external view returns (address) {
        return _treasury;
    }

    /// @inheritdoc IBatchDisputes
    function omissionBond() external view returns (uint256) {
        return _omissionBond;
    }

    /// @inheritdoc IBatchDisputes
    function availabilityBond() external view returns (uint256) {
        return _availabilityBond;
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNALS
    //////////////////////////////////////////////////////////////*/

    /// @dev Reverts unless `receipt` is `node`'s low-s signature over (this chain, ledger, node, seq, leaf).
    function _checkReceipt(address node, uint64 seq, bytes32 leaf, bytes calldata receipt) private view {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(receiptDigest(node, seq, leaf), receipt);
        if (err != ECDSA.RecoverError.NoError || signer != node || node == address(0)) {
            revert DisputesBadReceipt(node, seq, signer);
        }
    }

    function _checkWindow(uint256 batchId, uint64 postedAt) private view {
        uint64 closedAt = postedAt + CHALLENGE_WINDOW;
        if (block.timestamp > closedAt) revert DisputesChallengeWindowClosed(batchId, closedAt);
    }

    function _openForAnswer(uint256 disputeId, Kind kind) private view returns (Dispute storage d) {
        d = _disputes[disputeId];
        if (d.status != Status.Open) revert DisputesNotOpen(disputeId);
        if (d.kind != kind) revert DisputesWrongKind(disputeId, d.kind);
        uint64 deadline = d.deadline;
        if (block.timestamp > deadline) revert DisputesDeadlinePassed(disputeId, deadline);
    }

    /// @dev The honest node answered: its challenger's bond pays it for the trouble.
    function _answer(uint256 disputeId, Dispute storage d, bytes32 evidence) private {
        d.status = Status.Answered;
        address node = d.node;
        uint256 bond = d.bond;
        _owed[node] += bond;
        emit ChallengeAnswered(disputeId, d.kind, node, msg.sender, bond, evidence);
    }

    function _recordInstant(Kind kind, address node, uint256 batchId, uint64 index, bytes32 leaf)
        private
        returns (uint256 disputeId)
    {
        disputeId = ++_disputeCount;
        _disputes[disputeId] = Dispute({
            kind: kind,
            status: Status.Upheld,
            node: node,
            deadline: 0,
            challenger: msg.sender,
            bond: 0,
            // casting to 'uint64' is safe: an existing batch id is at most the ledger's uint64 batch count
            // forge-lint: disable-next-line(unsafe-typecast)
            batchId: uint64(batchId),
            index: index,
            leaf: leaf
        });
    }

    /// @dev Reverts unless `proof` shows `record`'s leaf in batch `batchId`'s root.
    function _provenRecord(uint256 batchId, IAttributionLedger.Record calldata record, bytes32[] calldata proof)
        private
        view
        returns (IAttributionLedger.Batch memory b, bytes32 leaf)
    {
        b = _ledger.batch(batchId);
        leaf = _ledger.recordLeaf(record);
        if (!MerkleProof.verifyCalldata(proof, b.root, leaf)) revert DisputesLeafNotInBatch(batchId, leaf);
    }

    function _misplacement(IAttributionLedger.Batch memory b, IAttributionLedger.Record calldata record)
        private
        view
        returns (bool, CommissionReason)
    {
        if (record.chainId != block.chainid) return (true, CommissionReason.WrongChain);
        if (record.ledger != address(_ledger)) return (true, CommissionReason.WrongLedger);
        if (record.node != b.node) return (true, CommissionReason.WrongNode);
        if (record.seq < b.firstSeq || record.seq - b.firstSeq >= b.count) {
            return (true, CommissionReason.SeqOutOfRange);
        }
        return (false, CommissionReason.WrongChain);
    }

    /// @dev Take SLASH_BPS of the accused node's stake, split between the dispute's challenger and the treasury,
    /// once per `key`. The dispute is stored (and marked) before this runs.
    function _slash(uint256 disputeId, bytes32 key) private {
        Dispute storage d = _disputes[disputeId];
        address node = d.node;
        address challenger = d.challenger;
        uint256 slashed;
        uint256 toChallenger;
        // A fault already punished (another dispute proved it first) is upheld without a second slash.
        if (!_punished[key]) {
            _punished[key] = true;
            INodeRegistry.Node memory n = _registry.node(node);
            slashed = (n.bonded + n.unbonding) * SLASH_BPS / _BPS;
            toChallenger = slashed * CHALLENGER_BPS / _BPS;
        }
        uint256 toTreasury = slashed - toChallenger;
        emit FaultProven(disputeId, d.kind, node, d.batchId, d.index, challenger, slashed, toChallenger, toTreasury);
        if (toChallenger != 0) _registry.slash(node, toChallenger, challenger);
        if (toTreasury != 0) _registry.slash(node, toTreasury, _treasury);
    }

    /// @dev The keccak of `chunk` after checking it is chunk `chunkIndex` of batch `batchId`'s payload (0 when the
    /// index lies past the payload, with an empty chunk).
    function _checkChunk(
        uint256 batchId,
        uint32 chunkIndex,
        bytes calldata commitment,
        bytes calldata chunk,
        bytes32[] calldata proof
    ) private view returns (bytes32 chunkHash) {
        (uint256 payloadLength, bytes32 chunksRoot) = _certificate(batchId, commitment);
        uint256 start = uint256(chunkIndex) * CHUNK_BYTES;
        if (start >= payloadLength) {
            // The index lies past the payload: nothing to publish, the challenge was empty.
            if (chunk.length != 0) revert DisputesChunkLength(chunkIndex, 0, chunk.length);
            return bytes32(0);
        }
        {
            uint256 expected = payloadLength - start < CHUNK_BYTES ? payloadLength - start : CHUNK_BYTES;
            if (chunk.length != expected) revert DisputesChunkLength(chunkIndex, expected, chunk.length);
        }
        chunkHash = keccak256(chunk);
        bytes32 leaf = _chunkLeaf(chunkIndex, chunkHash);
        if (!MerkleProof.verifyCalldata(proof, chunksRoot, leaf)) revert DisputesBadChunkProof(chunkIndex, chunkHash);
    }

    /// @dev (payloadLength, chunksRoot) of batch `batchId`'s commitment, a certificate v3; reverts for any other bytes.
    function _certificate(uint256 batchId, bytes calldata commitment)
        private
        view
        returns (uint256 payloadLength, bytes32 chunksRoot)
    {
        {
            bytes32 stored = _ledger.batch(batchId).daCommitmentHash;
            bytes32 got = keccak256(commitment);
            if (got != stored) revert DisputesCommitmentMismatch(batchId, got, stored);
        }
        if (
            commitment.length < _CERT_PREFIX + _CERT_HEAD_BYTES || commitment[0] != 0x01 || commitment[1] != 0x00
                || commitment[2] != 0xd0
        ) revert DisputesCertificateNotV3(batchId, 0);
        uint256 version = uint256(bytes32(commitment[_CERT_PREFIX:_CERT_PREFIX + 32]));
        payloadLength = uint256(bytes32(commitment[_CERT_PREFIX + 64:_CERT_PREFIX + 96]));
        chunksRoot = bytes32(commitment[_CERT_PREFIX + 224:_CERT_PREFIX + 256]);
        if (version != _CERT_VERSION || payloadLength > _MAX_PAYLOAD_BYTES) {
            revert DisputesCertificateNotV3(batchId, version);
        }
    }

    function _chunkLeaf(uint256 index, bytes32 chunkHash) private pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(index, chunkHash))));
    }

    function _faultKey(Kind kind, uint256 a, uint256 b) private pure returns (bytes32) {
        return keccak256(abi.encode(kind, a, b));
    }
}
