// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {vm} from "./Vm.sol";

/// KoMaBFT units for tests: the canonical encoding of a proposal and a signature by a
/// test key.
library Units {
    function instanceId(bytes32 chain, uint64 era, bytes32 keyBlock) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked("koma-era", chain, era, keyBlock));
    }

    /// A proposal of `value` whose panorama cites a unit of each of `validators` validators.
    function encode(bytes32 instance, uint32 creator, uint64 seq, uint64 timestamp, bytes32 value, uint256 validators)
        internal
        pure
        returns (bytes memory unit)
    {
        unit = abi.encodePacked(
            "koma-unit-v1", instance, creator, seq, timestamp, uint8(4), uint8(1), value, uint64(validators)
        );
        for (uint256 i; i < validators; ++i) {
            unit = bytes.concat(unit, bytes1(0x01), keccak256(abi.encode("unit", i, seq)));
        }
    }

    function sign(uint256 key, bytes memory unit) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, keccak256(unit));
        return abi.encodePacked(r, s, v);
    }
}
