// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "../utils/Test.sol";
import {DistributorHandler} from "./DistributorHandler.sol";
import {RewardDistributor} from "../../src/RewardDistributor.sol";

/// @notice Distributor invariants: total claimed ≤ total funded, claimed[a] ≤ cumulative[a] of the current root,
/// every payment is accounted for, inflated claims never pay.
contract RewardDistributorInvariantTest is Test {
    DistributorHandler private handler;

    function setUp() public {
        handler = new DistributorHandler();
        targetContract(address(handler));
        bytes4[] memory selectors = new bytes4[](6);
        selectors[0] = DistributorHandler.fund.selector;
        selectors[1] = DistributorHandler.propose.selector;
        selectors[2] = DistributorHandler.veto.selector;
        selectors[3] = DistributorHandler.claim.selector;
        selectors[4] = DistributorHandler.claimInflated.selector;
        selectors[5] = DistributorHandler.warp.selector;
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    function invariant_TotalClaimedLeTotalFunded() public view {
        RewardDistributor d = handler.distributor();
        vm.assertLe(d.totalClaimed(), d.totalFunded(), "claimed more than funded");
        vm.assertEq(d.totalFunded(), handler.ghostFunded(), "funded = what the handler put in");
        vm.assertEq(d.totalClaimed(), handler.ghostPaidTotal(), "every payment accounted");
        vm.assertEq(handler.token().balanceOf(address(d)), d.totalFunded() - d.totalClaimed());
    }

    function invariant_ClaimedLeCumulative() public view {
        RewardDistributor d = handler.distributor();
        uint64 epoch = d.currentEpoch();
        uint256 sum;
        for (uint256 i; i < handler.N(); ++i) {
            address a = handler.account(i);
            vm.assertLe(d.claimed(a), handler.cumulativeAt(epoch, i), "claimed[a] <= cumulative[a]");
            vm.assertEq(d.claimed(a), handler.ghostPaid(a));
            vm.assertEq(handler.token().balanceOf(a), d.claimed(a), "paid to the account, never the relayer");
            sum += d.claimed(a);
        }
        vm.assertEq(sum, d.totalClaimed());
        vm.assertLe(d.totalClaimed(), d.proposal(epoch).total, "claimed <= current root total");
    }

    function invariant_InflatedClaimsNeverPay() public view {
        vm.assertEq(handler.inflatedClaimsPaid(), 0);
    }
}
