// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title Evidence that a block producer sealed two different blocks on one parent.
/// @notice A KOMA block header is an Ethereum execution header (RLP; the block hash is its
/// keccak) and its seal travels beside it: a 65-byte secp256k1 signature (r ‖ s ‖ v,
/// v = 27 or 28, low s) over keccak256("KOMA block seal v1" ‖ chain id as 8 big-endian
/// bytes ‖ block hash) (docs/protocol.md, ADR 0012). Two different headers with the same
/// parent hash, sealed by one key, are two blocks for one slot of one chain: an honest
/// producer builds once on a parent.
library DoubleSeal {
    bytes18 internal constant SEAL_TAG = "KOMA block seal v1";

    error BadHeader();
    error NotADoubleSeal();
    error BadSeal();
    error SealersDiffer(address a, address b);

    /// The sealer of both headers; reverts unless `a` and `b` are two different headers on
    /// the same parent, each validly sealed for chain `chainId` by the same key.
    function sealer(bytes calldata a, bytes calldata sealA, bytes calldata b, bytes calldata sealB, uint256 chainId)
        internal
        pure
        returns (address)
    {
        bytes32 hashA = keccak256(a);
        bytes32 hashB = keccak256(b);
        if (parentOf(a) != parentOf(b) || hashA == hashB) revert NotADoubleSeal();
        address signerA = _recover(sealDigest(chainId, hashA), sealA);
        address signerB = _recover(sealDigest(chainId, hashB), sealB);
        if (signerA != signerB) revert SealersDiffer(signerA, signerB);
        return signerA;
    }

    /// What a producer signs for block `blockHash` of chain `chainId`.
    function sealDigest(uint256 chainId, bytes32 blockHash) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(SEAL_TAG, uint64(chainId), blockHash));
    }

    /// The parent hash of an RLP header: a list of more than 255 and fewer than 65,536
    /// bytes (0xf9 and a 2-byte length) whose first item is a 32-byte string.
    function parentOf(bytes calldata header) internal pure returns (bytes32 parent) {
        if (header.length < 36 || header[0] != 0xf9 || header[3] != 0xa0) revert BadHeader();
        if ((uint256(uint8(header[1])) << 8 | uint8(header[2])) + 3 != header.length) revert BadHeader();
        return bytes32(header[4:36]);
    }

    function _recover(bytes32 digest, bytes calldata seal) private pure returns (address signer) {
        (address recovered, ECDSA.RecoverError error,) = ECDSA.tryRecoverCalldata(digest, seal);
        if (error != ECDSA.RecoverError.NoError || recovered == address(0)) revert BadSeal();
        return recovered;
    }
}
