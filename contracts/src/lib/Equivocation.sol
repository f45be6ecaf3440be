// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title KoMaBFT equivocation evidence: two different units signed by one staker with the
/// same era instance, creator index and sequence number.
/// @notice A unit's canonical encoding (what its hash and signature cover) begins
/// `"koma-unit-v1"` (12 bytes) ‖ instance id (32) ‖ creator index (uint32 BE) ‖ seq (uint64
/// BE), followed by fields the evidence does not need. The unit hash is keccak256 of the
/// whole encoding; the signature is a 65-byte secp256k1 signature (r ‖ s ‖ v, v 27 or 28)
/// over that hash, with no prefix. The instance id of era `e` is
/// keccak256("koma-era" ‖ chain ‖ uint64 e BE ‖ keyBlock), where `chain` names the L2.
/// docs/staking.md describes the evidence; tests/vectors/equivocation.json holds an example
/// both the node and these contracts check.
library Equivocation {
    bytes12 internal constant UNIT_TAG = "koma-unit-v1";
    bytes8 internal constant ERA_TAG = "koma-era";
    /// Tag, instance id, creator and sequence number: the fields both units must share.
    uint256 internal constant HEADER_LENGTH = 56;

    error NotAUnit(uint256 length);
    error NotAnEquivocation();
    error BadUnitSignature();
    error SignersDiffer(address a, address b);

    /// The signer of both units and their instance id; reverts unless `a` and `b` are two
    /// different units with the same instance, creator and sequence number, validly signed
    /// by the same key (low-s signatures only).
    function verify(bytes calldata a, bytes calldata sigA, bytes calldata b, bytes calldata sigB)
        internal
        pure
        returns (address signer, bytes32 instance)
    {
        _checkUnit(a);
        _checkUnit(b);
        if (keccak256(a[12:HEADER_LENGTH]) != keccak256(b[12:HEADER_LENGTH])) revert NotAnEquivocation();
        bytes32 hashA = keccak256(a);
        bytes32 hashB = keccak256(b);
        if (hashA == hashB) revert NotAnEquivocation();
        address signerA = _recover(hashA, sigA);
        address signerB = _recover(hashB, sigB);
        if (signerA != signerB) revert SignersDiffer(signerA, signerB);
        return (signerA, bytes32(a[12:44]));
    }

    /// The instance id of era `era` of the chain `chain` whose key block is `keyBlock`.
    function instanceId(bytes32 chain, uint64 era, bytes32 keyBlock) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(ERA_TAG, chain, era, keyBlock));
    }

    function _checkUnit(bytes calldata unit) private pure {
        if (unit.length < HEADER_LENGTH || bytes12(unit[:12]) != UNIT_TAG) revert NotAUnit(unit.length);
    }

    function _recover(bytes32 hash, bytes calldata signature) private pure returns (address signer) {
        (address recovered, ECDSA.RecoverError error,) = ECDSA.tryRecoverCalldata(hash, signature);
        if (error != ECDSA.RecoverError.NoError || recovered == address(0)) revert BadUnitSignature();
        return recovered;
    }
}
