// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

/// @title BLS12-381 min_sig verification on the EIP-2537 precompiles.
/// @notice Signatures are G1 points (128 bytes), public keys G2 points (256 bytes), both in
/// the EIP-2537 encoding: every base-field element left-padded to 64 bytes, and an Fp2
/// element written c0 first, then c1. Messages are hashed to G1 with RFC 9380's
/// `hash_to_curve` (expand_message_xmd with SHA-256, SSWU through the MAP_FP_TO_G1
/// precompile). See docs/checkpoints.md for the encodings and the checks.
/// @dev Every precompile call forwards a bounded amount of gas: a precompile that rejects
/// its input burns all the gas it was given, so an unbounded call would let a malformed
/// key or signature cost the caller its whole gas limit instead of a cheap revert.
library BLS {
    /// The IETF proof-of-possession ciphersuite for signatures in G1.
    bytes internal constant SIG_DST = "BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_";
    /// The ciphersuite's DST for proofs of possession.
    bytes internal constant POP_DST = "BLS_POP_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_";

    uint256 internal constant G1_LENGTH = 128;
    uint256 internal constant G2_LENGTH = 256;

    // Precompile addresses: SHA-256 0x02 and MODEXP 0x05; EIP-2537's G1ADD 0x0b, G2ADD 0x0d,
    // PAIRING_CHECK 0x0f and MAP_FP_TO_G1 0x10 (assembly uses the numbers).
    address private constant G1_ADD = address(0x0b);
    address private constant G2_ADD = address(0x0d);

    // Gas forwarded to each precompile: the EIP-2537 price with headroom for future repricing.
    uint256 private constant G1_ADD_GAS = 2_000;
    uint256 private constant G2_ADD_GAS = 3_000;
    uint256 private constant MAP_GAS = 20_000;
    uint256 private constant MODEXP_GAS = 5_000;
    uint256 private constant PAIRING_2_GAS = 200_000;

    // p's 48 bytes as a 32-byte word and a 16-byte one (left-aligned), for MODEXP inputs.
    uint256 private constant P_TOP = 0x1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f624;
    uint256 private constant P_BOTTOM = 0x1eabfffeb153ffffb9feffffffffaaab00000000000000000000000000000000;
    // p as the two 32-byte words of its 64-byte EIP-2537 encoding.
    uint256 private constant P_HI = 0x1a0111ea397fe69a4b1ba7b6434bacd7;
    uint256 private constant P_LO = 0x64774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab;

    /// The negated G2 generator, -g2, in EIP-2537 encoding.
    bytes internal constant NEG_G2 = hex"00000000000000000000000000000000024aa2b2f08f0a91260805272dc51051c6e47ad4fa403b02b4510b647ae3d1770bac0326a805bbefd48056c8c121bdb8"
        hex"0000000000000000000000000000000013e02b6052719f607dacd3a088274f65596bd0d09920b61ab5da61bbdc7f5049334cf11213945d57e5ac7d055d042b7e"
        hex"000000000000000000000000000000000d1b3cc2c7027888be51d9ef691d77bcb679afda66c73f17f9ee3837a55024f78c71363275a75d75d86bab79f74782aa"
        hex"0000000000000000000000000000000013fa4d4a0ad8b1ce186ed5061789213d993923066dddaf1040bc3ff59f825c78df74f2d75467e25e0f55f8a00fa030ed";

    /// A precompile refused its input: a point not on the curve or outside the subgroup, a
    /// coordinate not below p, or nonzero padding.
    error MalformedPoint();
    /// A domain separation tag longer than RFC 9380 allows.
    error DstTooLong(uint256 length);
    /// A point has the wrong encoded length.
    error BadPointLength(uint256 length, uint256 expected);

    /// RFC 9380 `hash_to_curve` onto G1 of the 32-byte `message` under `dst` (at most 255
    /// bytes), in EIP-2537 encoding.
    /// @dev expand_message_xmd with SHA-256 gives 128 uniform bytes b1‖b2‖b3‖b4; u0 = b1‖b2
    /// mod p and u1 = b3‖b4 mod p (MODEXP with exponent 1); each is mapped to the curve
    /// (MAP_FP_TO_G1 also clears the cofactor, which is linear, so the sum of the two maps
    /// is the hash). Written in assembly over scratch memory past the free pointer: the
    /// Solidity version with a fresh buffer per step cost about 5,600 more gas.
    function hashToG1(bytes32 message, bytes memory dst) internal view returns (bytes memory out) {
        uint256 dstLength = dst.length;
        if (dstLength > 255) revert DstTooLong(dstLength);
        out = new bytes(G1_LENGTH);
        bool ok;
        assembly ("memory-safe") {
            let m := mload(0x40) // scratch, not allocated
            let dstData := add(dst, 32)
            // b0 = H(Z_pad ‖ msg ‖ I2OSP(128, 2) ‖ I2OSP(0, 1) ‖ DST ‖ I2OSP(len(DST), 1))
            mstore(m, 0)
            mstore(add(m, 32), 0)
            mstore(add(m, 64), message)
            mstore(add(m, 96), shl(232, 0x008000))
            mcopy(add(m, 99), dstData, dstLength)
            mstore8(add(m, add(99, dstLength)), dstLength)
            ok := staticcall(gas(), 0x02, m, add(100, dstLength), m, 32)
            let b0 := mload(m)

            // Two MODEXP inputs (base length 64, exponent length 1, modulus length 48,
            // base, exponent 1, p); b1, b2 land in the first one's base, b3, b4 in the second's.
            function modexpInput(a) {
                mstore(a, 64)
                mstore(add(a, 32), 1)
                mstore(add(a, 64), 48)
                mstore8(add(a, 160), 1)
                mstore(add(a, 161), P_TOP)
                mstore(add(a, 193), P_BOTTOM)
            }
            // regions: b0's input (at most 355 bytes) at m, b_i's input (at most 289) at
            // m + 384, the MODEXP inputs (209 each) at x and y, the field elements at f, the
            // two mapped points at g
            let x := add(m, 704)
            let y := add(m, 928)
            modexpInput(x)
            modexpInput(y)

            // b_i = H((b0 xor b_(i-1)) ‖ I2OSP(i, 1) ‖ DST ‖ I2OSP(len(DST), 1)), b_0 xor 0 = b0
            let s := add(m, 384)
            mcopy(add(s, 33), dstData, dstLength)
            mstore8(add(s, add(33, dstLength)), dstLength)
            let sLength := add(34, dstLength)
            let previous := 0
            for { let i := 1 } lt(i, 5) { i := add(i, 1) } {
                mstore(s, xor(b0, previous))
                mstore8(add(s, 32), i)
                let dest := add(add(x, 96), mul(32, sub(i, 1))) // i = 1, 2
                if gt(i, 2) { dest := add(add(y, 96), mul(32, sub(i, 3))) } // i = 3, 4
                ok := and(ok, staticcall(gas(), 0x02, s, sLength, dest, 32))
                previous := mload(dest)
            }

            // u0, u1 as 64-byte field elements (16 zero bytes, then 48), mapped to G1, added
            let f := add(m, 1152)
            mstore(f, 0)
            mstore(add(f, 64), 0)
            ok := and(ok, staticcall(MODEXP_GAS, 0x05, x, 209, add(f, 16), 48))
            ok := and(ok, staticcall(MODEXP_GAS, 0x05, y, 209, add(f, 80), 48))
            let g := add(m, 1280)
            ok := and(ok, staticcall(MAP_GAS, 0x10, f, 64, g, 128))
            ok := and(ok, staticcall(MAP_GAS, 0x10, add(f, 64), 64, add(g, 128), 128))
            ok := and(ok, staticcall(G1_ADD_GAS, 0x0b, g, 256, add(out, 32), 128))
        }
        if (!ok) revert MalformedPoint();
    }

    /// p1 + p2 in G1 (no subgroup check: the pairing does that).
    function g1Add(bytes memory p1, bytes memory p2) internal view returns (bytes memory) {
        return _call(G1_ADD, G1_ADD_GAS, abi.encodePacked(p1, p2), G1_LENGTH);
    }

    /// p1 + p2 in G2 (no subgroup check: the pairing does that).
    function g2Add(bytes memory p1, bytes memory p2) internal view returns (bytes memory) {
        return _call(G2_ADD, G2_ADD_GAS, abi.encodePacked(p1, p2), G2_LENGTH);
    }

    /// -p in G2: both Fp limbs of y replaced by p - y. The point at infinity (all zero)
    /// stays as it is.
    function g2Negate(bytes memory point) internal pure returns (bytes memory out) {
        if (point.length != G2_LENGTH) revert BadPointLength(point.length, G2_LENGTH);
        out = bytes.concat(point);
        if (isZero(point)) return out;
        assembly ("memory-safe") {
            // y.c0 at bytes 128..192 and y.c1 at 192..256 of the data
            for { let off := 160 } lt(off, 288) { off := add(off, 64) } {
                let hi := mload(add(out, off))
                let lo := mload(add(out, add(off, 32)))
                let borrow := gt(lo, P_LO)
                mstore(add(out, add(off, 32)), sub(P_LO, lo))
                mstore(add(out, off), sub(sub(P_HI, hi), borrow))
            }
        }
    }

    /// True when every byte of `data` is zero (the EIP-2537 encoding of infinity).
    function isZero(bytes memory data) internal pure returns (bool zero) {
        zero = true;
        assembly ("memory-safe") {
            let end := add(add(data, 32), mload(data))
            for { let ptr := add(data, 32) } lt(ptr, end) { ptr := add(ptr, 32) } {
                if mload(ptr) {
                    zero := 0
                    break
                }
            }
        }
    }

    /// Checks e(signature, -g2) · e(messagePoint, publicKey) == 1, which holds exactly when
    /// `signature` = sk · `messagePoint` for the secret key of `publicKey`. The pairing
    /// checks that every input lies in its subgroup.
    /// @return valid false if the equation does not hold
    function pairingCheck(bytes memory signature, bytes memory messagePoint, bytes memory publicKey)
        internal
        view
        returns (bool valid)
    {
        if (signature.length != G1_LENGTH) revert BadPointLength(signature.length, G1_LENGTH);
        if (publicKey.length != G2_LENGTH) revert BadPointLength(publicKey.length, G2_LENGTH);
        if (messagePoint.length != G1_LENGTH) revert BadPointLength(messagePoint.length, G1_LENGTH);
        bytes memory negG2 = NEG_G2;
        bool ok;
        assembly ("memory-safe") {
            let m := mload(0x40) // scratch: sig ‖ -g2 ‖ H(m) ‖ pk
            mcopy(m, add(signature, 32), 128)
            mcopy(add(m, 128), add(negG2, 32), 256)
            mcopy(add(m, 384), add(messagePoint, 32), 128)
            mcopy(add(m, 512), add(publicKey, 32), 256)
            ok := staticcall(PAIRING_2_GAS, 0x0f, m, 768, m, 32)
            ok := and(ok, eq(returndatasize(), 32))
            valid := eq(mload(m), 1)
        }
        if (!ok) revert MalformedPoint();
    }

    /// Verifies a min_sig signature over a 32-byte message under `dst`.
    function verify(bytes memory signature, bytes32 message, bytes memory publicKey, bytes memory dst)
        internal
        view
        returns (bool)
    {
        return pairingCheck(signature, hashToG1(message, dst), publicKey);
    }

    /// Calls a precompile with at most `gasCap` gas; reverts with MalformedPoint if it
    /// refuses the input or answers with an unexpected length.
    function _call(address precompile, uint256 gasCap, bytes memory input, uint256 outLength)
        private
        view
        returns (bytes memory out)
    {
        bool ok;
        (ok, out) = precompile.staticcall{gas: gasCap}(input);
        if (!ok || out.length != outLength) revert MalformedPoint();
    }
}
