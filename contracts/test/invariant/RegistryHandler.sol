// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Vm} from "../utils/Vm.sol";
import {AssetRegistry} from "../../src/AssetRegistry.sol";
import {IAssetRegistry} from "../../interfaces/IAssetRegistry.sol";

/// @notice Invariant handler for AssetRegistry. Three owners register adapters over a small pool of content hashes
/// and dataset keys and schedule price and contributor changes; an attacker front-runs every registration with the
/// same content hash or key, tries to change others' assets, and reprices its own adapters mid-epoch. Ghost state
/// keeps, per id, who registered it and the history of scheduled terms with their `effectiveAt`.
contract RegistryHandler {
    Vm private constant vm = Vm(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);
    uint64 public constant DELAY = 1 hours;
    uint256 public constant MAX_PRICE = 1e24;
    bytes32 public constant MODEL = keccak256("model");
    address public constant ATTACKER = address(0xBAD);

    struct Entry {
        uint64 effectiveAt;
        uint256 price;
        address contributor;
    }

    AssetRegistry public immutable registry;
    address[3] public owners;
    bytes32[] public ids; // adapters and datasets, in registration order
    mapping(bytes32 id => bool) public isDataset;
    mapping(bytes32 id => address) public ghostOwner;
    mapping(bytes32 id => bytes32) public ghostContent; // content hash or dataset key
    mapping(bytes32 id => Entry[]) private _history;
    uint256 public takenIds; // a registration returned an id already registered by someone else
    uint256 public foreignChanges; // the attacker changed an asset it does not own

    constructor() {
        registry = new AssetRegistry(address(this), DELAY, MAX_PRICE);
        registry.registerBaseModel(MODEL, "");
        owners = [address(0xA1), address(0xA2), address(0xA3)];
    }

    // ---- actions ----

    function registerAdapter(uint256 ownerSeed, uint8 contentSeed, uint256 price, bool frontRun) external {
        address owner = frontRun ? ATTACKER : owners[ownerSeed % 3];
        bytes32 content = keccak256(abi.encode("content", contentSeed % 4));
        price = price % (MAX_PRICE + 1);
        vm.prank(owner);
        try registry.registerAdapter(content, MODEL, new bytes32[](0), new uint16[](0), price, "") returns (
            bytes32 id
        ) {
            _record(id, owner, content, false, price, address(0));
        } catch {}
    }

    function registerDataset(uint256 ownerSeed, uint8 keySeed, bool frontRun) external {
        address owner = frontRun ? ATTACKER : owners[ownerSeed % 3];
        bytes32 key = keccak256(abi.encode("key", keySeed % 4));
        address[] memory c = new address[](1);
        c[0] = owner;
        uint16[] memory s = new uint16[](1);
        s[0] = 10_000;
        vm.prank(owner);
        try registry.registerDataset(key, c, s, "") returns (bytes32 id) {
            _record(id, owner, key, true, 0, owner);
        } catch {}
    }

    /// @dev Any owner, including the attacker, reprices an adapter it owns, possibly just before an epoch ends.
    function schedulePrice(uint256 idSeed, uint256 price) external {
        if (ids.length == 0) return;
        bytes32 id = ids[idSeed % ids.length];
        if (isDataset[id]) return;
        price = price % (MAX_PRICE + 1);
        vm.prank(ghostOwner[id]);
        try registry.schedulePrice(id, price) returns (uint64 effectiveAt) {
            _history[id].push(Entry(effectiveAt, price, address(0)));
        } catch {}
    }

    function scheduleContributor(uint256 idSeed, address contributor) external {
        if (ids.length == 0 || contributor == address(0)) return;
        bytes32 id = ids[idSeed % ids.length];
        if (!isDataset[id]) return;
        address[] memory c = new address[](1);
        c[0] = contributor;
        uint16[] memory s = new uint16[](1);
        s[0] = 10_000;
        vm.prank(ghostOwner[id]);
        try registry.scheduleDatasetChange(id, c, s) returns (uint64 effectiveAt) {
            _history[id].push(Entry(effectiveAt, 0, contributor));
        } catch {}
    }

    function cancel(uint256 idSeed) external {
        if (ids.length == 0) return;
        bytes32 id = ids[idSeed % ids.length];
        vm.prank(ghostOwner[id]);
        if (isDataset[id]) {
            try registry.cancelDatasetChange(id) {
                _history[id].pop();
            } catch {}
        } else {
            try registry.cancelAdapterChange(id) {
                _history[id].pop();
            } catch {}
        }
    }

    /// @dev The attacker tries to reprice or re-split an asset it does not own.
    function attackForeign(uint256 idSeed) external {
        if (ids.length == 0) return;
        bytes32 id = ids[idSeed % ids.length];
        if (ghostOwner[id] == ATTACKER) return;
        address[] memory c = new address[](1);
        c[0] = ATTACKER;
        uint16[] memory s = new uint16[](1);
        s[0] = 10_000;
        vm.startPrank(ATTACKER);
        try registry.schedulePrice(id, MAX_PRICE) {
            ++foreignChanges;
        } catch {}
        try registry.scheduleDatasetChange(id, c, s) {
            ++foreignChanges;
        } catch {}
        try registry.transferAssetOwnership(
            isDataset[id] ? IAssetRegistry.AssetKind.Dataset : IAssetRegistry.AssetKind.Adapter, id, ATTACKER
        ) {
            ++foreignChanges;
        } catch {}
        vm.stopPrank();
    }

    function warp(uint32 secs) external {
        vm.warp(block.timestamp + (secs % (2 * DELAY)));
    }

    // ---- views for the invariants ----

    function idCount() external view returns (uint256) {
        return ids.length;
    }

    /// @dev The terms in effect now by the ghost history: the last entry whose effectiveAt has come.
    function expectedNow(bytes32 id) external view returns (uint256 price, address contributor) {
        Entry[] storage h = _history[id];
        for (uint256 i = h.length; i > 0; --i) {
            if (block.timestamp >= h[i - 1].effectiveAt) return (h[i - 1].price, h[i - 1].contributor);
        }
    }

    function _record(bytes32 id, address owner, bytes32 content, bool dataset, uint256 price, address c) private {
        if (ghostOwner[id] != address(0)) ++takenIds;
        ids.push(id);
        ghostOwner[id] = owner;
        ghostContent[id] = content;
        isDataset[id] = dataset;
        // forge-lint: disable-next-line(unsafe-typecast) -- test timestamps are far below 2^64
        _history[id].push(Entry(uint64(block.timestamp), price, c));
    }
}
