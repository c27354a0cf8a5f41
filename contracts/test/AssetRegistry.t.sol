// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

import {Fixture} from "./utils/Fixture.sol";
import {AssetRegistry} from "../src/AssetRegistry.sol";
import {IAssetRegistry} from "../interfaces/IAssetRegistry.sol";

contract AssetRegistryTest is Fixture {
    bytes32 private constant KEY1 = keccak256("dataset-1 manifest");
    bytes32 private constant KEY2 = keccak256("dataset-2 manifest");
    bytes32 private constant MODEL = keccak256("model");
    bytes32 private constant CONTENT = keccak256("adapter files");

    bytes32 private ds1; // alice's KEY1
    bytes32 private ds2; // alice's KEY2
    bytes32 private adapterId; // bob's CONTENT

    function setUp() public override {
        super.setUp();
        ds1 = keccak256(abi.encode(alice, KEY1));
        ds2 = keccak256(abi.encode(alice, KEY2));
        adapterId = keccak256(abi.encode(bob, CONTENT));
    }

    // ---- helpers ----

    function _addrs(address a) private pure returns (address[] memory r) {
        r = new address[](1);
        r[0] = a;
    }

    function _addrs(address a, address b) private pure returns (address[] memory r) {
        r = new address[](2);
        r[0] = a;
        r[1] = b;
    }

    function _bps(uint16 a) private pure returns (uint16[] memory r) {
        r = new uint16[](1);
        r[0] = a;
    }

    function _bps(uint16 a, uint16 b) private pure returns (uint16[] memory r) {
        r = new uint16[](2);
        r[0] = a;
        r[1] = b;
    }

    function _ids(bytes32 a) private pure returns (bytes32[] memory r) {
        r = new bytes32[](1);
        r[0] = a;
    }

    function _ids(bytes32 a, bytes32 b) private pure returns (bytes32[] memory r) {
        r = new bytes32[](2);
        r[0] = a;
        r[1] = b;
    }

    function _registerDatasets() private {
        vm.startPrank(alice);
        assets.registerDataset(KEY1, _addrs(alice, bob), _bps(6000, 4000), "ipfs://ds1");
        assets.registerDataset(KEY2, _addrs(bob), _bps(10_000), "ipfs://ds2");
        vm.stopPrank();
    }

    function _registerAll() private {
        _registerDatasets();
        vm.prank(alice);
        assets.registerBaseModel(MODEL, "hf://tiny-llama");
        vm.prank(bob);
        assets.registerAdapter(CONTENT, MODEL, _ids(ds1, ds2), _bps(7500, 2500), 1e15, "ipfs://adapter");
    }

    function _now() private view returns (uint64) {
        // forge-lint: disable-next-line(unsafe-typecast) -- test timestamps are ~1.7e9, far below 2^64
        return uint64(block.timestamp);
    }

    /*//////////////////////////////////////////////////////////////
                               CONSTRUCTOR
    //////////////////////////////////////////////////////////////*/

    function test_Constructor_SetsParameters() public view {
        vm.assertEq(assets.governance(), governance);
        vm.assertEq(uint256(assets.changeDelay()), CHANGE_DELAY);
        vm.assertEq(assets.maxPricePerMTokens(), MAX_PRICE);
        vm.assertEq(uint256(assets.MIN_CHANGE_DELAY()), 1 hours);
        vm.assertEq(uint256(assets.MAX_CHANGE_DELAY()), 30 days);
        vm.assertEq(assets.PRICE_LIMIT(), 2 ** 128);
    }

    function test_RevertWhen_ConstructorChangeDelayOutOfRange() public {
        vm.expectRevert(
            abi.encodeWithSelector(IAssetRegistry.RegistryChangeDelayOutOfRange.selector, 1 hours - 1, 1 hours, 30 days)
        );
        new AssetRegistry(governance, 1 hours - 1, MAX_PRICE);
        vm.expectRevert(
            abi.encodeWithSelector(IAssetRegistry.RegistryChangeDelayOutOfRange.selector, 30 days + 1, 1 hours, 30 days)
        );
        new AssetRegistry(governance, 30 days + 1, MAX_PRICE);
    }

    function test_RevertWhen_ConstructorMaxPriceTooHigh() public {
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryMaxPriceTooHigh.selector, 2 ** 128 + 1, 2 ** 128));
        new AssetRegistry(governance, CHANGE_DELAY, 2 ** 128 + 1);
    }

    function test_RevertWhen_ConstructorZeroGovernance() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableInvalidOwner.selector, address(0)));
        new AssetRegistry(address(0), CHANGE_DELAY, MAX_PRICE);
    }

    /*//////////////////////////////////////////////////////////////
                                DATASETS
    //////////////////////////////////////////////////////////////*/

    function test_RegisterDataset() public {
        vm.expectEmit(address(assets));
        emit IAssetRegistry.DatasetRegistered(
            ds1, alice, KEY1, _addrs(alice, bob), _bps(6000, 4000), "ipfs://ds1", _now()
        );
        vm.prank(alice);
        bytes32 id = assets.registerDataset(KEY1, _addrs(alice, bob), _bps(6000, 4000), "ipfs://ds1");
        vm.assertEq(id, ds1, "id = keccak256(abi.encode(owner, datasetKey))");
        vm.assertEq(assets.datasetIdOf(alice, KEY1), ds1);
        IAssetRegistry.Dataset memory d = assets.dataset(ds1);
        vm.assertEq(d.owner, alice);
        vm.assertEq(d.datasetKey, KEY1);
        vm.assertEq(d.contributors, _addrs(alice, bob));
        vm.assertEq(uint256(d.sharesBps[0]), 6000);
        vm.assertEq(uint256(d.sharesBps[1]), 4000);
        vm.assertEq(d.uri, "ipfs://ds1");
        vm.assertTrue(assets.datasetExists(ds1));
        vm.assertFalse(assets.datasetExists(ds2));
        vm.assertEq(uint256(assets.pendingDatasetChange(ds1).effectiveAt), 0);
    }

    /// @dev H1: the same key registered by two owners gives two ids; neither blocks the other.
    function test_RegisterDataset_SameKeyOtherOwnerGetsOtherId() public {
        vm.prank(bob);
        bytes32 squat = assets.registerDataset(KEY1, _addrs(bob), _bps(10_000), "");
        vm.prank(alice);
        bytes32 id = assets.registerDataset(KEY1, _addrs(alice), _bps(10_000), "");
        vm.assertTrue(squat != id);
        vm.assertEq(assets.dataset(id).contributors, _addrs(alice));
        vm.assertEq(assets.dataset(squat).owner, bob);
    }

    function test_RevertWhen_RegisterDatasetZeroId() public {
        vm.expectRevert(IAssetRegistry.RegistryZeroId.selector);
        assets.registerDataset(bytes32(0), _addrs(alice), _bps(10_000), "");
    }

    function test_RevertWhen_RegisterDatasetDuplicate() public {
        _registerDatasets();
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryDatasetExists.selector, ds1));
        vm.prank(alice);
        assets.registerDataset(KEY1, _addrs(bob), _bps(10_000), "");
    }

    function test_RevertWhen_RegisterDatasetLengthMismatch() public {
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryLengthMismatch.selector, 2, 1));
        assets.registerDataset(KEY1, _addrs(alice, bob), _bps(10_000), "");
    }

    function test_RevertWhen_RegisterDatasetSharesNotSummingTo10000() public {
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryWeightsSum.selector, 9999));
        assets.registerDataset(KEY1, _addrs(alice, bob), _bps(5000, 4999), "");
    }

    function test_RevertWhen_RegisterDatasetNoContributors() public {
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryWeightsSum.selector, 0));
        assets.registerDataset(KEY1, new address[](0), new uint16[](0), "");
    }

    function test_RevertWhen_RegisterDatasetZeroContributor() public {
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryZeroContributor.selector, 1));
        assets.registerDataset(KEY1, _addrs(alice, address(0)), _bps(5000, 5000), "");
    }

    function test_RevertWhen_RegisterDatasetZeroShare() public {
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryZeroWeight.selector, 0));
        assets.registerDataset(KEY1, _addrs(alice, bob), _bps(0, 10_000), "");
    }

    function test_RevertWhen_RegisterDatasetTooManyContributors() public {
        address[] memory c = new address[](256);
        uint16[] memory s = new uint16[](256);
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryTooManyEntries.selector, 256, 255));
        assets.registerDataset(KEY1, c, s, "");
    }

    function test_ScheduleDatasetChange_AppliesAtEffectiveAt() public {
        _registerDatasets();
        uint64 effectiveAt = _now() + CHANGE_DELAY;
        vm.expectEmit(address(assets));
        emit IAssetRegistry.DatasetChangeScheduled(ds1, _addrs(bob), _bps(10_000), effectiveAt);
        vm.prank(alice);
        vm.assertEq(uint256(assets.scheduleDatasetChange(ds1, _addrs(bob), _bps(10_000))), effectiveAt);

        IAssetRegistry.PendingDatasetChange memory p = assets.pendingDatasetChange(ds1);
        vm.assertEq(uint256(p.effectiveAt), effectiveAt);
        vm.assertEq(p.contributors, _addrs(bob));
        vm.warp(effectiveAt - 1);
        vm.assertEq(assets.dataset(ds1).contributors, _addrs(alice, bob), "old list until effectiveAt");
        vm.warp(effectiveAt);
        vm.assertEq(assets.dataset(ds1).contributors, _addrs(bob), "new list from effectiveAt");
        vm.assertEq(uint256(assets.dataset(ds1).sharesBps[0]), 10_000);
        vm.assertEq(uint256(assets.pendingDatasetChange(ds1).effectiveAt), 0, "nothing pending once applied");
    }

    function test_ScheduleDatasetChange_AgainAfterTheLastApplied() public {
        _registerDatasets();
        vm.prank(alice);
        uint64 first = assets.scheduleDatasetChange(ds1, _addrs(bob), _bps(10_000));
        vm.warp(first);
        vm.prank(alice);
        uint64 second = assets.scheduleDatasetChange(ds1, _addrs(carol()), _bps(10_000));
        vm.assertEq(assets.dataset(ds1).contributors, _addrs(bob), "the applied change stays until the next");
        vm.warp(second);
        vm.assertEq(assets.dataset(ds1).contributors, _addrs(carol()));
    }

    function carol() private pure returns (address) {
        return address(0xCA201);
    }

    function test_RevertWhen_ScheduleDatasetChangePending() public {
        _registerDatasets();
        vm.startPrank(alice);
        uint64 effectiveAt = assets.scheduleDatasetChange(ds1, _addrs(bob), _bps(10_000));
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryChangePending.selector, ds1, effectiveAt));
        assets.scheduleDatasetChange(ds1, _addrs(alice), _bps(10_000));
        vm.stopPrank();
    }

    function test_RevertWhen_ScheduleDatasetChangeNotOwner() public {
        _registerDatasets();
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryNotOwner.selector, ds1, bob));
        vm.prank(bob);
        assets.scheduleDatasetChange(ds1, _addrs(bob), _bps(10_000));
    }

    function test_RevertWhen_ScheduleDatasetChangeUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryUnknownDataset.selector, ds1));
        assets.scheduleDatasetChange(ds1, _addrs(bob), _bps(10_000));
    }

    function test_RevertWhen_ScheduleDatasetChangeBadShares() public {
        _registerDatasets();
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryWeightsSum.selector, 10_001));
        vm.prank(alice);
        assets.scheduleDatasetChange(ds1, _addrs(alice, bob), _bps(5001, 5000));
    }

    function test_CancelDatasetChange() public {
        _registerDatasets();
        vm.startPrank(alice);
        uint64 effectiveAt = assets.scheduleDatasetChange(ds1, _addrs(bob), _bps(10_000));
        vm.expectEmit(address(assets));
        emit IAssetRegistry.DatasetChangeCancelled(ds1, effectiveAt);
        assets.cancelDatasetChange(ds1);
        vm.stopPrank();
        vm.warp(effectiveAt);
        vm.assertEq(assets.dataset(ds1).contributors, _addrs(alice, bob), "a cancelled change never applies");
        vm.prank(alice);
        assets.scheduleDatasetChange(ds1, _addrs(bob), _bps(10_000)); // and a new one may be scheduled
    }

    function test_RevertWhen_CancelDatasetChangeNoPendingChange() public {
        _registerDatasets();
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryNoPendingChange.selector, ds1));
        vm.prank(alice);
        assets.cancelDatasetChange(ds1);
        // Nor once it took effect: an applied change cannot be taken back.
        vm.prank(alice);
        uint64 effectiveAt = assets.scheduleDatasetChange(ds1, _addrs(bob), _bps(10_000));
        vm.warp(effectiveAt);
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryNoPendingChange.selector, ds1));
        vm.prank(alice);
        assets.cancelDatasetChange(ds1);
    }

    function test_SetDatasetUri() public {
        _registerDatasets();
        vm.expectEmit(address(assets));
        emit IAssetRegistry.DatasetUriChanged(ds1, "ipfs://v2");
        vm.prank(alice);
        assets.setDatasetUri(ds1, "ipfs://v2");
        vm.assertEq(assets.dataset(ds1).uri, "ipfs://v2");
    }

    function test_RevertWhen_SetDatasetUriNotOwner() public {
        _registerDatasets();
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryNotOwner.selector, ds1, bob));
        vm.prank(bob);
        assets.setDatasetUri(ds1, "x");
    }

    function test_RevertWhen_DatasetUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryUnknownDataset.selector, ds1));
        assets.dataset(ds1);
    }

    /*//////////////////////////////////////////////////////////////
                               BASE MODELS
    //////////////////////////////////////////////////////////////*/

    function test_RegisterBaseModel() public {
        vm.expectEmit(address(assets));
        emit IAssetRegistry.BaseModelRegistered(MODEL, alice, "hf://tiny");
        vm.prank(alice);
        assets.registerBaseModel(MODEL, "hf://tiny");
        IAssetRegistry.BaseModel memory m = assets.baseModel(MODEL);
        vm.assertEq(m.owner, alice);
        vm.assertEq(m.uri, "hf://tiny");
        vm.assertTrue(assets.baseModelExists(MODEL));
    }

    function test_RevertWhen_RegisterBaseModelZeroId() public {
        vm.expectRevert(IAssetRegistry.RegistryZeroId.selector);
        assets.registerBaseModel(bytes32(0), "");
    }

    function test_RevertWhen_RegisterBaseModelDuplicate() public {
        assets.registerBaseModel(MODEL, "");
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryBaseModelExists.selector, MODEL));
        vm.prank(alice);
        assets.registerBaseModel(MODEL, "");
    }

    function test_SetBaseModelUri() public {
        vm.startPrank(alice);
        assets.registerBaseModel(MODEL, "a");
        vm.expectEmit(address(assets));
        emit IAssetRegistry.BaseModelUriChanged(MODEL, "b");
        assets.setBaseModelUri(MODEL, "b");
        vm.stopPrank();
        vm.assertEq(assets.baseModel(MODEL).uri, "b");
    }

    function test_RevertWhen_SetBaseModelUriNotOwner() public {
        vm.prank(alice);
        assets.registerBaseModel(MODEL, "a");
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryNotOwner.selector, MODEL, bob));
        vm.prank(bob);
        assets.setBaseModelUri(MODEL, "b");
    }

    function test_RevertWhen_SetBaseModelUriUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryUnknownBaseModel.selector, MODEL));
        assets.setBaseModelUri(MODEL, "b");
    }

    function test_RevertWhen_BaseModelUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryUnknownBaseModel.selector, MODEL));
        assets.baseModel(MODEL);
    }

    /*//////////////////////////////////////////////////////////////
                                ADAPTERS
    //////////////////////////////////////////////////////////////*/

    function test_RegisterAdapter() public {
        _registerDatasets();
        vm.prank(alice);
        assets.registerBaseModel(MODEL, "hf://tiny-llama");
        vm.expectEmit(address(assets));
        emit IAssetRegistry.AdapterRegistered(
            adapterId, bob, MODEL, CONTENT, _ids(ds1, ds2), _bps(7500, 2500), 1e15, "u", _now()
        );
        vm.prank(bob);
        bytes32 id = assets.registerAdapter(CONTENT, MODEL, _ids(ds1, ds2), _bps(7500, 2500), 1e15, "u");
        vm.assertEq(id, adapterId, "id = keccak256(abi.encode(owner, contentHash))");
        vm.assertEq(assets.adapterIdOf(bob, CONTENT), adapterId);

        IAssetRegistry.Adapter memory a = assets.adapter(adapterId);
        vm.assertEq(a.owner, bob);
        vm.assertEq(a.contentHash, CONTENT);
        vm.assertEq(a.baseModelId, MODEL);
        vm.assertEq(a.datasetIds, _ids(ds1, ds2));
        vm.assertEq(uint256(a.weightsBps[0]), 7500);
        vm.assertEq(a.pricePerMTokens, 1e15);
        vm.assertEq(a.uri, "u");
        vm.assertTrue(a.active, "starts active");
        vm.assertEq(uint256(a.activeFrom), _now());
        (bytes32[] memory ids, uint16[] memory w) = assets.adapterProvenance(adapterId);
        vm.assertEq(ids, _ids(ds1, ds2));
        vm.assertEq(uint256(w[1]), 2500);
        vm.assertTrue(assets.adapterExists(adapterId));
        vm.assertFalse(assets.adapterExists(CONTENT), "the content hash itself is not an id");
    }

    /// @dev H1: whoever registers the author's content hash first gets their own id; the author's is untouched.
    function test_RegisterAdapter_FrontRunnerGetsOtherId() public {
        _registerDatasets();
        assets.registerBaseModel(MODEL, "");
        address attacker = makeAddr("attacker");
        vm.prank(attacker);
        bytes32 squat = assets.registerAdapter(CONTENT, MODEL, new bytes32[](0), new uint16[](0), MAX_PRICE, "");
        vm.prank(bob);
        bytes32 id = assets.registerAdapter(CONTENT, MODEL, _ids(ds1), _bps(10_000), 1e15, "");
        vm.assertEq(id, adapterId);
        vm.assertTrue(squat != id);
        vm.assertEq(assets.adapter(id).owner, bob);
        vm.assertEq(assets.adapter(id).datasetIds, _ids(ds1));
        vm.assertEq(assets.adapter(squat).owner, attacker);
    }

    function test_RegisterAdapter_EmptyProvenance() public {
        assets.registerBaseModel(MODEL, "");
        bytes32 id = assets.registerAdapter(CONTENT, MODEL, new bytes32[](0), new uint16[](0), 0, "");
        vm.assertEq(assets.adapter(id).datasetIds.length, 0);
    }

    function test_RevertWhen_RegisterAdapterZeroId() public {
        assets.registerBaseModel(MODEL, "");
        vm.expectRevert(IAssetRegistry.RegistryZeroId.selector);
        assets.registerAdapter(bytes32(0), MODEL, new bytes32[](0), new uint16[](0), 1, "");
    }

    function test_RevertWhen_RegisterAdapterDuplicate() public {
        _registerAll();
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryAdapterExists.selector, adapterId));
        vm.prank(bob);
        assets.registerAdapter(CONTENT, MODEL, new bytes32[](0), new uint16[](0), 1, "");
    }

    function test_RevertWhen_RegisterAdapterUnknownBaseModel() public {
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryUnknownBaseModel.selector, MODEL));
        assets.registerAdapter(CONTENT, MODEL, new bytes32[](0), new uint16[](0), 1, "");
    }

    function test_RevertWhen_RegisterAdapterUnknownDataset() public {
        _registerDatasets();
        assets.registerBaseModel(MODEL, "");
        bytes32 unknown = keccak256(abi.encode(bob, KEY1)); // bob never registered KEY1
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryUnknownDataset.selector, unknown));
        assets.registerAdapter(CONTENT, MODEL, _ids(ds1, unknown), _bps(5000, 5000), 1, "");
    }

    function test_RevertWhen_RegisterAdapterLengthMismatch() public {
        _registerDatasets();
        assets.registerBaseModel(MODEL, "");
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryLengthMismatch.selector, 2, 1));
        assets.registerAdapter(CONTENT, MODEL, _ids(ds1, ds2), _bps(10_000), 1, "");
    }

    function test_RevertWhen_RegisterAdapterWeightsNotSummingTo10000() public {
        _registerDatasets();
        assets.registerBaseModel(MODEL, "");
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryWeightsSum.selector, 12_000));
        assets.registerAdapter(CONTENT, MODEL, _ids(ds1, ds2), _bps(6000, 6000), 1, "");
    }

    function test_RevertWhen_RegisterAdapterZeroWeight() public {
        _registerDatasets();
        assets.registerBaseModel(MODEL, "");
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryZeroWeight.selector, 1));
        assets.registerAdapter(CONTENT, MODEL, _ids(ds1, ds2), _bps(10_000, 0), 1, "");
    }

    function test_RevertWhen_RegisterAdapterTooManyDatasets() public {
        assets.registerBaseModel(MODEL, "");
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryTooManyEntries.selector, 256, 255));
        assets.registerAdapter(CONTENT, MODEL, new bytes32[](256), new uint16[](256), 1, "");
    }

    function test_RevertWhen_RegisterAdapterPriceTooHigh() public {
        assets.registerBaseModel(MODEL, "");
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryPriceTooHigh.selector, MAX_PRICE + 1, MAX_PRICE));
        assets.registerAdapter(CONTENT, MODEL, new bytes32[](0), new uint16[](0), MAX_PRICE + 1, "");
    }

    /// @dev H2: a new price and provenance apply from effectiveAt, not before; the event carries effectiveAt.
    function test_ScheduleAdapterChange_AppliesAtEffectiveAt() public {
        _registerAll();
        uint64 effectiveAt = _now() + CHANGE_DELAY;
        vm.expectEmit(address(assets));
        emit IAssetRegistry.AdapterChangeScheduled(adapterId, _ids(ds2), _bps(10_000), 2e15, effectiveAt);
        vm.prank(bob);
        vm.assertEq(uint256(assets.scheduleAdapterChange(adapterId, _ids(ds2), _bps(10_000), 2e15)), effectiveAt);

        IAssetRegistry.PendingAdapterChange memory p = assets.pendingAdapterChange(adapterId);
        vm.assertEq(uint256(p.effectiveAt), effectiveAt);
        vm.assertEq(p.pricePerMTokens, 2e15);
        vm.assertEq(p.datasetIds, _ids(ds2));
        vm.warp(effectiveAt - 1);
        IAssetRegistry.Adapter memory a = assets.adapter(adapterId);
        vm.assertEq(a.pricePerMTokens, 1e15, "old price until effectiveAt");
        vm.assertEq(a.datasetIds, _ids(ds1, ds2), "old provenance until effectiveAt");
        vm.warp(effectiveAt);
        a = assets.adapter(adapterId);
        vm.assertEq(a.pricePerMTokens, 2e15);
        vm.assertEq(a.datasetIds, _ids(ds2));
        (bytes32[] memory ids,) = assets.adapterProvenance(adapterId);
        vm.assertEq(ids, _ids(ds2));
        vm.assertEq(uint256(assets.pendingAdapterChange(adapterId).effectiveAt), 0);
    }

    function test_SchedulePrice_KeepsProvenanceInEffect() public {
        _registerAll();
        vm.startPrank(bob);
        uint64 first = assets.scheduleAdapterChange(adapterId, _ids(ds2), _bps(10_000), 1e15);
        vm.warp(first);
        uint64 effectiveAt = _now() + CHANGE_DELAY;
        vm.expectEmit(address(assets));
        emit IAssetRegistry.AdapterChangeScheduled(adapterId, _ids(ds2), _bps(10_000), 3e15, effectiveAt);
        vm.assertEq(uint256(assets.schedulePrice(adapterId, 3e15)), effectiveAt);
        vm.stopPrank();
        vm.assertEq(assets.adapter(adapterId).pricePerMTokens, 1e15);
        vm.warp(effectiveAt);
        IAssetRegistry.Adapter memory a = assets.adapter(adapterId);
        vm.assertEq(a.pricePerMTokens, 3e15);
        vm.assertEq(a.datasetIds, _ids(ds2), "the provenance in effect when the price was scheduled");
    }

    function test_RevertWhen_ScheduleAdapterChangePending() public {
        _registerAll();
        vm.startPrank(bob);
        uint64 effectiveAt = assets.schedulePrice(adapterId, 2e15);
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryChangePending.selector, adapterId, effectiveAt));
        assets.scheduleAdapterChange(adapterId, _ids(ds1), _bps(10_000), 2e15);
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryChangePending.selector, adapterId, effectiveAt));
        assets.schedulePrice(adapterId, 1);
        vm.stopPrank();
    }

    function test_RevertWhen_SchedulePricePriceTooHigh() public {
        _registerAll();
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryPriceTooHigh.selector, MAX_PRICE + 1, MAX_PRICE));
        vm.prank(bob);
        assets.schedulePrice(adapterId, MAX_PRICE + 1);
    }

    function test_RevertWhen_ScheduleAdapterChangeNotOwner() public {
        _registerAll();
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryNotOwner.selector, adapterId, alice));
        vm.prank(alice);
        assets.schedulePrice(adapterId, 1);
    }

    function test_RevertWhen_ScheduleAdapterChangeUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryUnknownAdapter.selector, adapterId));
        assets.scheduleAdapterChange(adapterId, new bytes32[](0), new uint16[](0), 1);
    }

    function test_RevertWhen_ScheduleAdapterChangeBadWeights() public {
        _registerAll();
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryWeightsSum.selector, 9000));
        vm.prank(bob);
        assets.scheduleAdapterChange(adapterId, _ids(ds1), _bps(9000), 1);
    }

    function test_CancelAdapterChange() public {
        _registerAll();
        vm.startPrank(bob);
        uint64 effectiveAt = assets.schedulePrice(adapterId, 9e15);
        vm.expectEmit(address(assets));
        emit IAssetRegistry.AdapterChangeCancelled(adapterId, effectiveAt);
        assets.cancelAdapterChange(adapterId);
        vm.stopPrank();
        vm.warp(effectiveAt);
        vm.assertEq(assets.adapter(adapterId).pricePerMTokens, 1e15, "a cancelled change never applies");
    }

    function test_RevertWhen_CancelAdapterChangeNoPendingChange() public {
        _registerAll();
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryNoPendingChange.selector, adapterId));
        vm.prank(bob);
        assets.cancelAdapterChange(adapterId);
    }

    function test_SetAdapterUri() public {
        _registerAll();
        vm.expectEmit(address(assets));
        emit IAssetRegistry.AdapterUriChanged(adapterId, "ipfs://v2");
        vm.prank(bob);
        assets.setAdapterUri(adapterId, "ipfs://v2");
        vm.assertEq(assets.adapter(adapterId).uri, "ipfs://v2");
    }

    function test_SetAdapterActive_DeactivateNowReactivateScheduled() public {
        _registerAll();
        vm.expectEmit(address(assets));
        emit IAssetRegistry.AdapterActiveChanged(adapterId, false, _now());
        vm.prank(bob);
        vm.assertEq(uint256(assets.setAdapterActive(adapterId, false)), _now());
        vm.assertFalse(assets.adapter(adapterId).active, "deactivation is immediate");
        vm.assertEq(uint256(assets.adapter(adapterId).activeFrom), 0);

        uint64 effectiveAt = _now() + CHANGE_DELAY;
        vm.expectEmit(address(assets));
        emit IAssetRegistry.AdapterActiveChanged(adapterId, true, effectiveAt);
        vm.prank(bob);
        vm.assertEq(uint256(assets.setAdapterActive(adapterId, true)), effectiveAt);
        vm.prank(bob); // asking again keeps the scheduled time
        vm.assertEq(uint256(assets.setAdapterActive(adapterId, true)), effectiveAt);
        vm.warp(effectiveAt - 1);
        vm.assertFalse(assets.adapter(adapterId).active, "reactivation waits for effectiveAt");
        vm.warp(effectiveAt);
        vm.assertTrue(assets.adapter(adapterId).active);
    }

    function test_RevertWhen_SetAdapterActiveNotOwner() public {
        _registerAll();
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryNotOwner.selector, adapterId, alice));
        vm.prank(alice);
        assets.setAdapterActive(adapterId, false);
    }

    function test_RevertWhen_SetAdapterActiveUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryUnknownAdapter.selector, adapterId));
        assets.setAdapterActive(adapterId, false);
    }

    function test_RevertWhen_AdapterUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryUnknownAdapter.selector, adapterId));
        assets.adapter(adapterId);
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryUnknownAdapter.selector, adapterId));
        assets.adapterProvenance(adapterId);
    }

    /*//////////////////////////////////////////////////////////////
                                OWNERSHIP
    //////////////////////////////////////////////////////////////*/

    function test_TransferAssetOwnership_TwoStepForEveryKind() public {
        _registerAll();
        bytes32[3] memory ids = [ds1, MODEL, adapterId];
        address[3] memory owners = [alice, alice, bob];
        for (uint256 k; k < 3; ++k) {
            IAssetRegistry.AssetKind kind = IAssetRegistry.AssetKind(k);
            vm.expectEmit(address(assets));
            emit IAssetRegistry.AssetOwnershipTransferStarted(kind, ids[k], owners[k], carol());
            vm.prank(owners[k]);
            assets.transferAssetOwnership(kind, ids[k], carol());
            vm.assertEq(assets.pendingAssetOwner(kind, ids[k]), carol());
            vm.assertEq(assets.assetOwner(kind, ids[k]), owners[k], "nothing changes before acceptance");
            vm.expectEmit(address(assets));
            emit IAssetRegistry.AssetOwnershipTransferred(kind, ids[k], owners[k], carol());
            vm.prank(carol());
            assets.acceptAssetOwnership(kind, ids[k]);
            vm.assertEq(assets.assetOwner(kind, ids[k]), carol());
            vm.assertEq(assets.pendingAssetOwner(kind, ids[k]), address(0));
        }
        // The new owner may change the asset (the id stays); the old one may not.
        vm.prank(carol());
        assets.schedulePrice(adapterId, 5);
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryNotOwner.selector, ds1, alice));
        vm.prank(alice);
        assets.setDatasetUri(ds1, "");
        vm.assertEq(assets.adapter(adapterId).owner, carol());
        vm.assertEq(assets.dataset(ds1).owner, carol());
        vm.assertEq(assets.baseModel(MODEL).owner, carol());
    }

    function test_TransferAssetOwnership_OfferWithdrawn() public {
        _registerAll();
        vm.startPrank(bob);
        assets.transferAssetOwnership(IAssetRegistry.AssetKind.Adapter, adapterId, carol());
        assets.transferAssetOwnership(IAssetRegistry.AssetKind.Adapter, adapterId, address(0));
        vm.stopPrank();
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryNotPendingOwner.selector, adapterId, carol()));
        vm.prank(carol());
        assets.acceptAssetOwnership(IAssetRegistry.AssetKind.Adapter, adapterId);
    }

    function test_RevertWhen_AcceptAssetOwnershipNotPendingOwner() public {
        _registerAll();
        vm.prank(alice);
        assets.transferAssetOwnership(IAssetRegistry.AssetKind.Dataset, ds1, carol());
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryNotPendingOwner.selector, ds1, bob));
        vm.prank(bob);
        assets.acceptAssetOwnership(IAssetRegistry.AssetKind.Dataset, ds1);
    }

    function test_RevertWhen_TransferAssetOwnershipNotOwner() public {
        _registerAll();
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryNotOwner.selector, MODEL, bob));
        vm.prank(bob);
        assets.transferAssetOwnership(IAssetRegistry.AssetKind.BaseModel, MODEL, bob);
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryUnknownBaseModel.selector, KEY1));
        assets.transferAssetOwnership(IAssetRegistry.AssetKind.BaseModel, KEY1, bob);
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryUnknownAdapter.selector, KEY1));
        assets.acceptAssetOwnership(IAssetRegistry.AssetKind.Adapter, KEY1);
    }

    /*//////////////////////////////////////////////////////////////
                               GOVERNANCE
    //////////////////////////////////////////////////////////////*/

    function test_SetChangeDelay_PendingChangesKeepTheirEffectiveAt() public {
        _registerAll();
        vm.prank(bob);
        uint64 effectiveAt = assets.schedulePrice(adapterId, 2e15);
        vm.expectEmit(address(assets));
        emit IAssetRegistry.ChangeDelayChanged(CHANGE_DELAY, 2 hours);
        vm.prank(governance);
        assets.setChangeDelay(2 hours);
        vm.assertEq(uint256(assets.changeDelay()), 2 hours);
        vm.assertEq(uint256(assets.pendingAdapterChange(adapterId).effectiveAt), effectiveAt);
        vm.warp(effectiveAt);
        vm.prank(bob);
        vm.assertEq(uint256(assets.schedulePrice(adapterId, 3e15)), _now() + 2 hours);
    }

    function test_RevertWhen_SetChangeDelayOutOfRange() public {
        vm.startPrank(governance);
        vm.expectRevert(
            abi.encodeWithSelector(IAssetRegistry.RegistryChangeDelayOutOfRange.selector, 0, 1 hours, 30 days)
        );
        assets.setChangeDelay(0);
        vm.expectRevert(
            abi.encodeWithSelector(IAssetRegistry.RegistryChangeDelayOutOfRange.selector, 31 days, 1 hours, 30 days)
        );
        assets.setChangeDelay(31 days);
        vm.stopPrank();
    }

    function test_SetMaxPricePerMTokens() public {
        _registerAll();
        vm.expectEmit(address(assets));
        emit IAssetRegistry.MaxPriceChanged(MAX_PRICE, 1e15);
        vm.prank(governance);
        assets.setMaxPricePerMTokens(1e15);
        vm.assertEq(assets.maxPricePerMTokens(), 1e15);
        vm.assertEq(assets.adapter(adapterId).pricePerMTokens, 1e15, "prices in effect are kept");
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryPriceTooHigh.selector, 1e15 + 1, 1e15));
        vm.prank(bob);
        assets.schedulePrice(adapterId, 1e15 + 1);
    }

    function test_RevertWhen_SetMaxPricePerMTokensTooHigh() public {
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryMaxPriceTooHigh.selector, 2 ** 255, 2 ** 128));
        vm.prank(governance);
        assets.setMaxPricePerMTokens(2 ** 255);
    }

    function test_RevertWhen_GovernanceSetterNotGovernance() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        vm.prank(alice);
        assets.setChangeDelay(2 hours);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        vm.prank(alice);
        assets.setMaxPricePerMTokens(1);
    }

    /*//////////////////////////////////////////////////////////////
                                  FUZZ
    //////////////////////////////////////////////////////////////*/

    /// @dev Any split of 10000 into n non-zero shares registers; any other sum is refused with that sum.
    function testFuzz_RegisterDataset_SharesSum(uint16[8] memory raw, uint8 n, bool exact) public {
        n = uint8(bound(n, 1, 8));
        uint16[] memory shares = new uint16[](n);
        address[] memory contributors = new address[](n);
        uint256 sum;
        for (uint256 i; i < n; ++i) {
            // forge-lint: disable-next-line(unsafe-typecast) -- bounded to [1, 2000] just before
            shares[i] = uint16(bound(raw[i], 1, 2000));
            // forge-lint: disable-next-line(unsafe-typecast) -- i + 1 <= 8 fits 160 bits
            contributors[i] = address(uint160(i + 1));
            sum += shares[i];
        }
        if (exact) {
            // Put the remainder on the last share (kept non-zero and within uint16).
            uint256 rest = sum - shares[n - 1];
            vm.assume(rest < 10_000);
            // forge-lint: disable-next-line(unsafe-typecast) -- rest < 10000, so 10000 - rest is in [1, 10000]
            shares[n - 1] = uint16(10_000 - rest);
            sum = 10_000;
        }
        if (sum == 10_000) {
            bytes32 id = assets.registerDataset(KEY1, contributors, shares, "");
            vm.assertEq(assets.dataset(id).sharesBps.length, n);
        } else {
            vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryWeightsSum.selector, sum));
            assets.registerDataset(KEY1, contributors, shares, "");
        }
    }

    /// @dev H1: two different registrants of the same content hash always get two ids, both registered.
    function testFuzz_RegisterAdapter_IdsNamespacedByOwner(address first, address second, bytes32 content) public {
        vm.assume(first != second && first != address(0) && second != address(0) && content != bytes32(0));
        assets.registerBaseModel(MODEL, "");
        vm.prank(first);
        bytes32 a = assets.registerAdapter(content, MODEL, new bytes32[](0), new uint16[](0), 1, "");
        vm.prank(second);
        bytes32 b = assets.registerAdapter(content, MODEL, new bytes32[](0), new uint16[](0), 2, "");
        vm.assertTrue(a != b);
        vm.assertEq(a, keccak256(abi.encode(first, content)));
        vm.assertEq(assets.adapter(a).owner, first);
        vm.assertEq(assets.adapter(b).owner, second);
    }

    /// @dev H2: a scheduled price is invisible before effectiveAt and in effect from it, for any delay and time.
    function testFuzz_SchedulePrice_NeverAppliesBeforeEffectiveAt(uint64 delay, uint256 price, uint64 probe) public {
        delay = uint64(bound(delay, 1 hours, 30 days));
        price = bound(price, 0, MAX_PRICE);
        _registerAll();
        vm.prank(governance);
        assets.setChangeDelay(delay);
        vm.prank(bob);
        uint64 effectiveAt = assets.schedulePrice(adapterId, price);
        vm.assertEq(uint256(effectiveAt), _now() + delay);
        probe = uint64(bound(probe, _now(), uint256(effectiveAt) + 60 days));
        vm.warp(probe);
        vm.assertEq(assets.adapter(adapterId).pricePerMTokens, probe < effectiveAt ? 1e15 : price);
    }

    function testFuzz_RevertWhen_PriceTooHigh(uint256 price) public {
        price = bound(price, MAX_PRICE + 1, type(uint256).max);
        assets.registerBaseModel(MODEL, "");
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryPriceTooHigh.selector, price, MAX_PRICE));
        assets.registerAdapter(CONTENT, MODEL, new bytes32[](0), new uint16[](0), price, "");
    }

    /// @dev Gas of registering an adapter with two datasets (reported by `forge snapshot` and -vv).
    function test_RegisterAdapterGas() public {
        _registerDatasets();
        assets.registerBaseModel(MODEL, "");
        uint256 before = gasleft();
        assets.registerAdapter(CONTENT, MODEL, _ids(ds1, ds2), _bps(7500, 2500), 1e15, "ipfs://adapter");
        uint256 used = before - gasleft();
        vm.assertLe(used, 300_000);
    }
}
