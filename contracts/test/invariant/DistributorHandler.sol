// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Vm} from "../utils/Vm.sol";
import {StandardMerkle} from "../utils/StandardMerkle.sol";
import {DevToken} from "../../src/DevToken.sol";
import {NodeRegistry} from "../../src/NodeRegistry.sol";
import {RewardDistributor} from "../../src/RewardDistributor.sol";
import {IRewardDistributor} from "../../interfaces/IRewardDistributor.sol";

/// @notice Invariant handler for RewardDistributor, partly an attacker: deposits fee credit for two nodes, proposes
/// cumulative trees with their debits — honest ones, and dishonest ones whose leaves promise more than the total
/// (inflated amounts, or amounts moved from accounts that already claimed to accounts that did not, as in M1) —
/// vetoes some, claims with real proofs (some by relayers, some for inflated amounts), tries to withdraw credit of
/// nodes that did not exit, and moves time. The handler is governance and poster; the guardian is another address.
contract DistributorHandler {
    Vm private constant vm = Vm(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);
    uint64 public constant WINDOW = 1 hours;
    uint256 public constant N = 4;
    address public constant GUARDIAN = address(0x6A4D);
    address public constant NODE0 = address(0x40DE0);
    address public constant NODE1 = address(0x40DE1);

    DevToken public immutable token;
    NodeRegistry public immutable nodeRegistry;
    RewardDistributor public immutable distributor;
    address[N] public accounts;

    /// @dev Ghost: the cumulative amounts of each proposed epoch's tree, and the tree itself.
    mapping(uint64 epoch => uint256[N]) private _cumulativeAt;
    mapping(uint64 epoch => bytes32[]) private _treeAt;
    mapping(address account => uint256) public ghostPaid;
    uint256 public ghostDeposited;
    uint256 public ghostPaidTotal;
    uint256 public ghostWithdrawn;
    uint256 public inflatedClaimsPaid; // a claim above the tree's amount succeeded
    uint256 public creditWithdrawnWhileStaked; // a staked node got its credit out
    uint256 public dishonestProposals;
    uint256 public claims;
    uint256 public claimsCapped; // claims refused because the tree promised more than its total

    constructor() {
        token = new DevToken("R", "R", address(this));
        nodeRegistry = new NodeRegistry(token, 1, 14 days, address(this));
        distributor =
            new RewardDistributor(token, nodeRegistry, address(this), address(this), GUARDIAN, address(0x7EA5), WINDOW);
        accounts = [address(0xA1), address(0xA2), address(0xA3), address(0xA4)];
        // NODE0 stays bonded (it may never withdraw its credit); NODE1 never bonds (it may).
        token.mint(NODE0, 1);
        vm.startPrank(NODE0);
        token.approve(address(nodeRegistry), 1);
        nodeRegistry.bond(1);
        vm.stopPrank();
    }

    // ---- actions ----

    function deposit(bool second, uint256 amount) external {
        amount = 1 + (amount % 1e24);
        token.mint(address(this), amount);
        token.approve(address(distributor), amount);
        ghostDeposited += distributor.depositFees(second ? NODE1 : NODE0, amount);
    }

    /// @dev Propose the next epoch: every account's cumulative amount grows by a bounded increment, paid by debits
    /// from the nodes' credit. `mode` 0 is honest; 1 inflates the leaves beyond the total; 2 moves each account's
    /// past amount to its neighbour (the sum stays right, but accounts that claimed lose nothing and others gain).
    function propose(uint96[N] memory increments, uint8 mode, uint96 extra) external {
        uint64 base = distributor.currentEpoch();
        uint64 epoch = distributor.latestEpoch();
        if (epoch == 0 || !distributor.proposal(epoch).vetoed) ++epoch;
        uint256[N] memory cum;
        uint256 added;
        for (uint256 i; i < N; ++i) {
            uint256 inc = increments[i] % 1e22;
            added += inc;
            uint256 past = _cumulativeAt[base][mode % 3 == 2 ? (i + 1) % N : i];
            cum[i] = past + inc + (mode % 3 == 1 ? 1 + (extra % 1e22) : 0);
        }
        if (mode % 3 != 0) ++dishonestProposals;
        // Split the added amount over the two nodes' credit (skip when they cannot pay).
        uint256 c0 = distributor.feeCredit(NODE0);
        if (added > c0 + distributor.feeCredit(NODE1)) return;
        address[] memory ns = new address[](2);
        (ns[0], ns[1]) = (NODE0, NODE1);
        uint256[] memory debits = new uint256[](2);
        debits[0] = added < c0 ? added : c0;
        debits[1] = added - debits[0];

        bytes32[] memory leaves = new bytes32[](N);
        for (uint256 i; i < N; ++i) {
            leaves[i] = distributor.claimLeaf(accounts[i], cum[i]);
        }
        bytes32[] memory tree = StandardMerkle.build(leaves);
        uint256 total = distributor.proposal(base).total + added;
        // The settled total is the base one unless the latest (not vetoed) proposal's window has passed.
        uint64 latest = distributor.latestEpoch();
        if (latest != 0 && !distributor.proposal(latest).vetoed) total = distributor.proposal(latest).total + added;
        try distributor.proposeRoot(epoch, tree[0], total, "", ns, debits) {
            _cumulativeAt[epoch] = cum;
            _treeAt[epoch] = tree;
        } catch {}
    }

    function veto() external {
        vm.prank(GUARDIAN);
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
        } catch (bytes memory reason) {
            // forge-lint: disable-next-line(unsafe-typecast) -- the first 4 bytes of a revert reason are its selector
            if (bytes4(reason) == IRewardDistributor.DistributorClaimExceedsTotal.selector) ++claimsCapped;
        }
    }

    /// @dev Every account claims from the current tree (what drains a dishonest tree down to its total).
    function claimAll(bool viaRelayer) external {
        for (uint256 i; i < N; ++i) {
            this.claim(i, viaRelayer);
        }
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

    /// @dev Attacker: the staked node tries to pull its credit before its fees are debited; the exited one may.
    function withdrawCredit(bool second) external {
        address node = second ? NODE1 : NODE0;
        vm.prank(node);
        try distributor.withdrawFeeCredit(node) returns (uint256 amount) {
            if (!second) ++creditWithdrawnWhileStaked;
            ghostWithdrawn += amount;
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
