// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {Fixture} from "./utils/Fixture.sol";
import {StandardMerkle} from "./utils/StandardMerkle.sol";
import {RewardDistributor} from "../src/RewardDistributor.sol";
import {IAttributionLedger} from "../interfaces/IAttributionLedger.sol";
import {INodeRegistry} from "../interfaces/INodeRegistry.sol";
import {FeeOnTransferToken} from "./utils/FeeOnTransferToken.sol";
import {Governed} from "../src/utils/Governed.sol";
import {IRewardDistributor} from "../interfaces/IRewardDistributor.sol";

contract RewardDistributorTest is Fixture {
    uint256 private constant POOL = 1_000_000e18;

    function setUp() public override {
        super.setUp();
        _deposit(nodeA, POOL);
    }

    // ---- helpers ----

    /// @dev A tree over (alice, a), (bob, b), (treasury, 1): returns the tree.
    function _tree(uint256 a, uint256 b) private view returns (bytes32[] memory) {
        bytes32[] memory leaves = new bytes32[](3);
        leaves[0] = distributor.claimLeaf(alice, a);
        leaves[1] = distributor.claimLeaf(bob, b);
        leaves[2] = distributor.claimLeaf(treasury, 1);
        return StandardMerkle.build(leaves);
    }

    function _one(address a) private pure returns (address[] memory r) {
        r = new address[](1);
        r[0] = a;
    }

    function _one(uint256 a) private pure returns (uint256[] memory r) {
        r = new uint256[](1);
        r[0] = a;
    }

    /// @dev Open, page and seal `epoch` ending at the previous block, nodeA paying what `root` adds over the
    /// previous epoch's total.
    function _propose(uint64 epoch, bytes32 root, uint256 total) private {
        uint256 debit = total - distributor.proposal(epoch - 1).total;
        vm.roll(block.number + 1);
        vm.startPrank(poster);
        distributor.proposeRoot(epoch, uint64(block.number - 1), root, total, hex"010000d0");
        distributor.addDebits(epoch, _one(nodeA), _one(debit));
        distributor.sealRoot(epoch);
        vm.stopPrank();
    }

    /// @dev Open `epoch` (ending at the previous block) with total 0, for tests that expect a check to revert.
    function _tryPropose(uint64 epoch, bytes32 root) private {
        vm.roll(block.number + 1);
        vm.prank(poster);
        distributor.proposeRoot(epoch, uint64(block.number - 1), root, 0, "");
    }

    /// @dev Veto `epoch` (one page debiting nodeA `debit`) and release its page.
    function _vetoAndRelease(uint64 epoch, uint256 debit) private {
        vm.prank(guardian);
        distributor.vetoRoot(epoch);
        distributor.releaseDebits(epoch, 0, _one(nodeA), _one(debit));
    }

    function _now() private view returns (uint64) {
        // forge-lint: disable-next-line(unsafe-typecast) -- test timestamps are ~1.7e9, far below 2^64
        return uint64(block.timestamp);
    }

    /// @dev Propose the tree for (a, b) and let its window pass.
    function _activate(uint64 epoch, uint256 a, uint256 b) private returns (bytes32[] memory tree) {
        tree = _tree(a, b);
        _propose(epoch, tree[0], a + b + 1);
        vm.warp(block.timestamp + WINDOW);
    }

    function _claim(address account, uint256 amount, bytes32[] memory tree) private returns (uint256) {
        bytes32[] memory proof = StandardMerkle.proof(tree, distributor.claimLeaf(account, amount));
        return distributor.claim(account, amount, tree[0], proof);
    }

    /*//////////////////////////////////////////////////////////////
                               CONSTRUCTOR
    //////////////////////////////////////////////////////////////*/

    function test_Constructor_SetsParameters() public view {
        vm.assertEq(address(distributor.token()), address(token));
        vm.assertEq(distributor.governance(), governance);
        vm.assertEq(distributor.poster(), poster);
        vm.assertEq(distributor.guardian(), guardian);
        vm.assertEq(distributor.treasury(), treasury);
        vm.assertEq(uint256(distributor.challengeWindow()), WINDOW);
        vm.assertEq(uint256(distributor.nodeShareBps()), 2000);
        vm.assertEq(uint256(distributor.adapterShareBps()), 3000);
        vm.assertEq(distributor.currentRoot(), bytes32(0));
        vm.assertEq(uint256(distributor.currentEpoch()), 0);
        vm.assertEq(uint256(distributor.latestEpoch()), 0);
    }

    function test_RevertWhen_ConstructorZeroAddress() public {
        vm.expectRevert(IRewardDistributor.DistributorZeroAddress.selector);
        new RewardDistributor(IERC20(address(0)), nodes, ledger, governance, poster, guardian, treasury, WINDOW);
        vm.expectRevert(IRewardDistributor.DistributorZeroAddress.selector);
        new RewardDistributor(token, INodeRegistry(address(0)), ledger, governance, poster, guardian, treasury, WINDOW);
        vm.expectRevert(IRewardDistributor.DistributorZeroAddress.selector);
        new RewardDistributor(
            token, nodes, IAttributionLedger(address(0)), governance, poster, guardian, treasury, WINDOW
        );
        vm.expectRevert(IRewardDistributor.DistributorZeroAddress.selector);
        new RewardDistributor(token, nodes, ledger, governance, address(0), guardian, treasury, WINDOW);
        vm.expectRevert(IRewardDistributor.DistributorZeroAddress.selector);
        new RewardDistributor(token, nodes, ledger, governance, poster, address(0), treasury, WINDOW);
        vm.expectRevert(IRewardDistributor.DistributorZeroAddress.selector);
        new RewardDistributor(token, nodes, ledger, governance, poster, guardian, address(0), WINDOW);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableInvalidOwner.selector, address(0)));
        new RewardDistributor(token, nodes, ledger, address(0), poster, guardian, treasury, WINDOW);
    }

    function test_RevertWhen_ConstructorWindowTooLong() public {
        vm.expectRevert(
            abi.encodeWithSelector(IRewardDistributor.DistributorWindowTooLong.selector, uint64(7 days + 1), 7 days)
        );
        new RewardDistributor(token, nodes, ledger, governance, poster, guardian, treasury, 7 days + 1);
    }

    function test_RevertWhen_ConstructorWindowTooShort() public {
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorWindowTooShort.selector, 0, 1 hours));
        new RewardDistributor(token, nodes, ledger, governance, poster, guardian, treasury, 0);
    }

    /// @dev M2: the devnet's old "one key for every role" is refused; the guardian must be someone else.
    function test_RevertWhen_ConstructorPosterIsGuardian() public {
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorPosterIsGuardian.selector, poster));
        new RewardDistributor(token, nodes, ledger, governance, poster, poster, treasury, WINDOW);
    }

    /*//////////////////////////////////////////////////////////////
                               FEE CREDIT
    //////////////////////////////////////////////////////////////*/

    function test_DepositFees_AnyoneTopsUpAnyNode() public {
        token.mint(alice, 50);
        vm.startPrank(alice);
        token.approve(address(distributor), 50);
        vm.expectEmit(address(distributor));
        emit IRewardDistributor.FeesDeposited(nodeB, alice, 50, 50);
        vm.assertEq(distributor.depositFees(nodeB, 50), 50);
        vm.stopPrank();
        vm.assertEq(distributor.feeCredit(nodeB), 50);
        vm.assertEq(distributor.feeCredit(nodeA), POOL);
        vm.assertEq(distributor.totalDeposited(), POOL + 50);
        vm.assertEq(token.balanceOf(address(distributor)), POOL + 50);
    }

    /// @dev L5 for fees: a fee-on-transfer token credits what arrived, never more than the distributor holds.
    function test_DepositFees_CreditsWhatArrived() public {
        FeeOnTransferToken fee = new FeeOnTransferToken();
        RewardDistributor d = new RewardDistributor(fee, nodes, ledger, governance, poster, guardian, treasury, WINDOW);
        fee.mint(alice, 1000);
        vm.startPrank(alice);
        fee.approve(address(d), 1000);
        vm.assertEq(d.depositFees(nodeA, 1000), 990);
        vm.stopPrank();
        vm.assertEq(d.feeCredit(nodeA), fee.balanceOf(address(d)));
        vm.assertEq(d.totalDeposited(), 990);
    }

    function test_DepositFees_PlainTransferIsNoCredit() public {
        token.mint(alice, 7);
        vm.prank(alice);
        vm.assertTrue(token.transfer(address(distributor), 7));
        vm.assertEq(distributor.totalDeposited(), POOL);
        vm.assertEq(distributor.feeCredit(alice), 0);
    }

    function test_RevertWhen_DepositFeesZeroAmount() public {
        vm.expectRevert(IRewardDistributor.DistributorZeroAmount.selector);
        distributor.depositFees(nodeA, 0);
        vm.expectRevert(IRewardDistributor.DistributorZeroAddress.selector);
        distributor.depositFees(address(0), 1);
    }

    function test_WithdrawFeeCredit_AfterExit() public {
        _bond(nodeA, MIN_BOND);
        _propose(1, keccak256("r"), 400);
        vm.startPrank(nodeA);
        nodes.requestUnbond(MIN_BOND);
        vm.warp(block.timestamp + UNBONDING_DELAY);
        nodes.withdraw();
        vm.expectEmit(address(distributor));
        emit IRewardDistributor.FeeCreditWithdrawn(nodeA, alice, POOL - 400);
        vm.assertEq(distributor.withdrawFeeCredit(alice), POOL - 400, "the debited 400 stays reserved");
        vm.stopPrank();
        vm.assertEq(token.balanceOf(alice), POOL - 400);
        vm.assertEq(distributor.feeCredit(nodeA), 0);
        vm.assertEq(token.balanceOf(address(distributor)), 400);
    }

    function test_RevertWhen_WithdrawFeeCreditNodeNotExited() public {
        _bond(nodeA, MIN_BOND);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorNodeNotExited.selector, nodeA));
        vm.prank(nodeA);
        distributor.withdrawFeeCredit(nodeA);
        // Unbonding is not exit: the stake is still slashable and the node's last epoch may still be debited.
        vm.prank(nodeA);
        nodes.requestUnbond(MIN_BOND);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorNodeNotExited.selector, nodeA));
        vm.prank(nodeA);
        distributor.withdrawFeeCredit(nodeA);
    }

    function test_RevertWhen_WithdrawFeeCreditNothing() public {
        vm.expectRevert(IRewardDistributor.DistributorZeroAmount.selector);
        vm.prank(nodeB);
        distributor.withdrawFeeCredit(nodeB);
        vm.expectRevert(IRewardDistributor.DistributorZeroAddress.selector);
        vm.prank(nodeA);
        distributor.withdrawFeeCredit(address(0));
    }

    /*//////////////////////////////////////////////////////////////
                                  ROOTS
    //////////////////////////////////////////////////////////////*/

    function test_ProposeRoot_StoresAndBecomesClaimableAfterWindow() public {
        bytes32 root = keccak256("r1");
        bytes memory payload = hex"010000d0aabb";
        vm.roll(block.number + 1);
        uint64 end = uint64(block.number - 1);
        vm.startPrank(poster);
        vm.expectEmit(address(distributor));
        emit IRewardDistributor.RootProposed(1, root, 100, end, payload);
        distributor.proposeRoot(1, end, root, 100, payload);
        vm.expectEmit(address(distributor));
        emit IRewardDistributor.DebitsAdded(1, 0, _one(nodeA), _one(100));
        distributor.addDebits(1, _one(nodeA), _one(100));
        vm.assertEq(distributor.feeCredit(nodeA), POOL - 100, "debits are reserved at once");
        vm.expectEmit(address(distributor));
        emit IRewardDistributor.RootSealed(1, root, 100, _now() + WINDOW);
        distributor.sealRoot(1);
        vm.stopPrank();

        IRewardDistributor.Proposal memory p = distributor.proposal(1);
        vm.assertEq(p.root, root);
        vm.assertEq(p.total, 100);
        vm.assertEq(p.debited, 100);
        vm.assertEq(uint256(p.endBlock), end);
        vm.assertEq(uint256(p.pages), 1);
        vm.assertEq(distributor.pageHash(1, 0), keccak256(abi.encode(_one(nodeA), _one(100))));
        vm.assertEq(distributor.totalDebited(), 100);
        vm.assertEq(p.payloadCommitmentHash, keccak256(payload));
        vm.assertEq(uint256(p.proposedAt), block.timestamp);
        vm.assertEq(uint256(p.claimableAt), block.timestamp + WINDOW);
        vm.assertFalse(p.vetoed);
        vm.assertEq(uint256(distributor.latestEpoch()), 1);

        vm.warp(block.timestamp + WINDOW - 1);
        vm.assertEq(distributor.currentRoot(), bytes32(0), "not during the window");
        vm.warp(block.timestamp + 1);
        vm.assertEq(distributor.currentRoot(), root, "claimable once the window passed");
        vm.assertEq(uint256(distributor.currentEpoch()), 1);
    }

    /// @dev An open (unsealed) proposal never becomes claimable, however long it waits.
    function test_ProposeRoot_OpenNeverClaimable() public {
        _tryPropose(1, keccak256("r"));
        vm.warp(block.timestamp + 30 days);
        vm.assertEq(distributor.currentRoot(), bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorWindowOpen.selector, uint64(1), 0));
        _tryPropose(2, keccak256("r2"));
    }

    function test_ProposeRoot_NewRootReplacesOnlyAfterItsWindow() public {
        bytes32[] memory t1 = _activate(1, 10, 20);
        bytes32 r2 = keccak256("r2");
        _propose(2, r2, 100);
        vm.assertEq(distributor.currentRoot(), t1[0], "old root still claimable during the new window");
        vm.warp(block.timestamp + WINDOW);
        vm.assertEq(distributor.currentRoot(), r2);
        vm.assertEq(uint256(distributor.currentEpoch()), 2);
    }

    function test_ProposeRoot_ReproposeVetoedEpoch() public {
        _propose(1, keccak256("bad"), 10);
        _vetoAndRelease(1, 10);
        _propose(1, keccak256("good"), 10);
        vm.warp(block.timestamp + WINDOW);
        vm.assertEq(distributor.currentRoot(), keccak256("good"));
        vm.assertEq(distributor.feeCredit(nodeA), POOL - 10, "debited once");
    }

    function test_RevertWhen_ProposeRootNotPoster() public {
        vm.roll(block.number + 1);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorNotPoster.selector, alice));
        vm.prank(alice);
        distributor.proposeRoot(1, 1, keccak256("r"), 1, "");
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorNotPoster.selector, alice));
        vm.prank(alice);
        distributor.addDebits(1, _one(nodeA), _one(1));
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorNotPoster.selector, alice));
        vm.prank(alice);
        distributor.sealRoot(1);
    }

    function test_RevertWhen_ProposeRootZeroRoot() public {
        vm.expectRevert(IRewardDistributor.DistributorZeroRoot.selector);
        _tryPropose(1, bytes32(0));
    }

    function test_RevertWhen_ProposeRootEpochNotNext() public {
        vm.expectRevert(
            abi.encodeWithSelector(IRewardDistributor.DistributorEpochNotNext.selector, uint64(0), uint64(1))
        );
        _tryPropose(0, keccak256("r"));
        vm.expectRevert(
            abi.encodeWithSelector(IRewardDistributor.DistributorEpochNotNext.selector, uint64(5), uint64(1))
        );
        _tryPropose(5, keccak256("r"));
        _activate(1, 1, 1);
        vm.expectRevert(
            abi.encodeWithSelector(IRewardDistributor.DistributorEpochNotNext.selector, uint64(1), uint64(2))
        );
        _tryPropose(1, keccak256("r"));
        vm.expectRevert(
            abi.encodeWithSelector(IRewardDistributor.DistributorEpochNotNext.selector, uint64(3), uint64(2))
        );
        _tryPropose(3, keccak256("r"));
    }

    function test_RevertWhen_ProposeRootAfterVetoedEpoch() public {
        _propose(1, keccak256("bad"), 10);
        vm.prank(guardian);
        distributor.vetoRoot(1);
        vm.expectRevert(
            abi.encodeWithSelector(IRewardDistributor.DistributorReleasePending.selector, uint64(1), 0, 1)
        );
        _tryPropose(1, keccak256("r"));
        distributor.releaseDebits(1, 0, _one(nodeA), _one(10));
        vm.expectRevert(
            abi.encodeWithSelector(IRewardDistributor.DistributorEpochNotNext.selector, uint64(2), uint64(1))
        );
        _tryPropose(2, keccak256("r"));
    }

    function test_RevertWhen_ProposeRootBadEndBlock() public {
        vm.roll(block.number + 5);
        vm.startPrank(poster);
        vm.expectRevert(
            abi.encodeWithSelector(IRewardDistributor.DistributorBadEndBlock.selector, block.number, 0, block.number)
        );
        distributor.proposeRoot(1, uint64(block.number), keccak256("r"), 0, "");
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorBadEndBlock.selector, 0, 0, block.number));
        distributor.proposeRoot(1, 0, keccak256("r"), 0, "");
        distributor.proposeRoot(1, uint64(block.number - 2), keccak256("r"), 0, "");
        distributor.sealRoot(1);
        vm.warp(block.timestamp + WINDOW);
        uint64 previous = uint64(block.number - 2);
        vm.expectRevert(
            abi.encodeWithSelector(IRewardDistributor.DistributorBadEndBlock.selector, previous, previous, block.number)
        );
        distributor.proposeRoot(2, previous, keccak256("r"), 0, "");
        vm.stopPrank();
    }

    function test_RevertWhen_ProposeRootWindowOpen() public {
        _propose(1, keccak256("r1"), 10);
        uint64 at = _now() + WINDOW;
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorWindowOpen.selector, uint64(1), at));
        _tryPropose(2, keccak256("r2"));
    }

    /// @dev A root may only promise what the debits of its epoch and the earlier ones took from node credit.
    function test_RevertWhen_SealRootTotalMismatch() public {
        _propose(1, keccak256("r1"), 100);
        vm.warp(block.timestamp + WINDOW);
        vm.roll(block.number + 1);
        vm.startPrank(poster);
        distributor.proposeRoot(2, uint64(block.number - 1), keccak256("r2"), 99, "");
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorTotalMismatch.selector, 99, 100));
        distributor.sealRoot(2);
        vm.stopPrank();
        vm.prank(guardian);
        distributor.vetoRoot(2);
        vm.roll(block.number + 1);
        vm.startPrank(poster);
        distributor.proposeRoot(2, uint64(block.number - 1), keccak256("r2"), 151, "");
        distributor.addDebits(2, _one(nodeA), _one(50));
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorTotalMismatch.selector, 151, 150));
        distributor.sealRoot(2);
        vm.stopPrank();
    }

    function test_RevertWhen_AddDebitsInsufficientCredit() public {
        _tryPropose(1, keccak256("r"));
        vm.startPrank(poster);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorInsufficientCredit.selector, nodeB, 1, 0));
        distributor.addDebits(1, _one(nodeB), _one(1));
        // A node listed twice is debited twice, from one credit.
        address[] memory twice = new address[](2);
        (twice[0], twice[1]) = (nodeA, nodeA);
        uint256[] memory debits = new uint256[](2);
        (debits[0], debits[1]) = (POOL, 1);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorInsufficientCredit.selector, nodeA, 1, 0));
        distributor.addDebits(1, twice, debits);
        vm.stopPrank();
    }

    function test_RevertWhen_AddDebitsLengthMismatch() public {
        _tryPropose(1, keccak256("r"));
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorLengthMismatch.selector, 1, 0));
        vm.prank(poster);
        distributor.addDebits(1, _one(nodeA), new uint256[](0));
    }

    function test_RevertWhen_AddDebitsTooManyNodes() public {
        _tryPropose(1, keccak256("r"));
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorTooManyNodes.selector, 201, 200));
        vm.prank(poster);
        distributor.addDebits(1, new address[](201), new uint256[](201));
    }

    function test_RevertWhen_AddDebitsNotOpen() public {
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorUnknownEpoch.selector, uint64(1)));
        vm.prank(poster);
        distributor.addDebits(1, _one(nodeA), _one(1));
        _propose(1, keccak256("r"), 1);
        vm.startPrank(poster);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorNotOpen.selector, uint64(1)));
        distributor.addDebits(1, _one(nodeA), _one(1));
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorNotOpen.selector, uint64(1)));
        distributor.sealRoot(1);
        vm.stopPrank();
    }

    function test_VetoRoot_KeepsPreviousRoot() public {
        bytes32[] memory t1 = _activate(1, 10, 20);
        bytes32 bad = keccak256("bad");
        _propose(2, bad, 100);
        vm.assertEq(distributor.feeCredit(nodeA), POOL - 100);
        vm.expectEmit(address(distributor));
        emit IRewardDistributor.RootVetoed(2, bad, 69);
        vm.prank(guardian);
        distributor.vetoRoot(2);
        vm.assertTrue(distributor.proposal(2).vetoed);
        vm.assertEq(distributor.feeCredit(nodeA), POOL - 100, "reserved until the page is released");
        vm.expectEmit(address(distributor));
        emit IRewardDistributor.DebitsReleased(2, 0, 69);
        distributor.releaseDebits(2, 0, _one(nodeA), _one(69));
        vm.assertEq(distributor.feeCredit(nodeA), POOL - 31, "the release gave the epoch's debits back");
        vm.assertEq(distributor.totalDebited(), 31);
        vm.warp(block.timestamp + WINDOW);
        vm.assertEq(distributor.currentRoot(), t1[0], "vetoed root never becomes current");
        vm.assertEq(uint256(distributor.currentEpoch()), 1);
        // The vetoed total does not bind the next proposal; the last claimable one does.
        _propose(2, keccak256("r2"), 31);
    }

    function test_VetoRoot_OpenProposal() public {
        _tryPropose(1, keccak256("r"));
        vm.prank(poster);
        distributor.addDebits(1, _one(nodeA), _one(5));
        vm.prank(guardian);
        distributor.vetoRoot(1);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorNotOpen.selector, uint64(1)));
        vm.prank(poster);
        distributor.sealRoot(1);
    }

    function test_RevertWhen_ReleaseDebitsBad() public {
        _propose(1, keccak256("r"), 10);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorBadRelease.selector, uint64(1), 0));
        distributor.releaseDebits(1, 0, _one(nodeA), _one(10)); // not vetoed
        vm.prank(guardian);
        distributor.vetoRoot(1);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorBadRelease.selector, uint64(1), 0));
        distributor.releaseDebits(1, 0, _one(nodeA), _one(11)); // not what the page added
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorBadRelease.selector, uint64(1), 1));
        distributor.releaseDebits(1, 1, _one(nodeA), _one(10)); // no such page
        distributor.releaseDebits(1, 0, _one(nodeA), _one(10));
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorBadRelease.selector, uint64(1), 0));
        distributor.releaseDebits(1, 0, _one(nodeA), _one(10)); // twice
        vm.assertEq(distributor.feeCredit(nodeA), POOL);
    }

    function test_RevertWhen_VetoRootNotGuardian() public {
        _propose(1, keccak256("r"), 1);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorNotGuardian.selector, poster));
        vm.prank(poster);
        distributor.vetoRoot(1);
    }

    function test_RevertWhen_VetoRootUnknownEpoch() public {
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorUnknownEpoch.selector, uint64(0)));
        vm.prank(guardian);
        distributor.vetoRoot(0);
        _propose(1, keccak256("r"), 1);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorUnknownEpoch.selector, uint64(2)));
        vm.prank(guardian);
        distributor.vetoRoot(2);
    }

    function test_RevertWhen_VetoRootWindowClosed() public {
        _propose(1, keccak256("r"), 1);
        uint64 at = _now() + WINDOW;
        vm.warp(at);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorWindowClosed.selector, uint64(1), at));
        vm.prank(guardian);
        distributor.vetoRoot(1);
    }

    function test_RevertWhen_VetoRootTwice() public {
        _propose(1, keccak256("r"), 1);
        vm.prank(guardian);
        distributor.vetoRoot(1);
        uint64 at = _now() + WINDOW;
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorWindowClosed.selector, uint64(1), at));
        vm.prank(guardian);
        distributor.vetoRoot(1);
    }

    /*//////////////////////////////////////////////////////////////
                                 CLAIMS
    //////////////////////////////////////////////////////////////*/

    function test_Claim_PaysAccountAnyoneMayCall() public {
        bytes32[] memory tree = _activate(1, 300, 500);
        bytes32[] memory proof = StandardMerkle.proof(tree, distributor.claimLeaf(alice, 300));
        vm.expectEmit(address(distributor));
        emit IRewardDistributor.Claimed(alice, 300, 300, tree[0]);
        vm.prank(bob); // a relayer
        uint256 paid = distributor.claim(alice, 300, tree[0], proof);
        vm.assertEq(paid, 300);
        vm.assertEq(token.balanceOf(alice), 300);
        vm.assertEq(token.balanceOf(bob), 0);
        vm.assertEq(distributor.claimed(alice), 300);
        vm.assertEq(distributor.totalClaimed(), 300);
        vm.assertEq(distributor.totalDebited(), 801, "claims do not change what was debited");
    }

    function test_Claim_PaysDifferenceAcrossEpochs() public {
        bytes32[] memory t1 = _activate(1, 300, 500);
        _claim(alice, 300, t1);
        bytes32[] memory t2 = _activate(2, 450, 900);
        vm.assertEq(_claim(alice, 450, t2), 150);
        vm.assertEq(_claim(bob, 900, t2), 900, "bob skipped epoch 1: gets everything at once");
        vm.assertEq(token.balanceOf(alice), 450);
        vm.assertEq(distributor.totalClaimed(), 1350);
    }

    function test_RevertWhen_ClaimNoRoot() public {
        vm.expectRevert(IRewardDistributor.DistributorNoRoot.selector);
        distributor.claim(alice, 1, bytes32(0), new bytes32[](0));
    }

    /// @dev The claimant named root r1; the poster's r2 became current meanwhile: the claim fails instead of being
    /// checked against a root the claimant did not see.
    function test_RevertWhen_ClaimRootMismatch() public {
        bytes32[] memory t1 = _activate(1, 300, 500);
        bytes32[] memory t2 = _activate(2, 301, 500);
        bytes32[] memory proof = StandardMerkle.proof(t1, distributor.claimLeaf(alice, 300));
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorRootMismatch.selector, t1[0], t2[0]));
        distributor.claim(alice, 300, t1[0], proof);
    }

    function test_RevertWhen_ClaimInvalidProof() public {
        bytes32[] memory tree = _activate(1, 300, 500);
        bytes32[] memory proof = StandardMerkle.proof(tree, distributor.claimLeaf(alice, 300));
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorInvalidProof.selector, alice, 301));
        distributor.claim(alice, 301, tree[0], proof);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorInvalidProof.selector, bob, 300));
        distributor.claim(bob, 300, tree[0], proof);
    }

    function test_RevertWhen_ClaimNothingToClaim() public {
        bytes32[] memory tree = _activate(1, 300, 500);
        _claim(alice, 300, tree);
        bytes32[] memory proof = StandardMerkle.proof(tree, distributor.claimLeaf(alice, 300));
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorNothingToClaim.selector, alice, 300, 300));
        distributor.claim(alice, 300, tree[0], proof);
    }

    /// @dev M1: epoch 1 pays alice 100; epoch 2's tree (total 100) forgets her and gives bob 100. The second claim
    /// would take the total claimed to 200 > 100: refused.
    function test_RevertWhen_ClaimExceedsTotal() public {
        bytes32[] memory l1 = new bytes32[](2);
        l1[0] = distributor.claimLeaf(alice, 100);
        l1[1] = distributor.claimLeaf(bob, 0);
        bytes32[] memory t1 = StandardMerkle.build(l1);
        _propose(1, t1[0], 100);
        vm.warp(block.timestamp + WINDOW);
        distributor.claim(alice, 100, t1[0], StandardMerkle.proof(t1, l1[0]));
        bytes32[] memory l2 = new bytes32[](2);
        l2[0] = distributor.claimLeaf(alice, 0);
        l2[1] = distributor.claimLeaf(bob, 100);
        bytes32[] memory t2 = StandardMerkle.build(l2);
        _propose(2, t2[0], 100); // no new debits: the total stays 100
        vm.warp(block.timestamp + WINDOW);
        bytes32[] memory proof = StandardMerkle.proof(t2, l2[1]);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorClaimExceedsTotal.selector, 200, 100));
        distributor.claim(bob, 100, t2[0], proof);
        vm.assertEq(distributor.totalClaimed(), 100);
    }

    function test_RevertWhen_ClaimZeroAccount() public {
        vm.expectRevert(IRewardDistributor.DistributorZeroAddress.selector);
        distributor.claim(address(0), 1, bytes32(0), new bytes32[](0));
    }

    function test_ClaimLeaf_DomainSeparated() public {
        bytes32 leaf = distributor.claimLeaf(alice, 5);
        vm.assertEq(
            leaf,
            keccak256(
                bytes.concat(keccak256(abi.encode(block.chainid, address(distributor), alice, address(token), 5)))
            )
        );
        RewardDistributor other =
            new RewardDistributor(token, nodes, ledger, governance, poster, guardian, treasury, WINDOW);
        vm.assertTrue(other.claimLeaf(alice, 5) != leaf, "other deployment");
        vm.chainId(10);
        vm.assertTrue(distributor.claimLeaf(alice, 5) != leaf, "other chain");
    }

    /// @dev Gas of a claim against a 3-leaf tree (reported by `forge snapshot` and -vv).
    function test_ClaimGas() public {
        bytes32[] memory tree = _activate(1, 300, 500);
        bytes32[] memory proof = StandardMerkle.proof(tree, distributor.claimLeaf(alice, 300));
        uint256 before = gasleft();
        distributor.claim(alice, 300, tree[0], proof);
        uint256 used = before - gasleft();
        vm.assertLe(used, 100_000);
    }

    /*//////////////////////////////////////////////////////////////
                               GOVERNANCE
    //////////////////////////////////////////////////////////////*/

    function test_SetShares() public {
        vm.expectEmit(address(distributor));
        emit IRewardDistributor.SharesChanged(1000, 9000, _now());
        vm.prank(governance);
        distributor.setShares(1000, 9000);
        vm.assertEq(uint256(distributor.nodeShareBps()), 1000);
        vm.assertEq(uint256(distributor.adapterShareBps()), 9000);
    }

    function test_RevertWhen_SetSharesTooHigh() public {
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorSharesTooHigh.selector, 10_001));
        vm.prank(governance);
        distributor.setShares(5001, 5000);
    }

    function test_RevertWhen_SetSharesNotGovernance() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, poster));
        vm.prank(poster);
        distributor.setShares(0, 0);
    }

    function test_SetRoles() public {
        vm.startPrank(governance);
        vm.expectEmit(address(distributor));
        emit IRewardDistributor.PosterChanged(poster, alice);
        distributor.setPoster(alice);
        vm.expectEmit(address(distributor));
        emit IRewardDistributor.GuardianChanged(guardian, bob);
        distributor.setGuardian(bob);
        vm.expectEmit(address(distributor));
        emit IRewardDistributor.TreasuryChanged(treasury, alice);
        distributor.setTreasury(alice);
        vm.expectEmit(address(distributor));
        emit IRewardDistributor.ChallengeWindowChanged(WINDOW, 1 hours);
        distributor.setChallengeWindow(1 hours);
        vm.stopPrank();
        vm.assertEq(distributor.poster(), alice);
        vm.assertEq(distributor.guardian(), bob);
        vm.assertEq(distributor.treasury(), alice);
        vm.assertEq(uint256(distributor.challengeWindow()), 1 hours);
        // The new poster can propose; even with the shortest window the root is not claimable in its block.
        vm.roll(block.number + 1);
        vm.startPrank(alice);
        distributor.proposeRoot(1, uint64(block.number - 1), keccak256("r"), 1, "");
        distributor.addDebits(1, _one(nodeA), _one(1));
        distributor.sealRoot(1);
        vm.stopPrank();
        vm.assertEq(distributor.currentRoot(), bytes32(0));
        vm.warp(block.timestamp + 1 hours);
        vm.assertEq(distributor.currentRoot(), keccak256("r"));
    }

    /// @dev M2: governance cannot make itself (or anyone) poster and guardian at once.
    function test_RevertWhen_SetRolesPosterIsGuardian() public {
        vm.startPrank(governance);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorPosterIsGuardian.selector, guardian));
        distributor.setPoster(guardian);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorPosterIsGuardian.selector, poster));
        distributor.setGuardian(poster);
        vm.stopPrank();
    }

    function test_RevertWhen_SetRolesZeroAddress() public {
        vm.startPrank(governance);
        vm.expectRevert(IRewardDistributor.DistributorZeroAddress.selector);
        distributor.setPoster(address(0));
        vm.expectRevert(IRewardDistributor.DistributorZeroAddress.selector);
        distributor.setGuardian(address(0));
        vm.expectRevert(IRewardDistributor.DistributorZeroAddress.selector);
        distributor.setTreasury(address(0));
        vm.stopPrank();
    }

    function test_RevertWhen_SetRolesNotGovernance() public {
        vm.startPrank(alice);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        distributor.setPoster(alice);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        distributor.setGuardian(alice);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        distributor.setTreasury(alice);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        distributor.setChallengeWindow(1);
        vm.stopPrank();
    }

    function test_RevertWhen_SetChallengeWindowTooLong() public {
        vm.expectRevert(
            abi.encodeWithSelector(IRewardDistributor.DistributorWindowTooLong.selector, uint64(7 days + 1), 7 days)
        );
        vm.prank(governance);
        distributor.setChallengeWindow(7 days + 1);
    }

    /// @dev M2: the window never drops below its floor, so a root is never claimable in the block it is proposed.
    function test_RevertWhen_SetChallengeWindowTooShort() public {
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorWindowTooShort.selector, 0, 1 hours));
        vm.prank(governance);
        distributor.setChallengeWindow(0);
    }

    function test_Constants_UnbondingOutlastsEveryChallengeWindow() public view {
        vm.assertGt(uint256(nodes.MIN_UNBONDING_DELAY()), uint256(distributor.MAX_CHALLENGE_WINDOW()));
        vm.assertEq(uint256(distributor.MIN_CHALLENGE_WINDOW()), 1 hours);
        vm.assertEq(distributor.MAX_PAGE_NODES(), 200);
        vm.assertEq(address(distributor.nodeRegistry()), address(nodes));
        vm.assertEq(address(distributor.ledger()), address(ledger));
    }

    function test_RevertWhen_RenounceGovernance() public {
        vm.expectRevert(Governed.GovernanceRenounceDisabled.selector);
        vm.prank(governance);
        distributor.renounceOwnership();
    }

    /*//////////////////////////////////////////////////////////////
                                  FUZZ
    //////////////////////////////////////////////////////////////*/

    /// @dev Over growing cumulative amounts, an account receives exactly its last cumulative amount in total.
    function testFuzz_Claim_CumulativeAcrossEpochs(uint96[4] memory increments, uint8 claimMask) public {
        uint256 a;
        uint256 paid;
        for (uint64 e = 1; e <= 4; ++e) {
            a += bound(increments[e - 1], 0, POOL / 8);
            bytes32[] memory tree = _activate(e, a, 1);
            if ((claimMask >> e) & 1 == 1 || e == 4) {
                if (a > distributor.claimed(alice)) {
                    paid += _claim(alice, a, tree);
                } else {
                    bytes32[] memory proof = StandardMerkle.proof(tree, distributor.claimLeaf(alice, a));
                    vm.expectRevert(
                        abi.encodeWithSelector(
                            IRewardDistributor.DistributorNothingToClaim.selector, alice, a, distributor.claimed(alice)
                        )
                    );
                    distributor.claim(alice, a, tree[0], proof);
                }
            }
        }
        vm.assertEq(paid, a);
        vm.assertEq(token.balanceOf(alice), a);
        vm.assertEq(distributor.claimed(alice), a);
    }

    /// @dev Flipping any one bit of a valid proof makes the claim fail with DistributorInvalidProof.
    function testFuzz_RevertWhen_ClaimProofBitFlip(uint256 bit) public {
        bytes32[] memory tree = _activate(1, 300, 500);
        bytes32[] memory proof = StandardMerkle.proof(tree, distributor.claimLeaf(alice, 300));
        bit = bound(bit, 0, proof.length * 256 - 1);
        proof[bit / 256] ^= bytes32(uint256(1) << (bit % 256));
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.DistributorInvalidProof.selector, alice, 300));
        distributor.claim(alice, 300, tree[0], proof);
    }

    /// @dev No debit above a node's credit is ever accepted, whatever the amounts.
    function testFuzz_RevertWhen_AddDebitsInsufficientCredit(uint256 credit, uint256 debit) public {
        credit = bound(credit, 1, 1e30);
        debit = bound(debit, credit + 1, type(uint128).max);
        _deposit(nodeB, credit);
        _tryPropose(1, keccak256("r"));
        vm.expectRevert(
            abi.encodeWithSelector(IRewardDistributor.DistributorInsufficientCredit.selector, nodeB, debit, credit)
        );
        vm.prank(poster);
        distributor.addDebits(1, _one(nodeB), _one(debit));
    }

    /// @dev Propose and veto any split of debits: every node gets exactly its credit back.
    function testFuzz_VetoRoot_ReleasesEveryDebit(uint96 debitA, uint96 debitB) public {
        _deposit(nodeB, 1e24);
        uint256 a = bound(debitA, 0, POOL);
        uint256 b = bound(debitB, 0, 1e24);
        address[] memory ns = new address[](2);
        (ns[0], ns[1]) = (nodeA, nodeB);
        uint256[] memory ds = new uint256[](2);
        (ds[0], ds[1]) = (a, b);
        _tryPropose(1, keccak256("r"));
        vm.prank(poster);
        distributor.addDebits(1, ns, ds);
        vm.assertEq(distributor.feeCredit(nodeA), POOL - a);
        vm.assertEq(distributor.feeCredit(nodeB), 1e24 - b);
        vm.prank(guardian);
        distributor.vetoRoot(1);
        distributor.releaseDebits(1, 0, ns, ds);
        vm.assertEq(distributor.feeCredit(nodeA), POOL);
        vm.assertEq(distributor.feeCredit(nodeB), 1e24);
        vm.assertEq(distributor.totalDebited(), 0);
    }
}
