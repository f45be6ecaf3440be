// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {vm} from "./Vm.sol";

/// Assertions for forge tests: a failed assertion reverts with what was compared, which
/// forge reports as the test's failure.
abstract contract Test {
    function assertTrue(bool condition, string memory what) internal pure {
        if (!condition) revert(string.concat("assertion failed: ", what));
    }

    function assertEq(uint256 left, uint256 right, string memory what) internal pure {
        if (left != right) {
            revert(string.concat(what, ": ", vm.toString(left), " != ", vm.toString(right)));
        }
    }

    function assertEq(bytes32 left, bytes32 right, string memory what) internal pure {
        if (left != right) revert(string.concat(what, ": bytes32 values differ"));
    }

    function assertEq(address left, address right, string memory what) internal pure {
        if (left != right) revert(string.concat(what, ": addresses differ"));
    }

    function assertEq(bytes memory left, bytes memory right, string memory what) internal pure {
        if (keccak256(left) != keccak256(right)) revert(string.concat(what, ": bytes differ"));
    }

    /// `x` mapped into [lo, hi] (for fuzz inputs).
    function bound(uint256 x, uint256 lo, uint256 hi) internal pure returns (uint256) {
        return lo + x % (hi - lo + 1);
    }

    /// The text of a file under the repository's tests/vectors.
    function readVector(string memory name) internal view returns (string memory) {
        return vm.readFile(string.concat(vm.projectRoot(), "/../tests/vectors/", name));
    }
}
