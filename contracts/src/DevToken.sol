// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title DevToken
/// @notice A plain OpenZeppelin ERC-20 (18 decimals) for the devnet, used for node stake and rewards. Its owner
/// (the deployer, or `owner_`) can mint. Not meant for production: use a real token there.
contract DevToken is ERC20, Ownable {
    /// @param name_ Token name.
    /// @param symbol_ Token symbol.
    /// @param owner_ The minter (non-zero, else OZ's `OwnableInvalidOwner(address(0))`).
    constructor(string memory name_, string memory symbol_, address owner_) ERC20(name_, symbol_) Ownable(owner_) {}

    /// @notice Owner only: mint `amount` to `to` (OZ's `ERC20InvalidReceiver(address(0))` for `to == 0`).
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
