// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Vm} from "../utils/Vm.sol";
import {StandardMerkle} from "../utils/StandardMerkle.sol";
import {DevToken} from "../../src/DevToken.sol";
import {RewardDistributor} from "../../src/RewardDistributor.sol";

/// @notice Invariant handler for RewardDistributor: funds, proposes real cumulative trees (some vetoed), claims with
/// real proofs (some by relayers, some for inflated amounts) and moves time. The handler is governance, poster and
/// guardian; ghost state tracks what was funded, paid and promised.
contract DistributorHandler {
    Vm private constant vm = Vm(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);
    uint64 public constant WINDOW = 1 hours;
    uint256 public constant N = 4;

    DevToken public immutable token;
    RewardDistributor public immutable distributor;
    address[N] public accounts;

    /// @dev Ghost: the cumulative amounts of each proposed epoch's tree, and the tree itself.
    mapping(uint64 epoch => uint256[N]) private _cumulativeAt;
    mapping(uint64 epoch => bytes32[]) private _treeAt;
    mapping(address account => uint256) public ghostPaid;
    uint256 public ghostFunded;
    uint256 public ghostPaidTotal;
    uint256 public inflatedClaimsPaid; // a claim above the tree's amount succeeded
    uint256 public claims;

    constructor() {
        token = new DevToken("R", "R", address(this));
        distributor = new RewardDistributor(token, address(this), address(this), address(this), address(0x7EA5), WINDOW);
        accounts = [address(0xA1), address(0xA2), address(0xA3), address(0xA4)];
    }

    // ---- actions ----

    function fund(uint256 amount) external {
        amount = 1 + (amount % 1e24);
        token.mint(address(this), amount);
        token.approve(address(distributor), amount);
        distributor.fund(amount);
        ghostFunded += amount;
    }

    /// @dev Propose the next epoch with every account's cumulative amount grown by a bounded increment.
    function propose(uint96[N] memory increments, bool topUp) external {
        uint64 base = distributor.currentEpoch();
        uint64 epoch = distributor.latestEpoch() + 1;
        uint256[N] memory cum;
        bytes32[] memory leaves = new bytes32[](N);
        uint256 total;
        for (uint256 i; i < N; ++i) {
            cum[i] = _cumulativeAt[base][i] + (increments[i] % 1e22);
            total += cum[i];
            leaves[i] = distributor.claimLeaf(accounts[i], cum[i]);
        }
        uint256 funded = distributor.totalFunded();
        if (topUp && total > funded) {
            uint256 shortfall = total - funded;
            token.mint(address(this), shortfall);
            token.approve(address(distributor), shortfall);
            distributor.fund(shortfall);
            ghostFunded += shortfall;
        }
        bytes32[] memory tree = StandardMerkle.build(leaves);
        try distributor.proposeRoot(epoch, tree[0], total, "") {
            _cumulativeAt[epoch] = cum;
            _treeAt[epoch] = tree;
        } catch {}
    }

    function veto() external {
        try distributor.vetoRoot(distributor.latestEpoch()) {} catch {}
    }

    function claim(uint256 accountSeed, bool viaRelayer) external {
        uint64 epoch = distributor.currentEpoch();
        if (epoch == 0) return;
        address acct = accounts[accountSeed % N];
        uint256 amount = _cumulativeAt[epoch][accountSeed % N];
        bytes32[] memory tree = _treeAt[epoch];
        bytes32[] memory proof = StandardMerkle.proof(tree, distributor.claimLeaf(acct, amount));
        if (viaRelayer) vm.prank(address(0x5E1A7));
        try distributor.claim(acct, amount, tree[0], proof) returns (uint256 paid) {
            ghostPaid[acct] += paid;
            ghostPaidTotal += paid;
            ++claims;
        } catch {}
    }

    function claimInflated(uint256 accountSeed, uint256 extra) external {
        uint64 epoch = distributor.currentEpoch();
        if (epoch == 0) return;
        address acct = accounts[accountSeed % N];
        uint256 amount = _cumulativeAt[epoch][accountSeed % N];
        bytes32[] memory tree = _treeAt[epoch];
        bytes32[] memory proof = StandardMerkle.proof(tree, distributor.claimLeaf(acct, amount));
        try distributor.claim(acct, amount + 1 + (extra % 1e24), tree[0], proof) {
            ++inflatedClaimsPaid;
        } catch {}
    }

    function warp(uint32 secs) external {
        vm.warp(block.timestamp + (secs % (2 * WINDOW)));
    }

    // ---- views for the invariants ----

    function cumulativeAt(uint64 epoch, uint256 i) external view returns (uint256) {
        return _cumulativeAt[epoch][i];
    }

    function account(uint256 i) external view returns (address) {
        return accounts[i];
    }
}
