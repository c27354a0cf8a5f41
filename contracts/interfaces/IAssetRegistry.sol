// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title IAssetRegistry
/// @notice Registry of the assets an answer is attributed to: datasets (with contributors and their shares), base
/// models and LoRA adapters (with their dataset provenance and price). Ids are bytes32 chosen by the registrant
/// (content hashes for models and adapters, see DESIGN.md "Identities"); id 0 is reserved ("none", e.g. the bare
/// base model has adapterId 0). Each asset has an owner (its registrant) who alone can update it.
/// @dev Deployed as `constructor()` (no arguments, no admin).
interface IAssetRegistry {
    /*//////////////////////////////////////////////////////////////
                                 STRUCTS
    //////////////////////////////////////////////////////////////*/

    /// @notice A dataset: rewards for it are split among `contributors` by `sharesBps` (sum 10000).
    struct Dataset {
        address owner;
        address[] contributors;
        uint16[] sharesBps;
        string uri;
    }

    /// @notice A base model.
    struct BaseModel {
        address owner;
        string uri;
    }

    /// @notice A LoRA adapter on `baseModelId`, trained on `datasetIds` weighted by `weightsBps` (sum 10000, or both
    /// empty), priced at `pricePerMTokens` reward-token units per million tokens.
    struct Adapter {
        address owner;
        bytes32 baseModelId;
        bytes32[] datasetIds;
        uint16[] weightsBps;
        uint256 pricePerMTokens;
        string uri;
        bool active;
    }

    /*//////////////////////////////////////////////////////////////
                                 EVENTS
    //////////////////////////////////////////////////////////////*/

    /// @notice Emitted when `owner` registered dataset `datasetId`.
    event DatasetRegistered(
        bytes32 indexed datasetId, address indexed owner, address[] contributors, uint16[] sharesBps, string uri
    );

    /// @notice Emitted when the owner replaced dataset `datasetId`'s contributors, shares and uri.
    event DatasetUpdated(bytes32 indexed datasetId, address[] contributors, uint16[] sharesBps, string uri);

    /// @notice Emitted when `owner` registered base model `modelId`.
    event BaseModelRegistered(bytes32 indexed modelId, address indexed owner, string uri);

    /// @notice Emitted when the owner changed base model `modelId`'s uri.
    event BaseModelUpdated(bytes32 indexed modelId, string uri);

    /// @notice Emitted when `owner` registered adapter `adapterId` on `baseModelId` (registered adapters start active).
    event AdapterRegistered(
        bytes32 indexed adapterId,
        address indexed owner,
        bytes32 indexed baseModelId,
        bytes32[] datasetIds,
        uint16[] weightsBps,
        uint256 pricePerMTokens,
        string uri
    );

    /// @notice Emitted when the owner replaced adapter `adapterId`'s provenance, price and uri.
    event AdapterUpdated(
        bytes32 indexed adapterId, bytes32[] datasetIds, uint16[] weightsBps, uint256 pricePerMTokens, string uri
    );

    /// @notice Emitted when the owner activated or deactivated adapter `adapterId`.
    event AdapterActiveChanged(bytes32 indexed adapterId, bool active);

    /*//////////////////////////////////////////////////////////////
                                 ERRORS
    //////////////////////////////////////////////////////////////*/

    /// @notice Id 0 is reserved and cannot be registered.
    error RegistryZeroId();

    /// @notice A dataset with this id is already registered; pick another id.
    error RegistryDatasetExists(bytes32 datasetId);

    /// @notice A base model with this id is already registered.
    error RegistryBaseModelExists(bytes32 modelId);

    /// @notice An adapter with this id is already registered (ids are content hashes: a changed adapter is new).
    error RegistryAdapterExists(bytes32 adapterId);

    /// @notice No dataset with this id is registered; register it first.
    error RegistryUnknownDataset(bytes32 datasetId);

    /// @notice No base model with this id is registered; register it first.
    error RegistryUnknownBaseModel(bytes32 modelId);

    /// @notice No adapter with this id is registered.
    error RegistryUnknownAdapter(bytes32 adapterId);

    /// @notice Only the asset's owner may change it.
    /// @param id The asset id.
    /// @param caller The caller.
    error RegistryNotOwner(bytes32 id, address caller);

    /// @notice Weights or shares must sum to exactly 10000 basis points.
    /// @param sum The sum given.
    error RegistryWeightsSum(uint256 sum);

    /// @notice Two arrays that must be parallel have different lengths.
    /// @param idsLength The length of the ids/contributors array.
    /// @param weightsLength The length of the weights/shares array.
    error RegistryLengthMismatch(uint256 idsLength, uint256 weightsLength);

    /// @notice A weight or share of 0 is not allowed (drop the entry instead).
    /// @param index The offending index.
    error RegistryZeroWeight(uint256 index);

    /// @notice A contributor address of 0 is not allowed.
    /// @param index The offending index.
    error RegistryZeroContributor(uint256 index);

    /// @notice Too many entries (datasets per adapter or contributors per dataset).
    /// @param count The number given.
    /// @param max The maximum ({MAX_ENTRIES}).
    error RegistryTooManyEntries(uint256 count, uint256 max);

    /*//////////////////////////////////////////////////////////////
                                FUNCTIONS
    //////////////////////////////////////////////////////////////*/

    /// @notice Register dataset `datasetId` owned by the caller.
    /// @param datasetId The id (non-zero, not yet registered), e.g. sha256 of the dataset's manifest.
    /// @param contributors The contributors (non-empty, non-zero, ≤ {MAX_ENTRIES}).
    /// @param sharesBps Each contributor's share in basis points (non-zero, sum 10000, same length).
    /// @param uri Where the dataset is described.
    function registerDataset(
        bytes32 datasetId,
        address[] calldata contributors,
        uint16[] calldata sharesBps,
        string calldata uri
    ) external;

    /// @notice Owner only: replace dataset `datasetId`'s contributors, shares and uri (same rules as registering).
    function updateDataset(
        bytes32 datasetId,
        address[] calldata contributors,
        uint16[] calldata sharesBps,
        string calldata uri
    ) external;

    /// @notice Register base model `modelId` owned by the caller.
    /// @param modelId The id (non-zero, not yet registered): the sha256 model id of DESIGN.md.
    /// @param uri Where the model is described.
    function registerBaseModel(bytes32 modelId, string calldata uri) external;

    /// @notice Owner only: change base model `modelId`'s uri.
    function updateBaseModel(bytes32 modelId, string calldata uri) external;

    /// @notice Register adapter `adapterId` owned by the caller; it starts active.
    /// @param adapterId The id (non-zero, not yet registered): the sha256 adapter id of DESIGN.md.
    /// @param baseModelId A registered base model.
    /// @param datasetIds Registered datasets (≤ {MAX_ENTRIES}); may be empty together with `weightsBps`.
    /// @param weightsBps Each dataset's weight (non-zero, sum 10000, same length), or empty.
    /// @param pricePerMTokens Price per million tokens in reward-token units.
    /// @param uri Where the adapter is described.
    function registerAdapter(
        bytes32 adapterId,
        bytes32 baseModelId,
        bytes32[] calldata datasetIds,
        uint16[] calldata weightsBps,
        uint256 pricePerMTokens,
        string calldata uri
    ) external;

    /// @notice Owner only: replace adapter `adapterId`'s provenance, price and uri (same rules as registering).
    function updateAdapter(
        bytes32 adapterId,
        bytes32[] calldata datasetIds,
        uint16[] calldata weightsBps,
        uint256 pricePerMTokens,
        string calldata uri
    ) external;

    /// @notice Owner only: activate or deactivate adapter `adapterId`.
    function setAdapterActive(bytes32 adapterId, bool active) external;

    /// @notice Dataset `datasetId`; reverts with {RegistryUnknownDataset} if not registered.
    function dataset(bytes32 datasetId) external view returns (Dataset memory);

    /// @notice Base model `modelId`; reverts with {RegistryUnknownBaseModel} if not registered.
    function baseModel(bytes32 modelId) external view returns (BaseModel memory);

    /// @notice Adapter `adapterId`; reverts with {RegistryUnknownAdapter} if not registered.
    function adapter(bytes32 adapterId) external view returns (Adapter memory);

    /// @notice Adapter `adapterId`'s dataset provenance; reverts with {RegistryUnknownAdapter} if not registered.
    function adapterProvenance(bytes32 adapterId)
        external
        view
        returns (bytes32[] memory datasetIds, uint16[] memory weightsBps);

    /// @notice Whether dataset `datasetId` is registered.
    function datasetExists(bytes32 datasetId) external view returns (bool);

    /// @notice Whether base model `modelId` is registered.
    function baseModelExists(bytes32 modelId) external view returns (bool);

    /// @notice Whether adapter `adapterId` is registered.
    function adapterExists(bytes32 adapterId) external view returns (bool);

    /// @notice The maximum number of datasets per adapter and contributors per dataset (255: the `LLB2` payload
    /// stores the dataset count of a profile in one byte).
    function MAX_ENTRIES() external view returns (uint256);
}
