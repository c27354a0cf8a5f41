// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title console
/// @notice The two `console.log` overloads these tests use; forge prints them (with -vv) by selector.
library console {
    address private constant CONSOLE = 0x000000000000000000636F6e736F6c652e6c6f67;

    function log(string memory label, uint256 value) internal view {
        _send(abi.encodeWithSignature("log(string,uint256)", label, value));
    }

    function log(string memory message) internal view {
        _send(abi.encodeWithSignature("log(string)", message));
    }

    function _send(bytes memory payload) private view {
        // staticcall: forge intercepts the console address; on a real chain this is a no-op call to an empty account.
        (bool ok,) = CONSOLE.staticcall(payload);
        ok;
    }
}
