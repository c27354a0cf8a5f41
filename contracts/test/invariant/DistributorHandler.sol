// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Vm} from "../utils/Vm.sol";
import {StandardMerkle} from "../utils/StandardMerkle.sol";
import {DevToken} from "../../src/DevToken.sol";
import {NodeRegistry} from "../../src/NodeRegistry.sol";
import {AttributionLedger} from "../../src/AttributionLedger.sol";
import {RewardDistributor} from "../../src/RewardDistributor.sol";
import {IRewardDistributor} from "../../interfaces/IRewardDistributor.sol";

/// @notice Invariant handler for RewardDistributor, partly an attacker. It keeps its own model of the money (what it
/// deposited, what each proposal debited, what each claim and withdrawal must pay, measured as token balance
/// changes, never from the contract's return values) and counts every call whose outcome differs from the model:
/// an honest action that reverts, or an attack that succeeds. Actions: deposits for a posting node (NODE0) and a
/// node that never bonds (NODE1); proposals in two pages, honest or dishonest (leaves above the total, or amounts
/// moved from accounts that claimed to accounts that did not, as in M1); vetoes with the release of every page, and
/// late vetoes; claims with real proofs (some by relayers) and inflated ones; NODE0 posting, exiting, bonding again
/// and being slashed to zero; credit withdrawals, including ones that must be refused (not exited, or a batch no
/// settled epoch paid for yet); time and blocks moving. The handler is governance, poster and test slasher.
contract DistributorHandler {
    Vm private constant vm = Vm(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);
    uint64 public constant WINDOW = 1 hours;
    uint64 public constant UNBONDING = 14 days;
    uint256 public constant N = 4;
    address public constant GUARDIAN = address(0x6A4D);
    address public constant NODE0 = address(0x40DE0);
    address public constant NODE1 = address(0x40DE1);

    DevToken public immutable token;
    NodeRegistry public immutable nodeRegistry;
    AttributionLedger public immutable ledger;
    RewardDistributor public immutable distributor;
    address[N] public accounts;

    // ---- the model ----
    mapping(uint64 epoch => uint256[N]) private _cumulativeAt;
    mapping(uint64 epoch => bytes32[]) private _treeAt;
    mapping(uint64 epoch => uint256) public ghostTotal;
    mapping(uint64 epoch => uint64) public ghostEnd;
    mapping(uint64 epoch => uint256[2]) private _debitsAt;
    uint64 public ghostLatest;
    uint64 public ghostClaimableAt;
    bool public ghostLatestVetoed;
    mapping(address node => uint256) public ghostDeposited;
    mapping(address node => uint256) public ghostDebited;
    mapping(address node => uint256) public ghostWithdrawn;
    mapping(address account => uint256) public ghostPaid;
    uint256 public ghostDepositedTotal;
    uint256 public ghostPaidTotal;
    uint256 public ghostWithdrawnTotal;
    uint256 public ghostLastPostBlock;

    // ---- outcomes that differ from the model (the invariants assert each stays 0) ----
    uint256 public honestActionReverted; // a proposal, page, seal, veto, release, claim or withdrawal the model allows
    uint256 public inflatedClaimsPaid; // a claim above the tree's amount succeeded
    uint256 public capBroken; // a claim took the total claimed past the claimable total
    uint256 public wrongPayment; // a claim or withdrawal paid another amount than the model
    uint256 public creditWithdrawnWhileStaked; // a node that has not exited got its credit out
    uint256 public lockedCreditWithdrawn; // an exited node got its credit out before its last batch was paid for
    uint256 public lateVetoAccepted; // a veto after the window (or of a vetoed/settled root) succeeded

    // ---- progress: attempts the model expects to succeed, and successes (checked in afterInvariant) ----
    uint256 public proposeTried;
    uint256 public proposes;
    uint256 public vetoTried;
    uint256 public vetoes;
    uint256 public claimTried;
    uint256 public claims;
    uint256 public claimsCapped; // refused because the tree promised more than its total (as the model expected)
    uint256 public withdrawTried;
    uint256 public withdrawals;
    uint256 public dishonestProposals;

    constructor() {
        token = new DevToken("R", "R", address(this));
        nodeRegistry = new NodeRegistry(token, 1, UNBONDING, address(this));
        nodeRegistry.setSlasher(address(this));
        ledger = new AttributionLedger(nodeRegistry);
        distributor = new RewardDistributor(
            token, nodeRegistry, ledger, address(this), address(this), GUARDIAN, address(0x7EA5), WINDOW
        );
        accounts = [address(0xA1), address(0xA2), address(0xA3), address(0xA4)];
        _bondNode0();
    }

    // ---- actions: fee credit ----

    function deposit(bool second, uint256 amount) external {
        amount = 1 + (amount % 1e24);
        address node = second ? NODE1 : NODE0;
        token.mint(address(this), amount);
        token.approve(address(distributor), amount);
        distributor.depositFees(node, amount);
        ghostDeposited[node] += amount;
        ghostDepositedTotal += amount;
    }

    /// @dev Withdraw a node's credit to a fresh recipient. The model allows it only for an exited node whose last
    /// batch a settled epoch covers, and then exactly its unused credit.
    function withdrawCredit(bool second) external {
        address node = second ? NODE1 : NODE0;
        address to = address(uint160(0xC0FFEE00) + (second ? 1 : 0));
        bool exited = nodeRegistry.hasExited(node);
        bool paidFor = second || ghostLastPostBlock <= ghostEnd[_ghostCurrent()];
        uint256 credit = ghostCredit(node);
        bool allowed = exited && paidFor && credit > 0;
        if (allowed) ++withdrawTried;
        uint256 before = token.balanceOf(to);
        vm.prank(node);
        try distributor.withdrawFeeCredit(to) {
            uint256 got = token.balanceOf(to) - before;
            if (!exited) ++creditWithdrawnWhileStaked;
            else if (!paidFor) ++lockedCreditWithdrawn;
            if (got != credit) ++wrongPayment;
            ghostWithdrawn[node] += got;
            ghostWithdrawnTotal += got;
            ++withdrawals;
        } catch {
            if (allowed) ++honestActionReverted;
        }
    }

    // ---- actions: NODE0's life ----

    function post() external {
        if (!nodeRegistry.isActive(NODE0)) return;
        uint64 first = ledger.lastRecordTimestamp(NODE0);
        uint64 seq = ledger.nextSeq(NODE0);
        vm.prank(NODE0);
        ledger.postBatch(seq, 1, first, uint64(block.timestamp), keccak256(abi.encode(seq)), hex"01");
        ghostLastPostBlock = block.number;
        vm.roll(block.number + 1);
    }

    function exit() external {
        uint256 bonded = nodeRegistry.node(NODE0).bonded;
        if (bonded == 0) return;
        vm.prank(NODE0);
        nodeRegistry.requestUnbond(bonded);
    }

    function bondAgain() external {
        if (nodeRegistry.node(NODE0).bonded == 0) _bondNode0();
    }

    function slashToZero() external {
        uint256 bonded = nodeRegistry.node(NODE0).bonded;
        if (bonded != 0) nodeRegistry.slash(NODE0, bonded, address(0xdead));
    }

    // ---- actions: roots ----

    /// @dev Propose the next epoch in two pages (one per node): every account's cumulative amount grows by a bounded
    /// increment, paid by debits from the nodes' credit. `mode` 0 is honest; 1 inflates the leaves beyond the total;
    /// 2 moves each account's past amount to its neighbour.
    function propose(uint96[N] memory increments, uint8 mode, uint96 extra) external {
        if (ghostLatest != 0 && !ghostLatestVetoed && block.timestamp < ghostClaimableAt) return; // window open
        uint64 epoch = ghostLatestVetoed ? ghostLatest : ghostLatest + 1;
        uint64 base = epoch - 1;
        uint256[N] memory cum;
        uint256 added;
        for (uint256 i; i < N; ++i) {
            uint256 inc = increments[i] % 1e22;
            added += inc;
            uint256 past = _cumulativeAt[base][mode % 3 == 2 ? (i + 1) % N : i];
            cum[i] = past + inc + (mode % 3 == 1 ? 1 + (extra % 1e22) : 0);
        }
        uint256 c0 = ghostCredit(NODE0);
        uint256 d0 = added < c0 ? added : c0;
        if (added - d0 > ghostCredit(NODE1)) return; // the nodes cannot pay this
        uint256[2] memory ds = [d0, added - d0];
        bytes32[] memory leaves = new bytes32[](N);
        for (uint256 i; i < N; ++i) {
            leaves[i] = distributor.claimLeaf(accounts[i], cum[i]);
        }
        bytes32[] memory tree = StandardMerkle.build(leaves);
        uint256 total = ghostTotal[base] + added;
        vm.roll(block.number + 1);
        uint64 end = uint64(block.number - 1);
        ++proposeTried;
        try distributor.proposeRoot(epoch, end, tree[0], total, "") {}
        catch {
            ++honestActionReverted;
            return;
        }
        for (uint256 k; k < 2; ++k) {
            try distributor.addDebits(epoch, _one(k == 0 ? NODE0 : NODE1), _one(ds[k])) {}
            catch {
                ++honestActionReverted;
                return;
            }
        }
        try distributor.sealRoot(epoch) {}
        catch {
            ++honestActionReverted;
            return;
        }
        ++proposes;
        if (mode % 3 != 0) ++dishonestProposals;
        ghostDebited[NODE0] += ds[0];
        ghostDebited[NODE1] += ds[1];
        _debitsAt[epoch] = ds;
        _cumulativeAt[epoch] = cum;
        _treeAt[epoch] = tree;
        ghostTotal[epoch] = total;
        ghostEnd[epoch] = end;
        ghostLatest = epoch;
        ghostLatestVetoed = false;
        ghostClaimableAt = uint64(block.timestamp) + WINDOW;
    }

    /// @dev The guardian vetoes the latest root and anyone releases its two pages. A veto the model forbids (no
    /// root, already vetoed, window over) must revert.
    function veto() external {
        uint64 epoch = ghostLatest; // read before the prank: a call in the argument list would use it up
        bool vetoable = epoch != 0 && !ghostLatestVetoed && block.timestamp < ghostClaimableAt;
        if (!vetoable) {
            if (epoch == 0) return;
            vm.prank(GUARDIAN);
            try distributor.vetoRoot(epoch) {
                ++lateVetoAccepted;
            } catch {}
            return;
        }
        ++vetoTried;
        vm.prank(GUARDIAN);
        try distributor.vetoRoot(epoch) {}
        catch {
            ++honestActionReverted;
            return;
        }
        uint256[2] memory ds = _debitsAt[epoch];
        for (uint32 k; k < 2; ++k) {
            try distributor.releaseDebits(epoch, k, _one(k == 0 ? NODE0 : NODE1), _one(ds[k])) {}
            catch {
                ++honestActionReverted;
                return;
            }
        }
        ++vetoes;
        ghostLatestVetoed = true;
        ghostDebited[NODE0] -= ds[0];
        ghostDebited[NODE1] -= ds[1];
    }

    // ---- actions: claims ----

    function claim(uint256 accountSeed, bool viaRelayer) public {
        uint64 epoch = _ghostCurrent();
        if (epoch == 0) return;
        uint256 i = accountSeed % N;
        address acct = accounts[i];
        uint256 amount = _cumulativeAt[epoch][i];
        uint256 already = ghostPaid[acct];
        if (amount <= already) return; // nothing to claim (the contract refuses; not an outcome we count)
        uint256 due = amount - already;
        bool capped = ghostPaidTotal + due > ghostTotal[epoch];
        if (!capped) ++claimTried;
        bytes32[] memory tree = _treeAt[epoch];
        bytes32[] memory proof = StandardMerkle.proof(tree, distributor.claimLeaf(acct, amount));
        uint256 before = token.balanceOf(acct);
        if (viaRelayer) vm.prank(address(0x5E1A7));
        try distributor.claim(acct, amount, tree[0], proof) {
            uint256 got = token.balanceOf(acct) - before;
            if (capped) ++capBroken;
            if (got != due) ++wrongPayment;
            ghostPaid[acct] += got;
            ghostPaidTotal += got;
            ++claims;
        } catch (bytes memory reason) {
            // forge-lint: disable-next-line(unsafe-typecast) -- the first 4 bytes of a revert reason are its selector
            if (capped && bytes4(reason) == IRewardDistributor.DistributorClaimExceedsTotal.selector) ++claimsCapped;
            else ++honestActionReverted;
        }
    }

    /// @dev Every account claims from the current tree (what drains a dishonest tree down to its total).
    function claimAll(bool viaRelayer) external {
        for (uint256 i; i < N; ++i) {
            claim(i, viaRelayer);
        }
    }

    function claimInflated(uint256 accountSeed, uint256 extra) external {
        uint64 epoch = _ghostCurrent();
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
        vm.roll(block.number + 1);
    }

    /// @dev Long jumps, so that exits complete within a run.
    function warpDays(uint8 days_) external {
        vm.warp(block.timestamp + (uint256(days_) % 16) * 1 days);
        vm.roll(block.number + 1);
    }

    // ---- views for the invariants ----

    /// @dev The model's unused credit of `node`.
    function ghostCredit(address node) public view returns (uint256) {
        return ghostDeposited[node] - ghostDebited[node] - ghostWithdrawn[node];
    }

    /// @dev The model's claimable epoch: the latest if sealed, not vetoed and past its window; else the one before.
    function ghostCurrent() external view returns (uint64) {
        return _ghostCurrent();
    }

    function ghostDebitedTotal() external view returns (uint256) {
        return ghostDebited[NODE0] + ghostDebited[NODE1];
    }

    function account(uint256 i) external view returns (address) {
        return accounts[i];
    }

    function _ghostCurrent() private view returns (uint64) {
        if (ghostLatest == 0) return 0;
        if (!ghostLatestVetoed && block.timestamp >= ghostClaimableAt) return ghostLatest;
        return ghostLatest - 1;
    }

    function _bondNode0() private {
        token.mint(NODE0, 1);
        vm.startPrank(NODE0);
        token.approve(address(nodeRegistry), 1);
        nodeRegistry.bond(1);
        vm.stopPrank();
    }

    function _one(address a) private pure returns (address[] memory r) {
        r = new address[](1);
        r[0] = a;
    }

    function _one(uint256 a) private pure returns (uint256[] memory r) {
        r = new uint256[](1);
        r[0] = a;
    }
}
