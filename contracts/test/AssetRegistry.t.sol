// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Fixture} from "./utils/Fixture.sol";
import {IAssetRegistry} from "../interfaces/IAssetRegistry.sol";

contract AssetRegistryTest is Fixture {
    bytes32 private constant DS1 = keccak256("dataset-1");
    bytes32 private constant DS2 = keccak256("dataset-2");
    bytes32 private constant MODEL = keccak256("model");
    bytes32 private constant ADAPTER = keccak256("adapter");

    function setUp() public override {
        super.setUp();
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

    function _ids(bytes32 a, bytes32 b) private pure returns (bytes32[] memory r) {
        r = new bytes32[](2);
        r[0] = a;
        r[1] = b;
    }

    function _registerDatasets() private {
        vm.startPrank(alice);
        assets.registerDataset(DS1, _addrs(alice, bob), _bps(6000, 4000), "ipfs://ds1");
        assets.registerDataset(DS2, _addrs(bob), _bps(10_000), "ipfs://ds2");
        vm.stopPrank();
    }

    function _registerAll() private {
        _registerDatasets();
        vm.prank(alice);
        assets.registerBaseModel(MODEL, "hf://tiny-llama");
        vm.prank(bob);
        assets.registerAdapter(ADAPTER, MODEL, _ids(DS1, DS2), _bps(7500, 2500), 1e15, "ipfs://adapter");
    }

    /*//////////////////////////////////////////////////////////////
                                DATASETS
    //////////////////////////////////////////////////////////////*/

    function test_RegisterDataset() public {
        vm.expectEmit(address(assets));
        emit IAssetRegistry.DatasetRegistered(DS1, alice, _addrs(alice, bob), _bps(6000, 4000), "ipfs://ds1");
        vm.prank(alice);
        assets.registerDataset(DS1, _addrs(alice, bob), _bps(6000, 4000), "ipfs://ds1");
        IAssetRegistry.Dataset memory d = assets.dataset(DS1);
        vm.assertEq(d.owner, alice);
        vm.assertEq(d.contributors, _addrs(alice, bob));
        vm.assertEq(uint256(d.sharesBps[0]), 6000);
        vm.assertEq(uint256(d.sharesBps[1]), 4000);
        vm.assertEq(d.uri, "ipfs://ds1");
        vm.assertTrue(assets.datasetExists(DS1));
        vm.assertFalse(assets.datasetExists(DS2));
    }

    function test_RevertWhen_RegisterDatasetZeroId() public {
        vm.expectRevert(IAssetRegistry.RegistryZeroId.selector);
        assets.registerDataset(bytes32(0), _addrs(alice), _bps(10_000), "");
    }

    function test_RevertWhen_RegisterDatasetDuplicate() public {
        _registerDatasets();
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryDatasetExists.selector, DS1));
        vm.prank(bob);
        assets.registerDataset(DS1, _addrs(bob), _bps(10_000), "");
    }

    function test_RevertWhen_RegisterDatasetLengthMismatch() public {
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryLengthMismatch.selector, 2, 1));
        assets.registerDataset(DS1, _addrs(alice, bob), _bps(10_000), "");
    }

    function test_RevertWhen_RegisterDatasetSharesNotSummingTo10000() public {
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryWeightsSum.selector, 9999));
        assets.registerDataset(DS1, _addrs(alice, bob), _bps(5000, 4999), "");
    }

    function test_RevertWhen_RegisterDatasetNoContributors() public {
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryWeightsSum.selector, 0));
        assets.registerDataset(DS1, new address[](0), new uint16[](0), "");
    }

    function test_RevertWhen_RegisterDatasetZeroContributor() public {
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryZeroContributor.selector, 1));
        assets.registerDataset(DS1, _addrs(alice, address(0)), _bps(5000, 5000), "");
    }

    function test_RevertWhen_RegisterDatasetZeroShare() public {
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryZeroWeight.selector, 0));
        assets.registerDataset(DS1, _addrs(alice, bob), _bps(0, 10_000), "");
    }

    function test_RevertWhen_RegisterDatasetTooManyContributors() public {
        address[] memory c = new address[](256);
        uint16[] memory s = new uint16[](256);
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryTooManyEntries.selector, 256, 255));
        assets.registerDataset(DS1, c, s, "");
    }

    function test_UpdateDataset() public {
        _registerDatasets();
        vm.expectEmit(address(assets));
        emit IAssetRegistry.DatasetUpdated(DS1, _addrs(bob), _bps(10_000), "ipfs://v2");
        vm.prank(alice);
        assets.updateDataset(DS1, _addrs(bob), _bps(10_000), "ipfs://v2");
        IAssetRegistry.Dataset memory d = assets.dataset(DS1);
        vm.assertEq(d.owner, alice, "owner unchanged");
        vm.assertEq(d.contributors, _addrs(bob));
        vm.assertEq(d.sharesBps.length, 1);
        vm.assertEq(d.uri, "ipfs://v2");
    }

    function test_RevertWhen_UpdateDatasetNotOwner() public {
        _registerDatasets();
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryNotOwner.selector, DS1, bob));
        vm.prank(bob);
        assets.updateDataset(DS1, _addrs(bob), _bps(10_000), "");
    }

    function test_RevertWhen_UpdateDatasetUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryUnknownDataset.selector, DS1));
        assets.updateDataset(DS1, _addrs(bob), _bps(10_000), "");
    }

    function test_RevertWhen_UpdateDatasetBadShares() public {
        _registerDatasets();
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryWeightsSum.selector, 10_001));
        vm.prank(alice);
        assets.updateDataset(DS1, _addrs(alice, bob), _bps(5001, 5000), "");
    }

    function test_RevertWhen_DatasetUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryUnknownDataset.selector, DS1));
        assets.dataset(DS1);
    }

    /*//////////////////////////////////////////////////////////////
                               BASE MODELS
    //////////////////////////////////////////////////////////////*/

    function test_RegisterBaseModel() public {
        vm.expectEmit(address(assets));
        emit IAssetRegistry.BaseModelRegistered(MODEL, alice, "hf://m");
        vm.prank(alice);
        assets.registerBaseModel(MODEL, "hf://m");
        IAssetRegistry.BaseModel memory m = assets.baseModel(MODEL);
        vm.assertEq(m.owner, alice);
        vm.assertEq(m.uri, "hf://m");
        vm.assertTrue(assets.baseModelExists(MODEL));
    }

    function test_RevertWhen_RegisterBaseModelZeroId() public {
        vm.expectRevert(IAssetRegistry.RegistryZeroId.selector);
        assets.registerBaseModel(bytes32(0), "");
    }

    function test_RevertWhen_RegisterBaseModelDuplicate() public {
        assets.registerBaseModel(MODEL, "");
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryBaseModelExists.selector, MODEL));
        vm.prank(bob);
        assets.registerBaseModel(MODEL, "");
    }

    function test_UpdateBaseModel() public {
        vm.prank(alice);
        assets.registerBaseModel(MODEL, "a");
        vm.expectEmit(address(assets));
        emit IAssetRegistry.BaseModelUpdated(MODEL, "b");
        vm.prank(alice);
        assets.updateBaseModel(MODEL, "b");
        vm.assertEq(assets.baseModel(MODEL).uri, "b");
    }

    function test_RevertWhen_UpdateBaseModelNotOwner() public {
        vm.prank(alice);
        assets.registerBaseModel(MODEL, "a");
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryNotOwner.selector, MODEL, bob));
        vm.prank(bob);
        assets.updateBaseModel(MODEL, "b");
    }

    function test_RevertWhen_UpdateBaseModelUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryUnknownBaseModel.selector, MODEL));
        assets.updateBaseModel(MODEL, "b");
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
        emit IAssetRegistry.AdapterRegistered(ADAPTER, bob, MODEL, _ids(DS1, DS2), _bps(7500, 2500), 1e15, "u");
        vm.prank(bob);
        assets.registerAdapter(ADAPTER, MODEL, _ids(DS1, DS2), _bps(7500, 2500), 1e15, "u");

        IAssetRegistry.Adapter memory a = assets.adapter(ADAPTER);
        vm.assertEq(a.owner, bob);
        vm.assertEq(a.baseModelId, MODEL);
        vm.assertEq(a.datasetIds, _ids(DS1, DS2));
        vm.assertEq(uint256(a.weightsBps[0]), 7500);
        vm.assertEq(a.pricePerMTokens, 1e15);
        vm.assertEq(a.uri, "u");
        vm.assertTrue(a.active, "starts active");
        (bytes32[] memory ids, uint16[] memory w) = assets.adapterProvenance(ADAPTER);
        vm.assertEq(ids, _ids(DS1, DS2));
        vm.assertEq(uint256(w[1]), 2500);
        vm.assertTrue(assets.adapterExists(ADAPTER));
    }

    function test_RegisterAdapter_EmptyProvenance() public {
        assets.registerBaseModel(MODEL, "");
        assets.registerAdapter(ADAPTER, MODEL, new bytes32[](0), new uint16[](0), 0, "");
        (bytes32[] memory ids, uint16[] memory w) = assets.adapterProvenance(ADAPTER);
        vm.assertEq(ids.length, 0);
        vm.assertEq(w.length, 0);
    }

    function test_RevertWhen_RegisterAdapterZeroId() public {
        vm.expectRevert(IAssetRegistry.RegistryZeroId.selector);
        assets.registerAdapter(bytes32(0), MODEL, new bytes32[](0), new uint16[](0), 0, "");
    }

    function test_RevertWhen_RegisterAdapterDuplicate() public {
        _registerAll();
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryAdapterExists.selector, ADAPTER));
        assets.registerAdapter(ADAPTER, MODEL, new bytes32[](0), new uint16[](0), 0, "");
    }

    function test_RevertWhen_RegisterAdapterUnknownBaseModel() public {
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryUnknownBaseModel.selector, MODEL));
        assets.registerAdapter(ADAPTER, MODEL, new bytes32[](0), new uint16[](0), 0, "");
    }

    function test_RevertWhen_RegisterAdapterUnknownDataset() public {
        _registerDatasets();
        assets.registerBaseModel(MODEL, "");
        bytes32 unknown = keccak256("nope");
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryUnknownDataset.selector, unknown));
        assets.registerAdapter(ADAPTER, MODEL, _ids(DS1, unknown), _bps(5000, 5000), 0, "");
    }

    function test_RevertWhen_RegisterAdapterLengthMismatch() public {
        _registerDatasets();
        assets.registerBaseModel(MODEL, "");
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryLengthMismatch.selector, 2, 1));
        assets.registerAdapter(ADAPTER, MODEL, _ids(DS1, DS2), _bps(10_000), 0, "");
    }

    function test_RevertWhen_RegisterAdapterWeightsNotSummingTo10000() public {
        _registerDatasets();
        assets.registerBaseModel(MODEL, "");
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryWeightsSum.selector, 12_000));
        assets.registerAdapter(ADAPTER, MODEL, _ids(DS1, DS2), _bps(6000, 6000), 0, "");
    }

    function test_RevertWhen_RegisterAdapterZeroWeight() public {
        _registerDatasets();
        assets.registerBaseModel(MODEL, "");
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryZeroWeight.selector, 1));
        assets.registerAdapter(ADAPTER, MODEL, _ids(DS1, DS2), _bps(10_000, 0), 0, "");
    }

    function test_RevertWhen_RegisterAdapterTooManyDatasets() public {
        assets.registerBaseModel(MODEL, "");
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryTooManyEntries.selector, 256, 255));
        assets.registerAdapter(ADAPTER, MODEL, new bytes32[](256), new uint16[](256), 0, "");
    }

    function test_UpdateAdapter() public {
        _registerAll();
        bytes32[] memory ids = new bytes32[](1);
        ids[0] = DS2;
        vm.expectEmit(address(assets));
        emit IAssetRegistry.AdapterUpdated(ADAPTER, ids, _bps(10_000), 2e15, "v2");
        vm.prank(bob);
        assets.updateAdapter(ADAPTER, ids, _bps(10_000), 2e15, "v2");
        IAssetRegistry.Adapter memory a = assets.adapter(ADAPTER);
        vm.assertEq(a.datasetIds, ids);
        vm.assertEq(a.pricePerMTokens, 2e15);
        vm.assertEq(a.uri, "v2");
        vm.assertEq(a.baseModelId, MODEL, "base model is part of the identity: unchanged");
    }

    function test_RevertWhen_UpdateAdapterNotOwner() public {
        _registerAll();
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryNotOwner.selector, ADAPTER, alice));
        vm.prank(alice);
        assets.updateAdapter(ADAPTER, new bytes32[](0), new uint16[](0), 0, "");
    }

    function test_RevertWhen_UpdateAdapterUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryUnknownAdapter.selector, ADAPTER));
        assets.updateAdapter(ADAPTER, new bytes32[](0), new uint16[](0), 0, "");
    }

    function test_RevertWhen_UpdateAdapterBadWeights() public {
        _registerAll();
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryWeightsSum.selector, 9000));
        vm.prank(bob);
        assets.updateAdapter(ADAPTER, _ids(DS1, DS2), _bps(4500, 4500), 0, "");
    }

    function test_SetAdapterActive() public {
        _registerAll();
        vm.expectEmit(address(assets));
        emit IAssetRegistry.AdapterActiveChanged(ADAPTER, false);
        vm.prank(bob);
        assets.setAdapterActive(ADAPTER, false);
        vm.assertFalse(assets.adapter(ADAPTER).active);
        vm.prank(bob);
        assets.setAdapterActive(ADAPTER, true);
        vm.assertTrue(assets.adapter(ADAPTER).active);
    }

    function test_RevertWhen_SetAdapterActiveNotOwner() public {
        _registerAll();
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryNotOwner.selector, ADAPTER, alice));
        vm.prank(alice);
        assets.setAdapterActive(ADAPTER, false);
    }

    function test_RevertWhen_SetAdapterActiveUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryUnknownAdapter.selector, ADAPTER));
        assets.setAdapterActive(ADAPTER, false);
    }

    function test_RevertWhen_AdapterUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryUnknownAdapter.selector, ADAPTER));
        assets.adapter(ADAPTER);
        vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryUnknownAdapter.selector, ADAPTER));
        assets.adapterProvenance(ADAPTER);
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
            shares[i] = uint16(bound(raw[i], 1, 2000));
            // forge-lint: disable-next-line(unsafe-typecast) -- small test index or value bounded above
            contributors[i] = address(uint160(i + 1));
            sum += shares[i];
        }
        if (exact) {
            // Put the remainder on the last share (kept non-zero and within uint16).
            uint256 rest = sum - shares[n - 1];
            vm.assume(rest < 10_000);
            // forge-lint: disable-next-line(unsafe-typecast) -- small test index or value bounded above
            shares[n - 1] = uint16(10_000 - rest);
            sum = 10_000;
        }
        if (sum == 10_000) {
            assets.registerDataset(DS1, contributors, shares, "");
            vm.assertEq(assets.dataset(DS1).sharesBps.length, n);
        } else {
            vm.expectRevert(abi.encodeWithSelector(IAssetRegistry.RegistryWeightsSum.selector, sum));
            assets.registerDataset(DS1, contributors, shares, "");
        }
    }

    /// @dev Gas of registering an adapter with two datasets (reported by `forge snapshot` and -vv).
    function test_RegisterAdapterGas() public {
        _registerDatasets();
        assets.registerBaseModel(MODEL, "");
        uint256 before = gasleft();
        assets.registerAdapter(ADAPTER, MODEL, _ids(DS1, DS2), _bps(7500, 2500), 1e15, "ipfs://adapter");
        uint256 used = before - gasleft();
        vm.assertLe(used, 250_000);
    }
}
