// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "../utils/Test.sol";
import {RegistryHandler} from "./RegistryHandler.sol";
import {AssetRegistry} from "../../src/AssetRegistry.sol";
import {IAssetRegistry} from "../../interfaces/IAssetRegistry.sol";

/// @notice Registry invariants (DESIGN.md invariant 7) under front-running and mid-epoch repricing: nobody takes an
/// id another owner registered, and a scheduled change never applies before its `effectiveAt`.
contract AssetRegistryInvariantTest is Test {
    RegistryHandler private handler;

    function setUp() public {
        handler = new RegistryHandler();
        targetContract(address(handler));
        bytes4[] memory selectors = new bytes4[](7);
        selectors[0] = RegistryHandler.registerAdapter.selector;
        selectors[1] = RegistryHandler.registerDataset.selector;
        selectors[2] = RegistryHandler.schedulePrice.selector;
        selectors[3] = RegistryHandler.scheduleContributor.selector;
        selectors[4] = RegistryHandler.cancel.selector;
        selectors[5] = RegistryHandler.attackForeign.selector;
        selectors[6] = RegistryHandler.warp.selector;
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    function invariant_IdsNeverTaken() public view {
        AssetRegistry r = handler.registry();
        vm.assertEq(handler.takenIds(), 0, "a registration reused another owner's id");
        vm.assertEq(handler.foreignChanges(), 0, "the attacker changed an asset it does not own");
        for (uint256 i; i < handler.idCount(); ++i) {
            bytes32 id = handler.ids(i);
            address owner = handler.ghostOwner(id);
            vm.assertEq(id, keccak256(abi.encode(owner, handler.ghostContent(id))), "id = keccak(owner, content)");
            IAssetRegistry.AssetKind kind =
                handler.isDataset(id) ? IAssetRegistry.AssetKind.Dataset : IAssetRegistry.AssetKind.Adapter;
            vm.assertEq(r.assetOwner(kind, id), owner, "the registrant still owns its id");
        }
    }

    function invariant_ScheduledChangesNeverApplyEarly() public view {
        AssetRegistry r = handler.registry();
        for (uint256 i; i < handler.idCount(); ++i) {
            bytes32 id = handler.ids(i);
            (uint256 price, address contributor) = handler.expectedNow(id);
            if (handler.isDataset(id)) {
                vm.assertEq(r.dataset(id).contributors[0], contributor, "contributors in effect now");
            } else {
                vm.assertEq(r.adapter(id).pricePerMTokens, price, "price in effect now");
            }
        }
    }
}
