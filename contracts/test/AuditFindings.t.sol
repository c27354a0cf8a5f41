// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Fixture} from "./utils/Fixture.sol";
import {FeeOnTransferToken} from "./utils/FeeOnTransferToken.sol";
import {StandardMerkle} from "./utils/StandardMerkle.sol";
import {NodeRegistry} from "../src/NodeRegistry.sol";
import {RewardDistributor} from "../src/RewardDistributor.sol";
import {IAssetRegistry} from "../interfaces/IAssetRegistry.sol";
import {IAttributionLedger} from "../interfaces/IAttributionLedger.sol";
import {INodeRegistry} from "../interfaces/INodeRegistry.sol";
import {IRewardDistributor} from "../interfaces/IRewardDistributor.sol";

/// @notice The audit's proofs of concept (issue 10), one test per finding, each asserting that the attack fails.
/// The same scenarios written against the v1 contracts failed, i.e. the attacks worked (docs/contracts.md lists
/// the v1 run); the focused unit tests per fix live in the per-contract suites.
contract AuditFindingsTest is Fixture {
    address private attacker = address(0xBAD);
    bytes32 private constant CONTENT = keccak256("adapter files");
    bytes32 private constant MODEL = keccak256("model");

    function _one(address a) private pure returns (address[] memory r) {
        r = new address[](1);
        r[0] = a;
    }

    function _one(uint256 a) private pure returns (uint256[] memory r) {
        r = new uint256[](1);
        r[0] = a;
    }

    function _proposeSealed(uint64 epoch, bytes32 root, uint256 total, address[] memory ns, uint256[] memory ds)
        private
    {
        vm.roll(block.number + 1);
        vm.startPrank(poster);
        distributor.proposeRoot(epoch, uint64(block.number - 1), root, total, "");
        distributor.addDebits(epoch, ns, ds);
        distributor.sealRoot(epoch);
        vm.stopPrank();
    }

    function _oneBps() private pure returns (uint16[] memory r) {
        r = new uint16[](1);
        r[0] = 10_000;
    }

    /// @dev H1: an attacker who saw the author's files registers their content hash first; the author still gets
    /// her own id, and the attacker's copy is a different asset.
    function test_PoC_H1_FrontRunAdapterRegistration() public {
        assets.registerBaseModel(MODEL, "");
        vm.prank(attacker);
        bytes32 squat = assets.registerAdapter(CONTENT, MODEL, new bytes32[](0), new uint16[](0), 1, "");
        vm.prank(alice);
        bytes32 id = assets.registerAdapter(CONTENT, MODEL, new bytes32[](0), new uint16[](0), 1, "");
        vm.assertEq(assets.adapter(id).owner, alice, "the author owns the id of her files");
        vm.assertTrue(squat != id);
    }

    function test_PoC_H1_FrontRunDatasetRegistration() public {
        bytes32 key = keccak256("alice's manifest");
        vm.prank(attacker);
        assets.registerDataset(key, _one(attacker), _oneBps(), "");
        address[] memory c = new address[](1);
        c[0] = alice;
        vm.prank(alice);
        bytes32 id = assets.registerDataset(key, c, _oneBps(), "");
        vm.assertEq(assets.dataset(id).contributors[0], alice);
    }

    /// @dev H2: a price spike scheduled now does not apply now, and an uncapped price is refused.
    function test_PoC_H2_RepriceTakesEffectImmediately() public {
        assets.registerBaseModel(MODEL, "");
        vm.startPrank(alice);
        bytes32 id = assets.registerAdapter(CONTENT, MODEL, new bytes32[](0), new uint16[](0), 1, "");
        vm.expectRevert(
            abi.encodeWithSelector(IAssetRegistry.RegistryPriceTooHigh.selector, type(uint256).max, MAX_PRICE)
        );
        assets.schedulePrice(id, type(uint256).max);
        assets.schedulePrice(id, MAX_PRICE);
        vm.stopPrank();
        vm.assertEq(assets.adapter(id).pricePerMTokens, 1, "a price change must not apply at once");
    }

    /// @dev H2: a root can only pay what nodes' prepaid credit covered; without debits its total must stay 0.
    function test_PoC_H2_RootPaysFeesNobodyPaid() public {
        bytes32[] memory leaves = new bytes32[](2);
        leaves[0] = distributor.claimLeaf(alice, 1000);
        leaves[1] = distributor.claimLeaf(bob, 0);
        bytes32[] memory tree = StandardMerkle.build(leaves);
        vm.roll(block.number + 1);
        vm.startPrank(poster);
        distributor.proposeRoot(1, uint64(block.number - 1), tree[0], 1000, "");
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorTotalMismatch.selector, 1000, 0));
        distributor.sealRoot(1);
        vm.expectRevert(
            abi.encodeWithSelector(IRewardDistributor.DistributorInsufficientCredit.selector, nodeA, 1000, 0)
        );
        distributor.addDebits(1, _one(nodeA), _one(1000));
        vm.stopPrank();
    }

    /// @dev M1: epoch 1 pays alice 100; epoch 2 (total 100) gives bob 100 too: the second payment is refused.
    function test_PoC_M1_ClaimsExceedRootTotal() public {
        _deposit(nodeA, 1000);
        bytes32[] memory l1 = new bytes32[](2);
        l1[0] = distributor.claimLeaf(alice, 100);
        l1[1] = distributor.claimLeaf(bob, 0);
        bytes32[] memory t1 = StandardMerkle.build(l1);
        _proposeSealed(1, t1[0], 100, _one(nodeA), _one(100));
        vm.warp(block.timestamp + WINDOW);
        distributor.claim(alice, 100, t1[0], StandardMerkle.proof(t1, l1[0]));
        bytes32[] memory l2 = new bytes32[](2);
        l2[0] = distributor.claimLeaf(alice, 0);
        l2[1] = distributor.claimLeaf(bob, 100);
        bytes32[] memory t2 = StandardMerkle.build(l2);
        _proposeSealed(2, t2[0], 100, new address[](0), new uint256[](0));
        vm.warp(block.timestamp + WINDOW);
        try distributor.claim(bob, 100, t2[0], StandardMerkle.proof(t2, l2[1])) {} catch {}
        vm.assertLe(distributor.totalClaimed(), 100, "total claimed <= the claimable root's total");
    }

    /// @dev M2: governance cannot open a zero-length window ...
    function test_PoC_M2_GovernanceDrainsInOneBlock() public {
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorWindowTooShort.selector, 0, 1 hours));
        vm.prank(governance);
        distributor.setChallengeWindow(0);
    }

    /// @dev ... nor make the poster its own guardian.
    function test_PoC_M2_PosterIsGuardian() public {
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorPosterIsGuardian.selector, guardian));
        vm.prank(governance);
        distributor.setPoster(guardian);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorPosterIsGuardian.selector, poster));
        new RewardDistributor(token, nodes, ledger, governance, poster, poster, treasury, WINDOW);
    }

    /// @dev M3: no registry with a zero unbonding delay; a node that posts and unbonds stays slashable.
    function test_PoC_M3_PostUnbondWithdrawInOneBlock() public {
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NodeRegistryDelayTooShort.selector, 0, 14 days));
        new NodeRegistry(token, MIN_BOND, 0, governance);
        _bond(nodeA, MIN_BOND);
        vm.startPrank(nodeA);
        ledger.postBatch(0, 1, 0, 0, keccak256("root"), hex"01");
        nodes.requestUnbond(MIN_BOND);
        vm.expectRevert();
        nodes.withdraw();
        vm.stopPrank();
        vm.prank(slasher);
        nodes.slash(nodeA, MIN_BOND, treasury);
        vm.assertEq(token.balanceOf(treasury), MIN_BOND);
    }

    /// @dev L5: bond with a fee-on-transfer token credits what arrived.
    function test_PoC_L5_FeeOnTransferBond() public {
        FeeOnTransferToken fee = new FeeOnTransferToken();
        NodeRegistry r = new NodeRegistry(fee, 1, UNBONDING_DELAY, governance);
        fee.mint(nodeA, 1000);
        vm.startPrank(nodeA);
        fee.approve(address(r), 1000);
        r.bond(1000);
        vm.stopPrank();
        vm.assertEq(r.node(nodeA).bonded, fee.balanceOf(address(r)), "credited = what arrived");
    }

    /// @dev L6: neither 2^32-1 records under a one-record root nor a 1 MiB commitment is accepted.
    function test_PoC_L6_PostBatchUnbounded() public {
        _bond(nodeA, MIN_BOND);
        vm.startPrank(nodeA);
        vm.expectRevert(
            abi.encodeWithSelector(IAttributionLedger.LedgerCountTooLarge.selector, type(uint32).max, 270_598)
        );
        ledger.postBatch(0, type(uint32).max, 0, 0, keccak256("one record"), hex"01");
        vm.expectRevert(abi.encodeWithSelector(IAttributionLedger.LedgerCommitmentTooLong.selector, 1 << 20, 24_576));
        ledger.postBatch(0, 1, 0, 0, keccak256("one record"), new bytes(1 << 20));
        vm.stopPrank();
    }
}
