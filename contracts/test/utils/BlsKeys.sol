// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {BLS} from "../../src/lib/BLS.sol";

/// Test-side BLS: keys and signatures computed with the EIP-2537 multiplication
/// precompiles (pk = sk·g2, sig = sk·H(m)), so tests can make as many stakers as they
/// like. The shared vectors check hash-to-curve and the encodings independently.
library BlsKeys {
    bytes internal constant G2 =
        hex"00000000000000000000000000000000024aa2b2f08f0a91260805272dc51051c6e47ad4fa403b02b4510b647ae3d1770bac0326a805bbefd48056c8c121bdb8"
        hex"0000000000000000000000000000000013e02b6052719f607dacd3a088274f65596bd0d09920b61ab5da61bbdc7f5049334cf11213945d57e5ac7d055d042b7e"
        hex"000000000000000000000000000000000ce5d527727d6e118cc9cdc6da2e351aadfd9baa8cbdd3a76d429a695160d12c923ac9cc3baca289e193548608b82801"
        hex"000000000000000000000000000000000606c4a02ea734cc32acd2b02bc28b99cb3e287e85a763af267492ab572e99ab3f370d275cec1da1aaa9075ff05f79be";
    /// The order r of the groups.
    uint256 internal constant R = 0x73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001;

    /// A valid secret key (in [1, r)) derived from `seed`.
    function secretKey(uint256 seed) internal pure returns (uint256) {
        return uint256(keccak256(abi.encode("koma-test-sk", seed))) % (R - 1) + 1;
    }

    function publicKey(uint256 sk) internal view returns (bytes memory) {
        (bool ok, bytes memory out) = address(0x0e).staticcall(abi.encodePacked(G2, sk));
        require(ok && out.length == 256, "G2MSM failed");
        return out;
    }

    function sign(uint256 sk, bytes32 message, bytes memory dst) internal view returns (bytes memory) {
        (bool ok, bytes memory out) = address(0x0c).staticcall(abi.encodePacked(BLS.hashToG1(message, dst), sk));
        require(ok && out.length == 128, "G1MSM failed");
        return out;
    }

    function aggregateSignatures(bytes[] memory signatures) internal view returns (bytes memory sum) {
        sum = new bytes(128);
        for (uint256 i; i < signatures.length; ++i) {
            if (signatures[i].length != 0) sum = BLS.g1Add(sum, signatures[i]);
        }
    }

    function aggregateKeys(bytes[] memory keys) internal view returns (bytes memory sum) {
        sum = new bytes(256);
        for (uint256 i; i < keys.length; ++i) {
            if (keys[i].length != 0) sum = BLS.g2Add(sum, keys[i]);
        }
    }
}
