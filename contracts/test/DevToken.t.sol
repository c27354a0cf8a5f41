// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

import {Fixture} from "./utils/Fixture.sol";
import {DevToken} from "../src/DevToken.sol";

contract DevTokenTest is Fixture {
    function test_Mint_ByOwner() public {
        token.mint(alice, 5e18);
        vm.assertEq(token.balanceOf(alice), 5e18);
        vm.assertEq(token.totalSupply(), 5e18);
        vm.assertEq(token.decimals(), 18);
        vm.assertEq(token.symbol(), "DEV");
    }

    function test_RevertWhen_MintNotOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        vm.prank(alice);
        token.mint(alice, 1);
    }

    function test_RevertWhen_MintToZeroAddress() public {
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InvalidReceiver.selector, address(0)));
        token.mint(address(0), 1);
    }

    function test_RevertWhen_ConstructorZeroOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableInvalidOwner.selector, address(0)));
        new DevToken("D", "D", address(0));
    }
}
