// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IAssetRegistry} from "../interfaces/IAssetRegistry.sol";

/// @title AssetRegistry
/// @notice Datasets, base models and adapters with their owners, provenance and prices. See {IAssetRegistry}.
contract AssetRegistry is IAssetRegistry {
    /*//////////////////////////////////////////////////////////////
                                CONSTANTS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IAssetRegistry
    uint256 public constant MAX_ENTRIES = 255;

    uint256 private constant _BPS = 10_000;

    /*//////////////////////////////////////////////////////////////
                                 STORAGE
    //////////////////////////////////////////////////////////////*/

    mapping(bytes32 datasetId => Dataset) private _datasets;
    mapping(bytes32 modelId => BaseModel) private _baseModels;
    mapping(bytes32 adapterId => Adapter) private _adapters;

    /*//////////////////////////////////////////////////////////////
                                DATASETS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IAssetRegistry
    function registerDataset(
        bytes32 datasetId,
        address[] calldata contributors,
        uint16[] calldata sharesBps,
        string calldata uri
    ) external {
        if (datasetId == bytes32(0)) revert RegistryZeroId();
        Dataset storage d = _datasets[datasetId];
        if (d.owner != address(0)) revert RegistryDatasetExists(datasetId);
        _checkContributors(contributors, sharesBps);
        d.owner = msg.sender;
        d.contributors = contributors;
        d.sharesBps = sharesBps;
        d.uri = uri;
        emit DatasetRegistered(datasetId, msg.sender, contributors, sharesBps, uri);
    }

    /// @inheritdoc IAssetRegistry
    function updateDataset(
        bytes32 datasetId,
        address[] calldata contributors,
        uint16[] calldata sharesBps,
        string calldata uri
    ) external {
        Dataset storage d = _datasets[datasetId];
        _checkOwner(datasetId, d.owner);
        _checkContributors(contributors, sharesBps);
        d.contributors = contributors;
        d.sharesBps = sharesBps;
        d.uri = uri;
        emit DatasetUpdated(datasetId, contributors, sharesBps, uri);
    }

    /*//////////////////////////////////////////////////////////////
                               BASE MODELS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IAssetRegistry
    function registerBaseModel(bytes32 modelId, string calldata uri) external {
        if (modelId == bytes32(0)) revert RegistryZeroId();
        BaseModel storage m = _baseModels[modelId];
        if (m.owner != address(0)) revert RegistryBaseModelExists(modelId);
        m.owner = msg.sender;
        m.uri = uri;
        emit BaseModelRegistered(modelId, msg.sender, uri);
    }

    /// @inheritdoc IAssetRegistry
    function updateBaseModel(bytes32 modelId, string calldata uri) external {
        BaseModel storage m = _baseModels[modelId];
        if (m.owner == address(0)) revert RegistryUnknownBaseModel(modelId);
        if (m.owner != msg.sender) revert RegistryNotOwner(modelId, msg.sender);
        m.uri = uri;
        emit BaseModelUpdated(modelId, uri);
    }

    /*//////////////////////////////////////////////////////////////
                                ADAPTERS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IAssetRegistry
    function registerAdapter(
        bytes32 adapterId,
        bytes32 baseModelId,
        bytes32[] calldata datasetIds,
        uint16[] calldata weightsBps,
        uint256 pricePerMTokens,
        string calldata uri
    ) external {
        if (adapterId == bytes32(0)) revert RegistryZeroId();
        Adapter storage a = _adapters[adapterId];
        if (a.owner != address(0)) revert RegistryAdapterExists(adapterId);
        if (_baseModels[baseModelId].owner == address(0)) revert RegistryUnknownBaseModel(baseModelId);
        _checkProvenance(datasetIds, weightsBps);
        a.owner = msg.sender;
        a.baseModelId = baseModelId;
        a.datasetIds = datasetIds;
        a.weightsBps = weightsBps;
        a.pricePerMTokens = pricePerMTokens;
        a.uri = uri;
        a.active = true;
        emit AdapterRegistered(adapterId, msg.sender, baseModelId, datasetIds, weightsBps, pricePerMTokens, uri);
    }

    /// @inheritdoc IAssetRegistry
    function updateAdapter(
        bytes32 adapterId,
        bytes32[] calldata datasetIds,
        uint16[] calldata weightsBps,
        uint256 pricePerMTokens,
        string calldata uri
    ) external {
        Adapter storage a = _adapters[adapterId];
        _checkAdapterOwner(adapterId, a.owner);
        _checkProvenance(datasetIds, weightsBps);
        a.datasetIds = datasetIds;
        a.weightsBps = weightsBps;
        a.pricePerMTokens = pricePerMTokens;
        a.uri = uri;
        emit AdapterUpdated(adapterId, datasetIds, weightsBps, pricePerMTokens, uri);
    }

    /// @inheritdoc IAssetRegistry
    function setAdapterActive(bytes32 adapterId, bool active) external {
        Adapter storage a = _adapters[adapterId];
        _checkAdapterOwner(adapterId, a.owner);
        a.active = active;
        emit AdapterActiveChanged(adapterId, active);
    }

    /*//////////////////////////////////////////////////////////////
                                  VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IAssetRegistry
    function dataset(bytes32 datasetId) external view returns (Dataset memory) {
        Dataset storage d = _datasets[datasetId];
        if (d.owner == address(0)) revert RegistryUnknownDataset(datasetId);
        return d;
    }

    /// @inheritdoc IAssetRegistry
    function baseModel(bytes32 modelId) external view returns (BaseModel memory) {
        BaseModel storage m = _baseModels[modelId];
        if (m.owner == address(0)) revert RegistryUnknownBaseModel(modelId);
        return m;
    }

    /// @inheritdoc IAssetRegistry
    function adapter(bytes32 adapterId) external view returns (Adapter memory) {
        Adapter storage a = _adapters[adapterId];
        if (a.owner == address(0)) revert RegistryUnknownAdapter(adapterId);
        return a;
    }

    /// @inheritdoc IAssetRegistry
    function adapterProvenance(bytes32 adapterId)
        external
        view
        returns (bytes32[] memory datasetIds, uint16[] memory weightsBps)
    {
        Adapter storage a = _adapters[adapterId];
        if (a.owner == address(0)) revert RegistryUnknownAdapter(adapterId);
        return (a.datasetIds, a.weightsBps);
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

    /*//////////////////////////////////////////////////////////////
                                INTERNALS
    //////////////////////////////////////////////////////////////*/

    function _checkOwner(bytes32 datasetId, address owner) private view {
        if (owner == address(0)) revert RegistryUnknownDataset(datasetId);
        if (owner != msg.sender) revert RegistryNotOwner(datasetId, msg.sender);
    }

    function _checkAdapterOwner(bytes32 adapterId, address owner) private view {
        if (owner == address(0)) revert RegistryUnknownAdapter(adapterId);
        if (owner != msg.sender) revert RegistryNotOwner(adapterId, msg.sender);
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
