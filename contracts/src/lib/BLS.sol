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

    // EIP-2537 and pre-Prague precompile addresses.
    address private constant SHA256 = address(0x02);
    address private constant MODEXP = address(0x05);
    address private constant G1_ADD = address(0x0b);
    address private constant G2_ADD = address(0x0d);
    address private constant PAIRING = address(0x0f);
    address private constant MAP_FP_TO_G1 = address(0x10);

    // Gas forwarded to each precompile: the EIP-2537 price with headroom for future repricing.
    uint256 private constant G1_ADD_GAS = 2_000;
    uint256 private constant G2_ADD_GAS = 3_000;
    uint256 private constant MAP_GAS = 20_000;
    uint256 private constant MODEXP_GAS = 5_000;
    uint256 private constant PAIRING_2_GAS = 200_000;

    /// The base-field modulus p, 48 bytes big-endian.
    bytes private constant P =
        hex"1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab";
    // p as the two 32-byte words of its 64-byte EIP-2537 encoding.
    uint256 private constant P_HI = 0x1a0111ea397fe69a4b1ba7b6434bacd7;
    uint256 private constant P_LO = 0x64774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab;

    /// The negated G2 generator, -g2, in EIP-2537 encoding.
    bytes internal constant NEG_G2 =
        hex"00000000000000000000000000000000024aa2b2f08f0a91260805272dc51051c6e47ad4fa403b02b4510b647ae3d1770bac0326a805bbefd48056c8c121bdb8"
        hex"0000000000000000000000000000000013e02b6052719f607dacd3a088274f65596bd0d09920b61ab5da61bbdc7f5049334cf11213945d57e5ac7d055d042b7e"
        hex"000000000000000000000000000000000d1b3cc2c7027888be51d9ef691d77bcb679afda66c73f17f9ee3837a55024f78c71363275a75d75d86bab79f74782aa"
        hex"0000000000000000000000000000000013fa4d4a0ad8b1ce186ed5061789213d993923066dddaf1040bc3ff59f825c78df74f2d75467e25e0f55f8a00fa030ed";

    /// A precompile refused its input: a point not on the curve or outside the subgroup, a
    /// coordinate not below p, or nonzero padding.
    error MalformedPoint();
    /// A point has the wrong encoded length.
    error BadPointLength(uint256 length, uint256 expected);

    /// RFC 9380 `hash_to_curve` onto G1 of the 32-byte `message` under `dst` (at most 255
    /// bytes), in EIP-2537 encoding.
    function hashToG1(bytes32 message, bytes memory dst) internal view returns (bytes memory) {
        // expand_message_xmd(message, dst, 128): four SHA-256 blocks b1..b4.
        bytes memory dstPrime = abi.encodePacked(dst, uint8(dst.length));
        // Z_pad (64 zero bytes) ‖ msg ‖ I2OSP(128, 2) ‖ I2OSP(0, 1) ‖ DST_prime
        bytes32 b0 = _sha256(abi.encodePacked(bytes32(0), bytes32(0), message, uint16(128), uint8(0), dstPrime));
        bytes32 b1 = _sha256(abi.encodePacked(b0, uint8(1), dstPrime));
        bytes32 b2 = _sha256(abi.encodePacked(b0 ^ b1, uint8(2), dstPrime));
        bytes32 b3 = _sha256(abi.encodePacked(b0 ^ b2, uint8(3), dstPrime));
        bytes32 b4 = _sha256(abi.encodePacked(b0 ^ b3, uint8(4), dstPrime));
        // Two field elements u0 = b1‖b2 mod p, u1 = b3‖b4 mod p, each mapped to the curve
        // (the precompile also clears the cofactor, which is linear, so the sum is right).
        bytes memory q0 = _mapToG1(_reduce(b1, b2));
        bytes memory q1 = _mapToG1(_reduce(b3, b4));
        return g1Add(q0, q1);
    }

    /// p1 + p2 in G1 (no subgroup check: the pairing does that).
    function g1Add(bytes memory p1, bytes memory p2) internal view returns (bytes memory) {
        return _call(G1_ADD, G1_ADD_GAS, abi.encodePacked(p1, p2), G1_LENGTH);
    }

    /// p1 + p2 in G2 (no subgroup check: the pairing does that).
    function g2Add(bytes memory p1, bytes memory p2) internal view returns (bytes memory) {
        return _call(G2_ADD, G2_ADD_GAS, abi.encodePacked(p1, p2), G2_LENGTH);
    }

    /// Adds the G2 point kept as the code of `keyContract` (at code offset 1, see
    /// StakeManager) to the accumulator in the first 256 bytes of `buffer` (512 bytes long).
    function accumulateFromCode(bytes memory buffer, address keyContract) internal view {
        bool ok;
        assembly ("memory-safe") {
            let data := add(buffer, 32)
            extcodecopy(keyContract, add(data, 256), 1, 256)
            ok := staticcall(G2_ADD_GAS, 0x0d, data, 512, data, 256) // 0x0d: G2_ADD
        }
        if (!ok) revert MalformedPoint();
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
        bytes memory result = _call(PAIRING, PAIRING_2_GAS, abi.encodePacked(signature, NEG_G2, messagePoint, publicKey), 32);
        valid = uint256(bytes32(result)) == 1;
    }

    /// Verifies a min_sig signature over a 32-byte message under `dst`.
    function verify(bytes memory signature, bytes32 message, bytes memory publicKey, bytes memory dst)
        internal
        view
        returns (bool)
    {
        return pairingCheck(signature, hashToG1(message, dst), publicKey);
    }

    /// The 64-byte big-endian number hi‖lo reduced mod p, as a 64-byte EIP-2537 Fp element.
    function _reduce(bytes32 hi, bytes32 lo) private view returns (bytes memory fp) {
        // MODEXP(base = hi‖lo, exponent = 1, modulus = p) = hi‖lo mod p, 48 bytes.
        bytes memory reduced =
            _call(MODEXP, MODEXP_GAS, abi.encodePacked(uint256(64), uint256(1), uint256(48), hi, lo, uint8(1), P), 48);
        fp = abi.encodePacked(bytes16(0), reduced);
    }

    function _mapToG1(bytes memory fp) private view returns (bytes memory) {
        return _call(MAP_FP_TO_G1, MAP_GAS, fp, G1_LENGTH);
    }

    function _sha256(bytes memory data) private view returns (bytes32 digest) {
        bytes memory out = _call(SHA256, gasleft(), data, 32);
        digest = bytes32(out);
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
