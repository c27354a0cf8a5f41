// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IAssetRegistry} from "../interfaces/IAssetRegistry.sol";
import {Governed} from "./utils/Governed.sol";

/// @title AssetRegistry
/// @notice Datasets, base models and adapters with owner-namespaced ids, scheduled changes of everything that moves
/// money, and two-step ownership transfers. See {IAssetRegistry}.
/// @dev Scheduled changes without a keeper: each dataset and adapter keeps two term slots, `terms[current]` (in
/// effect before `nextAt`) and `terms[1 - current]` (the scheduled terms, in effect from `nextAt`). Views pick the
/// slot by comparing `block.timestamp` with `nextAt`; the next write to the asset first flips `current` if the
/// scheduled terms are due. Nothing is copied when a change takes effect, and no transaction is needed for it.
contract AssetRegistry is IAssetRegistry, Governed {
    /*//////////////////////////////////////////////////////////////
                                CONSTANTS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IAssetRegistry
    uint256 public constant MAX_ENTRIES = 255;

    /// @inheritdoc IAssetRegistry
    uint64 public constant MIN_CHANGE_DELAY = 1 hours;

    /// @inheritdoc IAssetRegistry
    uint64 public constant MAX_CHANGE_DELAY = 30 days;

    /// @inheritdoc IAssetRegistry
    uint256 public constant PRICE_LIMIT = 2 ** 128;

    uint256 private constant _BPS = 10_000;

    /*//////////////////////////////////////////////////////////////
                                 STORAGE
    //////////////////////////////////////////////////////////////*/

    struct DatasetTerms {
        address[] contributors;
        uint16[] sharesBps;
    }

    struct StoredDataset {
        address owner;
        address pendingOwner;
        uint8 current;
        uint64 nextAt;
        bytes32 datasetKey;
        string uri;
        DatasetTerms[2] terms;
    }

    struct StoredBaseModel {
        address owner;
        address pendingOwner;
        string uri;
    }

    struct AdapterTerms {
        bytes32[] datasetIds;
        uint16[] weightsBps;
        uint256 pricePerMTokens;
    }

    struct StoredAdapter {
        address owner;
        uint64 activeFrom;
        address pendingOwner;
        uint8 current;
        uint64 nextAt;
        bytes32 contentHash;
        bytes32 baseModelId;
        string uri;
        AdapterTerms[2] terms;
    }

    uint64 private _changeDelay;
    uint256 private _maxPricePerMTokens;
    mapping(bytes32 datasetId => StoredDataset) private _datasets;
    mapping(bytes32 modelId => StoredBaseModel) private _baseModels;
    mapping(bytes32 adapterId => StoredAdapter) private _adapters;

    /*//////////////////////////////////////////////////////////////
                               CONSTRUCTOR
    //////////////////////////////////////////////////////////////*/

    /// @param governance_ Governance (non-zero): sets {changeDelay} and {maxPricePerMTokens}.
    /// @param changeDelay_ Seconds from scheduling a change to its `effectiveAt` (in `[MIN_CHANGE_DELAY,
    /// MAX_CHANGE_DELAY]`).
    /// @param maxPricePerMTokens_ The price cap (≤ {PRICE_LIMIT}).
    constructor(address governance_, uint64 changeDelay_, uint256 maxPricePerMTokens_) Governed(governance_) {
        _checkChangeDelay(changeDelay_);
        _checkMaxPrice(maxPricePerMTokens_);
        _changeDelay = changeDelay_;
        _maxPricePerMTokens = maxPricePerMTokens_;
    }

    /*//////////////////////////////////////////////////////////////
                                DATASETS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IAssetRegistry
    function registerDataset(
        bytes32 datasetKey,
        address[] calldata contributors,
        uint16[] calldata sharesBps,
        string calldata uri
    ) external returns (bytes32 datasetId) {
        if (datasetKey == bytes32(0)) revert RegistryZeroId();
        datasetId = datasetIdOf(msg.sender, datasetKey);
        StoredDataset storage d = _datasets[datasetId];
        if (d.owner != address(0)) revert RegistryDatasetExists(datasetId);
        _checkContributors(contributors, sharesBps);
        d.owner = msg.sender;
        d.datasetKey = datasetKey;
        d.uri = uri;
        d.terms[0].contributors = contributors;
        d.terms[0].sharesBps = sharesBps;
        emit DatasetRegistered(datasetId, msg.sender, datasetKey, contributors, sharesBps, uri, _now());
    }

    /// @inheritdoc IAssetRegistry
    function scheduleDatasetChange(bytes32 datasetId, address[] calldata contributors, uint16[] calldata sharesBps)
        external
        returns (uint64 effectiveAt)
    {
        StoredDataset storage d = _ownedDataset(datasetId);
        _checkContributors(contributors, sharesBps);
        uint8 current = _settle(datasetId, d.current, d.nextAt);
        effectiveAt = _now() + _changeDelay;
        DatasetTerms storage next = d.terms[1 - current];
        next.contributors = contributors;
        next.sharesBps = sharesBps;
        d.current = current;
        d.nextAt = effectiveAt;
        emit DatasetChangeScheduled(datasetId, contributors, sharesBps, effectiveAt);
    }

    /// @inheritdoc IAssetRegistry
    function cancelDatasetChange(bytes32 datasetId) external {
        StoredDataset storage d = _ownedDataset(datasetId);
        uint64 nextAt = d.nextAt;
        if (!_isPending(nextAt)) revert RegistryNoPendingChange(datasetId);
        d.nextAt = 0;
        emit DatasetChangeCancelled(datasetId, nextAt);
    }

    /// @inheritdoc IAssetRegistry
    function setDatasetUri(bytes32 datasetId, string calldata uri) external {
        _ownedDataset(datasetId).uri = uri;
        emit DatasetUriChanged(datasetId, uri);
    }

    /*//////////////////////////////////////////////////////////////
                               BASE MODELS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IAssetRegistry
    function registerBaseModel(bytes32 modelId, string calldata uri) external {
        if (modelId == bytes32(0)) revert RegistryZeroId();
        StoredBaseModel storage m = _baseModels[modelId];
        if (m.owner != address(0)) revert RegistryBaseModelExists(modelId);
        m.owner = msg.sender;
        m.uri = uri;
        emit BaseModelRegistered(modelId, msg.sender, uri);
    }

    /// @inheritdoc IAssetRegistry
    function setBaseModelUri(bytes32 modelId, string calldata uri) external {
        StoredBaseModel storage m = _baseModels[modelId];
        if (m.owner == address(0)) revert RegistryUnknownBaseModel(modelId);
        if (m.owner != msg.sender) revert RegistryNotOwner(modelId, msg.sender);
        m.uri = uri;
        emit BaseModelUriChanged(modelId, uri);
    }

    /*//////////////////////////////////////////////////////////////
                                ADAPTERS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IAssetRegistry
    function registerAdapter(
        bytes32 contentHash,
        bytes32 baseModelId,
        bytes32[] calldata datasetIds,
        uint16[] calldata weightsBps,
        uint256 pricePerMTokens,
        string calldata uri
    ) external returns (bytes32 adapterId) {
        if (contentHash == bytes32(0)) revert RegistryZeroId();
        adapterId = adapterIdOf(msg.sender, contentHash);
        _storeAdapter(adapterId, contentHash, baseModelId, datasetIds, weightsBps, pricePerMTokens, uri);
        emit AdapterRegistered(
            adapterId, msg.sender, baseModelId, contentHash, datasetIds, weightsBps, pricePerMTokens, uri, _now()
        );
    }

    /// @inheritdoc IAssetRegistry
    function scheduleAdapterChange(
        bytes32 adapterId,
        bytes32[] calldata datasetIds,
        uint16[] calldata weightsBps,
        uint256 pricePerMTokens
    ) external returns (uint64 effectiveAt) {
        StoredAdapter storage a = _ownedAdapter(adapterId);
        _checkProvenance(datasetIds, weightsBps);
        _checkPrice(pricePerMTokens);
        uint8 current = _settle(adapterId, a.current, a.nextAt);
        effectiveAt = _now() + _changeDelay;
        AdapterTerms storage next = a.terms[1 - current];
        next.datasetIds = datasetIds;
        next.weightsBps = weightsBps;
        next.pricePerMTokens = pricePerMTokens;
        a.current = current;
        a.nextAt = effectiveAt;
        emit AdapterChangeScheduled(adapterId, datasetIds, weightsBps, pricePerMTokens, effectiveAt);
    }

    /// @inheritdoc IAssetRegistry
    function schedulePrice(bytes32 adapterId, uint256 pricePerMTokens) external returns (uint64 effectiveAt) {
        StoredAdapter storage a = _ownedAdapter(adapterId);
        _checkPrice(pricePerMTokens);
        uint8 current = _settle(adapterId, a.current, a.nextAt);
        effectiveAt = _now() + _changeDelay;
        AdapterTerms storage inEffect = a.terms[current];
        AdapterTerms storage next = a.terms[1 - current];
        // The provenance in effect was validated when it was set, and datasets are never removed.
        next.datasetIds = inEffect.datasetIds;
        next.weightsBps = inEffect.weightsBps;
        next.pricePerMTokens = pricePerMTokens;
        a.current = current;
        a.nextAt = effectiveAt;
        emit AdapterChangeScheduled(adapterId, next.datasetIds, next.weightsBps, pricePerMTokens, effectiveAt);
    }

    /// @inheritdoc IAssetRegistry
    function cancelAdapterChange(bytes32 adapterId) external {
        StoredAdapter storage a = _ownedAdapter(adapterId);
        uint64 nextAt = a.nextAt;
        if (!_isPending(nextAt)) revert RegistryNoPendingChange(adapterId);
        a.nextAt = 0;
        emit AdapterChangeCancelled(adapterId, nextAt);
    }

    /// @inheritdoc IAssetRegistry
    function setAdapterUri(bytes32 adapterId, string calldata uri) external {
        _ownedAdapter(adapterId).uri = uri;
        emit AdapterUriChanged(adapterId, uri);
    }

    /// @inheritdoc IAssetRegistry
    function setAdapterActive(bytes32 adapterId, bool active) external returns (uint64 effectiveAt) {
        StoredAdapter storage a = _ownedAdapter(adapterId);
        if (!active) {
            // Immediate: it only ever lowers what nodes owe for batches posted from now on.
            effectiveAt = _now();
            a.activeFrom = 0;
        } else {
            effectiveAt = a.activeFrom;
            if (effectiveAt != 0) return effectiveAt; // active already, or its reactivation is scheduled
            // Scheduled: usage served while it was inactive must not start paying fees retroactively.
            effectiveAt = _now() + _changeDelay;
            a.activeFrom = effectiveAt;
        }
        emit AdapterActiveChanged(adapterId, active, effectiveAt);
    }

    /*//////////////////////////////////////////////////////////////
                                OWNERSHIP
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IAssetRegistry
    function transferAssetOwnership(AssetKind kind, bytes32 id, address newOwner) external {
        if (kind == AssetKind.Dataset) {
            _ownedDataset(id).pendingOwner = newOwner;
        } else if (kind == AssetKind.BaseModel) {
            StoredBaseModel storage m = _baseModels[id];
            if (m.owner == address(0)) revert RegistryUnknownBaseModel(id);
            if (m.owner != msg.sender) revert RegistryNotOwner(id, msg.sender);
            m.pendingOwner = newOwner;
        } else {
            _ownedAdapter(id).pendingOwner = newOwner;
        }
        emit AssetOwnershipTransferStarted(kind, id, msg.sender, newOwner);
    }

    /// @inheritdoc IAssetRegistry
    function acceptAssetOwnership(AssetKind kind, bytes32 id) external {
        address previous;
        if (kind == AssetKind.Dataset) {
            StoredDataset storage d = _datasets[id];
            if (d.owner == address(0)) revert RegistryUnknownDataset(id);
            if (d.pendingOwner != msg.sender) revert RegistryNotPendingOwner(id, msg.sender);
            (previous, d.owner, d.pendingOwner) = (d.owner, msg.sender, address(0));
            // The buyer takes the terms it saw: a change the seller scheduled is cancelled with the transfer.
            uint64 nextAt = d.nextAt;
            if (_isPending(nextAt)) {
                d.nextAt = 0;
                emit DatasetChangeCancelled(id, nextAt);
            }
        } else if (kind == AssetKind.BaseModel) {
            StoredBaseModel storage m = _baseModels[id];
            if (m.owner == address(0)) revert RegistryUnknownBaseModel(id);
            if (m.pendingOwner != msg.sender) revert RegistryNotPendingOwner(id, msg.sender);
            (previous, m.owner, m.pendingOwner) = (m.owner, msg.sender, address(0));
        } else {
            StoredAdapter storage a = _adapters[id];
            if (a.owner == address(0)) revert RegistryUnknownAdapter(id);
            if (a.pendingOwner != msg.sender) revert RegistryNotPendingOwner(id, msg.sender);
            (previous, a.owner, a.pendingOwner) = (a.owner, msg.sender, address(0));
            uint64 nextAt = a.nextAt;
            if (_isPending(nextAt)) {
                a.nextAt = 0;
                emit AdapterChangeCancelled(id, nextAt);
            }
        }
        emit AssetOwnershipTransferred(kind, id, previous, msg.sender);
    }

    /*//////////////////////////////////////////////////////////////
                               GOVERNANCE
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IAssetRegistry
    function setChangeDelay(uint64 newDelay) external onlyOwner {
        _checkChangeDelay(newDelay);
        uint64 old = _changeDelay;
        _changeDelay = newDelay;
        emit ChangeDelayChanged(old, newDelay);
    }

    /// @inheritdoc IAssetRegistry
    function setMaxPricePerMTokens(uint256 newMaxPricePerMTokens) external onlyOwner {
        _checkMaxPrice(newMaxPricePerMTokens);
        uint256 old = _maxPricePerMTokens;
        _maxPricePerMTokens = newMaxPricePerMTokens;
        emit MaxPriceChanged(old, newMaxPricePerMTokens);
    }

    /*//////////////////////////////////////////////////////////////
                                  VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IAssetRegistry
    function dataset(bytes32 datasetId) external view returns (Dataset memory) {
        StoredDataset storage d = _datasets[datasetId];
        if (d.owner == address(0)) revert RegistryUnknownDataset(datasetId);
        DatasetTerms storage t = d.terms[_inEffect(d.current, d.nextAt)];
        return Dataset({
            owner: d.owner, datasetKey: d.datasetKey, contributors: t.contributors, sharesBps: t.sharesBps, uri: d.uri
        });
    }

    /// @inheritdoc IAssetRegistry
    function pendingDatasetChange(bytes32 datasetId) external view returns (PendingDatasetChange memory p) {
        StoredDataset storage d = _datasets[datasetId];
        if (_isPending(d.nextAt)) {
            DatasetTerms storage t = d.terms[1 - d.current];
            p = PendingDatasetChange({contributors: t.contributors, sharesBps: t.sharesBps, effectiveAt: d.nextAt});
        }
    }

    /// @inheritdoc IAssetRegistry
    function baseModel(bytes32 modelId) external view returns (BaseModel memory) {
        StoredBaseModel storage m = _baseModels[modelId];
        if (m.owner == address(0)) revert RegistryUnknownBaseModel(modelId);
        return BaseModel({owner: m.owner, uri: m.uri});
    }

    /// @inheritdoc IAssetRegistry
    function adapter(bytes32 adapterId) external view returns (Adapter memory) {
        StoredAdapter storage a = _adapters[adapterId];
        if (a.owner == address(0)) revert RegistryUnknownAdapter(adapterId);
        AdapterTerms storage t = a.terms[_inEffect(a.current, a.nextAt)];
        uint64 activeFrom = a.activeFrom;
        return Adapter({
            owner: a.owner,
            contentHash: a.contentHash,
            baseModelId: a.baseModelId,
            datasetIds: t.datasetIds,
            weightsBps: t.weightsBps,
            pricePerMTokens: t.pricePerMTokens,
            uri: a.uri,
            active: activeFrom != 0 && block.timestamp >= activeFrom,
            activeFrom: activeFrom
        });
    }

    /// @inheritdoc IAssetRegistry
    function pendingAdapterChange(bytes32 adapterId) external view returns (PendingAdapterChange memory p) {
        StoredAdapter storage a = _adapters[adapterId];
        if (_isPending(a.nextAt)) {
            AdapterTerms storage t = a.terms[1 - a.current];
            p = PendingAdapterChange({
                datasetIds: t.datasetIds,
                weightsBps: t.weightsBps,
                pricePerMTokens: t.pricePerMTokens,
                effectiveAt: a.nextAt
            });
        }
    }

    /// @inheritdoc IAssetRegistry
    function adapterProvenance(bytes32 adapterId)
        external
        view
        returns (bytes32[] memory datasetIds, uint16[] memory weightsBps)
    {
        StoredAdapter storage a = _adapters[adapterId];
        if (a.owner == address(0)) revert RegistryUnknownAdapter(adapterId);
        AdapterTerms storage t = a.terms[_inEffect(a.current, a.nextAt)];
        return (t.datasetIds, t.weightsBps);
    }

    /// @inheritdoc IAssetRegistry
    function assetOwner(AssetKind kind, bytes32 id) external view returns (address) {
        if (kind == AssetKind.Dataset) return _datasets[id].owner;
        if (kind == AssetKind.BaseModel) return _baseModels[id].owner;
        return _adapters[id].owner;
    }

    /// @inheritdoc IAssetRegistry
    function pendingAssetOwner(AssetKind kind, bytes32 id) external view returns (address) {
        if (kind == AssetKind.Dataset) return _datasets[id].pendingOwner;
        if (kind == AssetKind.BaseModel) return _baseModels[id].pendingOwner;
        return _adapters[id].pendingOwner;
    }

    /// @inheritdoc IAssetRegistry
    function datasetExists(bytes32 datasetId) external view returns (bool) {
        return _datasets[datasetId].owner != address(0);
    }

    /// @inheritdoc IAssetRegistry
    function baseModelExists(bytes32 modelId) external view returns (bool) {
        return _baseModels[modelId].owner != address(0);
    }

    /// @inheritdoc IAssetRegistry
    function adapterExists(bytes32 adapterId) external view returns (bool) {
        return _adapters[adapterId].owner != address(0);
    }

    /// @inheritdoc IAssetRegistry
    function adapterIdOf(address owner_, bytes32 contentHash) public pure returns (bytes32) {
        return keccak256(abi.encode(owner_, contentHash));
    }

    /// @inheritdoc IAssetRegistry
    function datasetIdOf(address owner_, bytes32 datasetKey) public pure returns (bytes32) {
        return keccak256(abi.encode(owner_, datasetKey));
    }

    /// @inheritdoc IAssetRegistry
    function changeDelay() external view returns (uint64) {
        return _changeDelay;
    }

    /// @inheritdoc IAssetRegistry
    function maxPricePerMTokens() external view returns (uint256) {
        return _maxPricePerMTokens;
    }

    /// @inheritdoc IAssetRegistry
    function governance() public view override(IAssetRegistry, Governed) returns (address) {
        return owner();
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNALS
    //////////////////////////////////////////////////////////////*/

    function _now() private view returns (uint64) {
        return uint64(block.timestamp);
    }

    /// @dev Whether a change scheduled for `nextAt` is still waiting (0 = none scheduled).
    function _isPending(uint64 nextAt) private view returns (bool) {
        return nextAt != 0 && block.timestamp < nextAt;
    }

    /// @dev The term slot in effect now: the scheduled one once `nextAt` has come, else `current`.
    function _inEffect(uint8 current, uint64 nextAt) private view returns (uint8) {
        return nextAt != 0 && block.timestamp >= nextAt ? 1 - current : current;
    }

    /// @dev Before scheduling: refuse while a change is pending; if the last one is due, it becomes `current`.
    function _settle(bytes32 id, uint8 current, uint64 nextAt) private view returns (uint8) {
        if (nextAt == 0) return current;
        if (block.timestamp < nextAt) revert RegistryChangePending(id, nextAt);
        return 1 - current;
    }

    /// @dev registerAdapter's checks and writes (a function of its own to keep the event's stack shallow).
    function _storeAdapter(
        bytes32 adapterId,
        bytes32 contentHash,
        bytes32 baseModelId,
        bytes32[] calldata datasetIds,
        uint16[] calldata weightsBps,
        uint256 pricePerMTokens,
        string calldata uri
    ) private {
        StoredAdapter storage a = _adapters[adapterId];
        if (a.owner != address(0)) revert RegistryAdapterExists(adapterId);
        if (_baseModels[baseModelId].owner == address(0)) revert RegistryUnknownBaseModel(baseModelId);
        _checkProvenance(datasetIds, weightsBps);
        _checkPrice(pricePerMTokens);
        a.owner = msg.sender;
        a.activeFrom = _now();
        a.contentHash = contentHash;
        a.baseModelId = baseModelId;
        a.uri = uri;
        AdapterTerms storage t = a.terms[0];
        t.datasetIds = datasetIds;
        t.weightsBps = weightsBps;
        t.pricePerMTokens = pricePerMTokens;
    }

    function _ownedDataset(bytes32 datasetId) private view returns (StoredDataset storage d) {
        d = _datasets[datasetId];
        address owner_ = d.owner;
        if (owner_ == address(0)) revert RegistryUnknownDataset(datasetId);
        if (owner_ != msg.sender) revert RegistryNotOwner(datasetId, msg.sender);
    }

    function _ownedAdapter(bytes32 adapterId) private view returns (StoredAdapter storage a) {
        a = _adapters[adapterId];
        address owner_ = a.owner;
        if (owner_ == address(0)) revert RegistryUnknownAdapter(adapterId);
        if (owner_ != msg.sender) revert RegistryNotOwner(adapterId, msg.sender);
    }

    function _checkPrice(uint256 price) private view {
        uint256 max = _maxPricePerMTokens;
        if (price > max) revert RegistryPriceTooHigh(price, max);
    }

    function _checkChangeDelay(uint64 delay) private pure {
        if (delay < MIN_CHANGE_DELAY || delay > MAX_CHANGE_DELAY) {
            revert RegistryChangeDelayOutOfRange(delay, MIN_CHANGE_DELAY, MAX_CHANGE_DELAY);
        }
    }

    function _checkMaxPrice(uint256 maxPrice) private pure {
        if (maxPrice > PRICE_LIMIT) revert RegistryMaxPriceTooHigh(maxPrice, PRICE_LIMIT);
    }

    /// @dev Contributors: non-empty, parallel to shares, ≤ MAX_ENTRIES, no zero address, no zero share, sum 10000.
    function _checkContributors(address[] calldata contributors, uint16[] calldata sharesBps) private pure {
        uint256 n = contributors.length;
        if (n != sharesBps.length) revert RegistryLengthMismatch(n, sharesBps.length);
        if (n > MAX_ENTRIES) revert RegistryTooManyEntries(n, MAX_ENTRIES);
        for (uint256 i; i < n; ++i) {
            if (contributors[i] == address(0)) revert RegistryZeroContributor(i);
        }
        // An empty list sums to 0 and fails the sum check: a dataset needs at least one contributor.
        _checkWeights(sharesBps);
    }

    /// @dev Provenance: parallel arrays, ≤ MAX_ENTRIES, registered datasets, non-zero weights summing to 10000, or
    /// both arrays empty (an adapter without registered datasets).
    function _checkProvenance(bytes32[] calldata datasetIds, uint16[] calldata weightsBps) private view {
        uint256 n = datasetIds.length;
        if (n != weightsBps.length) revert RegistryLengthMismatch(n, weightsBps.length);
        if (n == 0) return;
        if (n > MAX_ENTRIES) revert RegistryTooManyEntries(n, MAX_ENTRIES);
        for (uint256 i; i < n; ++i) {
            if (_datasets[datasetIds[i]].owner == address(0)) revert RegistryUnknownDataset(datasetIds[i]);
        }
        _checkWeights(weightsBps);
    }

    function _checkWeights(uint16[] calldata weightsBps) private pure {
        uint256 sum;
        uint256 n = weightsBps.length;
        for (uint256 i; i < n; ++i) {
            if (weightsBps[i] == 0) revert RegistryZeroWeight(i);
            sum += weightsBps[i];
        }
        if (sum != _BPS) revert RegistryWeightsSum(sum);
    }
}
