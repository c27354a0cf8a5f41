// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "../utils/Test.sol";
import {DistributorHandler} from "./DistributorHandler.sol";
import {RewardDistributor} from "../../src/RewardDistributor.sol";

/// @notice Distributor invariants (DESIGN.md invariants 5 and 6), under honest and dishonest trees:
/// total claimed ≤ claimable root's total ≤ Σ debits ≤ Σ deposits; every token is accounted for; inflated claims
/// never pay; a staked node never gets its credit out.
contract RewardDistributorInvariantTest is Test {
    DistributorHandler private handler;

    function setUp() public {
        handler = new DistributorHandler();
        targetContract(address(handler));
        bytes4[] memory selectors = new bytes4[](8);
        selectors[0] = DistributorHandler.deposit.selector;
        selectors[1] = DistributorHandler.propose.selector;
        selectors[2] = DistributorHandler.veto.selector;
        selectors[3] = DistributorHandler.claim.selector;
        selectors[4] = DistributorHandler.claimInflated.selector;
        selectors[5] = DistributorHandler.withdrawCredit.selector;
        selectors[6] = DistributorHandler.warp.selector;
        selectors[7] = DistributorHandler.claimAll.selector;
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    function invariant_ClaimedLeClaimableTotalLeDebitsLeDeposits() public view {
        RewardDistributor d = handler.distributor();
        uint256 claimable = d.proposal(d.currentEpoch()).total;
        vm.assertLe(d.totalClaimed(), claimable, "total claimed <= claimable root's total");
        vm.assertLe(claimable, d.totalDebited(), "claimable total <= sum of debits");
        vm.assertLe(d.totalDebited(), d.totalDeposited(), "sum of debits <= sum of deposits");
        vm.assertEq(d.totalDeposited(), handler.ghostDeposited(), "deposits = what the handler put in");
    }

    function invariant_EveryTokenAccounted() public view {
        RewardDistributor d = handler.distributor();
        uint256 credit = d.feeCredit(handler.NODE0()) + d.feeCredit(handler.NODE1());
        vm.assertEq(
            credit + d.totalDebited() + handler.ghostWithdrawn(), d.totalDeposited(), "credit + debits + out = in"
        );
        vm.assertEq(
            handler.token().balanceOf(address(d)),
            d.totalDeposited() - handler.ghostWithdrawn() - d.totalClaimed(),
            "balance = deposits - withdrawals - claims"
        );
    }

    function invariant_ClaimsPaidToAccountsOnly() public view {
        RewardDistributor d = handler.distributor();
        uint256 sum;
        for (uint256 i; i < handler.N(); ++i) {
            address a = handler.account(i);
            vm.assertEq(d.claimed(a), handler.ghostPaid(a));
            vm.assertEq(handler.token().balanceOf(a), d.claimed(a), "paid to the account, never the relayer");
            sum += d.claimed(a);
        }
        vm.assertEq(sum, d.totalClaimed());
        vm.assertEq(d.totalClaimed(), handler.ghostPaidTotal(), "every payment accounted");
    }

    function invariant_InflatedClaimsNeverPay() public view {
        vm.assertEq(handler.inflatedClaimsPaid(), 0);
    }

    function invariant_StakedNodeKeepsCredit() public view {
        vm.assertEq(handler.creditWithdrawnWhileStaked(), 0);
    }
}
