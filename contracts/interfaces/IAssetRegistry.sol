// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title IAssetRegistry
/// @notice Registry of the assets an answer is attributed to: datasets (with contributors and their shares), base
/// models and LoRA adapters (with their dataset provenance and price).
///
/// Ids (DESIGN.md "Identities"): adapter and dataset ids are namespaced by their registrant and computed here from
/// `msg.sender` — `adapterId = keccak256(abi.encode(owner, contentHash))`, `datasetId = keccak256(abi.encode(owner,
/// datasetKey))` — so whoever copies published files and registers them first gets a different id and takes nothing
/// from the author. Base model ids are the sha256 model id itself (no money follows a base model). Id 0 is reserved.
///
/// Changes that move money are scheduled, not immediate: a new price, provenance (datasetIds/weightsBps) or
/// contributor list takes effect at `effectiveAt = block.timestamp + changeDelay` (one pending change per asset;
/// the owner may cancel it before `effectiveAt`). Views return the state in effect now; the state in effect at any
/// past time `t` is rebuilt from the events: the last `*Registered` / `*ChangeScheduled` event of an asset with
/// `effectiveAt ≤ t` that was not cancelled gives its terms at `t`. Reactivating an adapter is scheduled the same
/// way; deactivating is immediate (it only ever lowers what nodes owe).
/// @dev Deployed as `constructor(address governance, uint64 changeDelay, uint256 maxPricePerMTokens)`.
/// Governance is an OpenZeppelin `Ownable2Step` owner (renouncing disabled; others get
/// `OwnableUnauthorizedAccount(address)`); it sets {changeDelay} and {maxPricePerMTokens}, nothing else.
interface IAssetRegistry {
    /*//////////////////////////////////////////////////////////////
                                 STRUCTS
    //////////////////////////////////////////////////////////////*/

    /// @notice The three kinds of asset (for the two-step ownership transfer, whose ids live in separate spaces).
    enum AssetKind {
        Dataset,
        BaseModel,
        Adapter
    }

    /// @notice A dataset in effect now: rewards for it are split among `contributors` by `sharesBps` (sum 10000).
    struct Dataset {
        address owner;
        bytes32 datasetKey;
        address[] contributors;
        uint16[] sharesBps;
        string uri;
    }

    /// @notice A base model.
    struct BaseModel {
        address owner;
        string uri;
    }

    /// @notice A LoRA adapter in effect now: `contentHash` of its files on `baseModelId`, trained on `datasetIds`
    /// weighted by `weightsBps` (sum 10000, or both empty), priced at `pricePerMTokens` reward-token units per
    /// million tokens. `active` is whether it is active now; `activeFrom` is when it (re)becomes active (0 while
    /// deactivated; in the future while a reactivation is scheduled).
    struct Adapter {
        address owner;
        bytes32 contentHash;
        bytes32 baseModelId;
        bytes32[] datasetIds;
        uint16[] weightsBps;
        uint256 pricePerMTokens;
        string uri;
        bool active;
        uint64 activeFrom;
    }

    /// @notice A scheduled contributor list (`effectiveAt` 0: none pending).
    struct PendingDatasetChange {
        address[] contributors;
        uint16[] sharesBps;
        uint64 effectiveAt;
    }

    /// @notice Scheduled adapter terms (`effectiveAt` 0: none pending).
    struct PendingAdapterChange {
        bytes32[] datasetIds;
        uint16[] weightsBps;
        uint256 pricePerMTokens;
        uint64 effectiveAt;
    }

    /*//////////////////////////////////////////////////////////////
                                 EVENTS
    //////////////////////////////////////////////////////////////*/

    /// @notice Emitted when `owner` registered dataset `datasetId = keccak256(abi.encode(owner, datasetKey))`; its
    /// contributors and shares are in effect from `effectiveAt` (the registration block's timestamp).
    event DatasetRegistered(
        bytes32 indexed datasetId,
        address indexed owner,
        bytes32 datasetKey,
        address[] contributors,
        uint16[] sharesBps,
        string uri,
        uint64 effectiveAt
    );

    /// @notice Emitted when the owner scheduled dataset `datasetId`'s new contributors and shares, in effect from
    /// `effectiveAt`.
    event DatasetChangeScheduled(
        bytes32 indexed datasetId, address[] contributors, uint16[] sharesBps, uint64 effectiveAt
    );

    /// @notice Emitted when the owner cancelled dataset `datasetId`'s change scheduled for `effectiveAt`.
    event DatasetChangeCancelled(bytes32 indexed datasetId, uint64 effectiveAt);

    /// @notice Emitted when the owner changed dataset `datasetId`'s uri (immediate: no money follows it).
    event DatasetUriChanged(bytes32 indexed datasetId, string uri);

    /// @notice Emitted when `owner` registered base model `modelId`.
    event BaseModelRegistered(bytes32 indexed modelId, address indexed owner, string uri);

    /// @notice Emitted when the owner changed base model `modelId`'s uri.
    event BaseModelUriChanged(bytes32 indexed modelId, string uri);

    /// @notice Emitted when `owner` registered adapter `adapterId = keccak256(abi.encode(owner, contentHash))` on
    /// `baseModelId`; it is active and its provenance and price are in effect from `effectiveAt` (the registration
    /// block's timestamp).
    event AdapterRegistered(
        bytes32 indexed adapterId,
        address indexed owner,
        bytes32 indexed baseModelId,
        bytes32 contentHash,
        bytes32[] datasetIds,
        uint16[] weightsBps,
        uint256 pricePerMTokens,
        string uri,
        uint64 effectiveAt
    );

    /// @notice Emitted when the owner scheduled adapter `adapterId`'s new provenance and price, in effect from
    /// `effectiveAt`. The event always carries the complete terms (a price-only change repeats the provenance).
    event AdapterChangeScheduled(
        bytes32 indexed adapterId,
        bytes32[] datasetIds,
        uint16[] weightsBps,
        uint256 pricePerMTokens,
        uint64 effectiveAt
    );

    /// @notice Emitted when the owner cancelled adapter `adapterId`'s change scheduled for `effectiveAt`.
    event AdapterChangeCancelled(bytes32 indexed adapterId, uint64 effectiveAt);

    /// @notice Emitted when the owner changed adapter `adapterId`'s uri (immediate: no money follows it).
    event AdapterUriChanged(bytes32 indexed adapterId, string uri);

    /// @notice Emitted when the owner deactivated adapter `adapterId` (`active` false, in effect from
    /// `effectiveAt` = now) or scheduled its reactivation (`active` true, from `effectiveAt` = now + changeDelay).
    event AdapterActiveChanged(bytes32 indexed adapterId, bool active, uint64 effectiveAt);

    /// @notice Emitted when `owner` of asset `id` of `kind` offered it to `pendingOwner` (0: offer withdrawn).
    event AssetOwnershipTransferStarted(
        AssetKind indexed kind, bytes32 indexed id, address indexed owner, address pendingOwner
    );

    /// @notice Emitted when `newOwner` accepted asset `id` of `kind` from `previousOwner`.
    event AssetOwnershipTransferred(
        AssetKind indexed kind, bytes32 indexed id, address indexed previousOwner, address newOwner
    );

    /// @notice Emitted when governance changed the delay of future scheduled changes.
    event ChangeDelayChanged(uint64 oldDelay, uint64 newDelay);

    /// @notice Emitted when governance changed the price cap of future registrations and scheduled changes.
    event MaxPriceChanged(uint256 oldMaxPricePerMTokens, uint256 newMaxPricePerMTokens);

    /*//////////////////////////////////////////////////////////////
                                 ERRORS
    //////////////////////////////////////////////////////////////*/

    /// @notice A dataset key, content hash or model id of 0 is reserved and cannot be registered.
    error RegistryZeroId();

    /// @notice The caller already registered this dataset (same owner, same datasetKey); pick another key.
    error RegistryDatasetExists(bytes32 datasetId);

    /// @notice A base model with this id is already registered.
    error RegistryBaseModelExists(bytes32 modelId);

    /// @notice The caller already registered this adapter (same owner, same content hash: a changed adapter is new).
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

    /// @notice The asset already has a change scheduled for `effectiveAt`; wait until then or cancel it first.
    /// @param id The asset id.
    /// @param effectiveAt When the pending change takes effect.
    error RegistryChangePending(bytes32 id, uint64 effectiveAt);

    /// @notice The asset has no pending change to cancel (none scheduled, or it already took effect).
    error RegistryNoPendingChange(bytes32 id);

    /// @notice The price exceeds {maxPricePerMTokens}.
    /// @param price The price given.
    /// @param max The current cap.
    error RegistryPriceTooHigh(uint256 price, uint256 max);

    /// @notice The change delay is outside `[MIN_CHANGE_DELAY, MAX_CHANGE_DELAY]`.
    error RegistryChangeDelayOutOfRange(uint64 delay, uint64 min, uint64 max);

    /// @notice The price cap exceeds {PRICE_LIMIT} (beyond it fee arithmetic could overflow).
    error RegistryMaxPriceTooHigh(uint256 maxPricePerMTokens, uint256 limit);

    /// @notice Only the pending owner offered by {transferAssetOwnership} may accept asset `id`.
    error RegistryNotPendingOwner(bytes32 id, address caller);

    /*//////////////////////////////////////////////////////////////
                                DATASETS
    //////////////////////////////////////////////////////////////*/

    /// @notice Register a dataset owned by the caller, with id `keccak256(abi.encode(msg.sender, datasetKey))`.
    /// @param datasetKey The owner's key (non-zero, unused by the caller), e.g. sha256 of the dataset's manifest.
    /// @param contributors The contributors (non-empty, non-zero, ≤ {MAX_ENTRIES}).
    /// @param sharesBps Each contributor's share in basis points (non-zero, sum 10000, same length).
    /// @param uri Where the dataset is described.
    /// @return datasetId The new dataset's id.
    function registerDataset(
        bytes32 datasetKey,
        address[] calldata contributors,
        uint16[] calldata sharesBps,
        string calldata uri
    ) external returns (bytes32 datasetId);

    /// @notice Owner only: schedule new contributors and shares (same rules as registering), in effect from
    /// `block.timestamp + changeDelay`. Reverts with {RegistryChangePending} while another change is pending.
    /// @return effectiveAt When the change takes effect.
    function scheduleDatasetChange(bytes32 datasetId, address[] calldata contributors, uint16[] calldata sharesBps)
        external
        returns (uint64 effectiveAt);

    /// @notice Owner only: cancel the dataset's pending change before it takes effect.
    function cancelDatasetChange(bytes32 datasetId) external;

    /// @notice Owner only: change the dataset's uri (immediate).
    function setDatasetUri(bytes32 datasetId, string calldata uri) external;

    /*//////////////////////////////////////////////////////////////
                               BASE MODELS
    //////////////////////////////////////////////////////////////*/

    /// @notice Register base model `modelId` owned by the caller.
    /// @param modelId The id (non-zero, not yet registered): the sha256 model id of DESIGN.md.
    /// @param uri Where the model is described.
    function registerBaseModel(bytes32 modelId, string calldata uri) external;

    /// @notice Owner only: change base model `modelId`'s uri.
    function setBaseModelUri(bytes32 modelId, string calldata uri) external;

    /*//////////////////////////////////////////////////////////////
                                ADAPTERS
    //////////////////////////////////////////////////////////////*/

    /// @notice Register an adapter owned by the caller, with id `keccak256(abi.encode(msg.sender, contentHash))`;
    /// it starts active.
    /// @param contentHash The sha256 content hash of the adapter's files (DESIGN.md "Identities"; non-zero).
    /// @param baseModelId A registered base model.
    /// @param datasetIds Registered datasets (≤ {MAX_ENTRIES}); may be empty together with `weightsBps`.
    /// @param weightsBps Each dataset's weight (non-zero, sum 10000, same length), or empty.
    /// @param pricePerMTokens Price per million tokens in reward-token units (≤ {maxPricePerMTokens}).
    /// @param uri Where the adapter is described.
    /// @return adapterId The new adapter's id.
    function registerAdapter(
        bytes32 contentHash,
        bytes32 baseModelId,
        bytes32[] calldata datasetIds,
        uint16[] calldata weightsBps,
        uint256 pricePerMTokens,
        string calldata uri
    ) external returns (bytes32 adapterId);

    /// @notice Owner only: schedule new provenance and price (same rules as registering), in effect from
    /// `block.timestamp + changeDelay`. Reverts with {RegistryChangePending} while another change is pending.
    /// @return effectiveAt When the change takes effect.
    function scheduleAdapterChange(
        bytes32 adapterId,
        bytes32[] calldata datasetIds,
        uint16[] calldata weightsBps,
        uint256 pricePerMTokens
    ) external returns (uint64 effectiveAt);

    /// @notice Owner only: schedule a new price, keeping the provenance in effect now; otherwise as
    /// {scheduleAdapterChange}.
    /// @return effectiveAt When the change takes effect.
    function schedulePrice(bytes32 adapterId, uint256 pricePerMTokens) external returns (uint64 effectiveAt);

    /// @notice Owner only: cancel the adapter's pending change before it takes effect.
    function cancelAdapterChange(bytes32 adapterId) external;

    /// @notice Owner only: change the adapter's uri (immediate).
    function setAdapterUri(bytes32 adapterId, string calldata uri) external;

    /// @notice Owner only: deactivate the adapter now (`active` false), or schedule its reactivation at
    /// `block.timestamp + changeDelay` (`active` true; an adapter already active or with a reactivation pending
    /// keeps its `activeFrom`).
    /// @return effectiveAt When the new state takes effect.
    function setAdapterActive(bytes32 adapterId, bool active) external returns (uint64 effectiveAt);

    /*//////////////////////////////////////////////////////////////
                                OWNERSHIP
    //////////////////////////////////////////////////////////////*/

    /// @notice Owner only: offer asset `id` of `kind` to `newOwner`, who must {acceptAssetOwnership}
    /// (`address(0)` withdraws an offer). The id does not change.
    function transferAssetOwnership(AssetKind kind, bytes32 id, address newOwner) external;

    /// @notice Pending owner only: accept asset `id` of `kind`. A pending terms change of a dataset or adapter is
    /// cancelled (emitting its `*ChangeCancelled` event): the new owner takes the terms in effect, never a
    /// re-pointing the seller scheduled before the accept.
    function acceptAssetOwnership(AssetKind kind, bytes32 id) external;

    /*//////////////////////////////////////////////////////////////
                               GOVERNANCE
    //////////////////////////////////////////////////////////////*/

    /// @notice Governance only: set the delay of future scheduled changes (in `[MIN_CHANGE_DELAY,
    /// MAX_CHANGE_DELAY]`); pending changes keep their `effectiveAt`.
    function setChangeDelay(uint64 newDelay) external;

    /// @notice Governance only: set the price cap of future registrations and scheduled changes (≤ {PRICE_LIMIT});
    /// prices already in effect or scheduled are kept.
    function setMaxPricePerMTokens(uint256 newMaxPricePerMTokens) external;

    /*//////////////////////////////////////////////////////////////
                                  VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @notice Dataset `datasetId` as in effect now; reverts with {RegistryUnknownDataset} if not registered.
    function dataset(bytes32 datasetId) external view returns (Dataset memory);

    /// @notice Dataset `datasetId`'s pending change (`effectiveAt` 0 if none is pending).
    function pendingDatasetChange(bytes32 datasetId) external view returns (PendingDatasetChange memory);

    /// @notice Base model `modelId`; reverts with {RegistryUnknownBaseModel} if not registered.
    function baseModel(bytes32 modelId) external view returns (BaseModel memory);

    /// @notice Adapter `adapterId` as in effect now; reverts with {RegistryUnknownAdapter} if not registered.
    function adapter(bytes32 adapterId) external view returns (Adapter memory);

    /// @notice Adapter `adapterId`'s pending change (`effectiveAt` 0 if none is pending).
    function pendingAdapterChange(bytes32 adapterId) external view returns (PendingAdapterChange memory);

    /// @notice Adapter `adapterId`'s dataset provenance in effect now; reverts with {RegistryUnknownAdapter}.
    function adapterProvenance(bytes32 adapterId)
        external
        view
        returns (bytes32[] memory datasetIds, uint16[] memory weightsBps);

    /// @notice The owner of asset `id` of `kind` (0 if not registered).
    function assetOwner(AssetKind kind, bytes32 id) external view returns (address);

    /// @notice The pending owner of asset `id` of `kind` (0 if none offered).
    function pendingAssetOwner(AssetKind kind, bytes32 id) external view returns (address);

    /// @notice Whether dataset `datasetId` is registered.
    function datasetExists(bytes32 datasetId) external view returns (bool);

    /// @notice Whether base model `modelId` is registered.
    function baseModelExists(bytes32 modelId) external view returns (bool);

    /// @notice Whether adapter `adapterId` is registered.
    function adapterExists(bytes32 adapterId) external view returns (bool);

    /// @notice The adapter id `owner` gets for `contentHash`: `keccak256(abi.encode(owner, contentHash))`.
    function adapterIdOf(address owner, bytes32 contentHash) external pure returns (bytes32);

    /// @notice The dataset id `owner` gets for `datasetKey`: `keccak256(abi.encode(owner, datasetKey))`.
    function datasetIdOf(address owner, bytes32 datasetKey) external pure returns (bytes32);

    /// @notice Seconds between scheduling a change and its `effectiveAt`.
    function changeDelay() external view returns (uint64);

    /// @notice The highest price a registration or scheduled change may set.
    function maxPricePerMTokens() external view returns (uint256);

    /// @notice The current governance address (the Ownable2Step owner).
    function governance() external view returns (address);

    /// @notice The maximum number of datasets per adapter and contributors per dataset (255: the `LLB2` payload
    /// stores the dataset count of a profile in one byte).
    function MAX_ENTRIES() external view returns (uint256);

    /// @notice The floor of {changeDelay} (1 hour): an announced change can always be seen before it applies.
    function MIN_CHANGE_DELAY() external view returns (uint64);

    /// @notice The ceiling of {changeDelay} (30 days).
    function MAX_CHANGE_DELAY() external view returns (uint64);

    /// @notice The ceiling of {maxPricePerMTokens} (2^128): a record's fee `(prompt + completion) × price / 1e6`
    /// then stays far below 2^256 even summed over every record of an epoch.
    function PRICE_LIMIT() external view returns (uint256);
}
