//! BLS12-381 signatures in the min_sig variant over `blst`: signatures in G1 (48 bytes
//! compressed), public keys in G2 (96 bytes compressed), with the IETF proof-of-possession
//! ciphersuite ([`SIG_DST`] for checkpoints, [`POP_DST`] for proofs of possession), as
//! `contracts/src/lib/BLS.sol` verifies them on the EIP-2537 precompiles.
//!
//! Three encodings:
//! - compressed ZCash (the IETF / Ethereum consensus form): x only, with flag bits;
//! - uncompressed ZCash: x ‖ y, each Fp 48 bytes, an Fp2 written `c1 ‖ c0`;
//! - EIP-2537 (what the contracts take): x ‖ y, each Fp left-padded with 16 zero bytes to
//!   64, an Fp2 written `c0 ‖ c1` — the opposite order to ZCash.
//!
//! Every parser checks what the precompiles check (length, zero padding, coordinates below
//! p, on the curve, in the subgroup) and also refuses the point at infinity, so a
//! [`PublicKey`] or [`Signature`] always holds a non-zero subgroup point.
//!
//! Keys are trusted to have a proof of possession ([`PublicKey::verify_pop`]); that is what
//! makes verifying an aggregate signature against an aggregate key
//! ([`fast_aggregate_verify`]) safe against rogue keys, and why the contract checks the
//! proof before a key joins the set.

use core::fmt;

use alloy_primitives::{B256, hex};
use blst::{BLST_ERROR, Pairing, blst_p1_affine, blst_p2_affine, min_sig};
use rand::CryptoRng;
use zeroize::Zeroizing;

/// The ciphersuite of checkpoint signatures (hash to G1, proof-of-possession scheme).
pub const SIG_DST: &[u8] = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_";
/// The ciphersuite of proofs of possession.
pub const POP_DST: &[u8] = b"BLS_POP_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_";

/// A secret key: 32 big-endian bytes.
pub const SECRET_KEY_LEN: usize = 32;
/// A public key, compressed ZCash encoding.
pub const PUBLIC_KEY_COMPRESSED_LEN: usize = 96;
/// A public key, uncompressed ZCash encoding.
pub const PUBLIC_KEY_UNCOMPRESSED_LEN: usize = 192;
/// A public key, EIP-2537 encoding.
pub const PUBLIC_KEY_EIP2537_LEN: usize = 256;
/// A signature, compressed ZCash encoding.
pub const SIGNATURE_COMPRESSED_LEN: usize = 48;
/// A signature, uncompressed ZCash encoding.
pub const SIGNATURE_UNCOMPRESSED_LEN: usize = 96;
/// A signature, EIP-2537 encoding.
pub const SIGNATURE_EIP2537_LEN: usize = 128;

/// A base-field element, big-endian.
const FP_LEN: usize = 48;
/// The zero bytes in front of a base-field element in EIP-2537.
const FP_PADDING: usize = 16;
/// The base-field modulus p, big-endian.
const P: [u8; FP_LEN] = hex!(
    "1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab"
);
/// Where each EIP-2537 field element of a G1 point sits in the ZCash encoding.
const G1_ORDER: [usize; 2] = [0, 1];
/// Where each EIP-2537 field element of a G2 point (x.c0, x.c1, y.c0, y.c1) sits in the
/// ZCash encoding (x.c1, x.c0, y.c1, y.c0). The swap is its own inverse.
const G2_ORDER: [usize; 4] = [1, 0, 3, 2];

/// The ZCash infinity flag (in the first byte of every encoding).
const INFINITY_FLAG: u8 = 0x40;

/// What a BLS value is, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointKind {
    /// A public key (G2).
    PublicKey,
    /// A signature (G1).
    Signature,
}

impl fmt::Display for PointKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PublicKey => "public key",
            Self::Signature => "signature",
        })
    }
}

/// Why bytes are not a valid key or signature, or a BLS operation has no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlsError {
    /// The input has the wrong length for its encoding.
    #[error("a {kind} in this encoding is {expected} bytes, got {got}")]
    BadLength {
        /// What was parsed.
        kind: PointKind,
        /// The length of the encoding.
        expected: usize,
        /// The input's length.
        got: usize,
    },
    /// An EIP-2537 field element does not start with 16 zero bytes.
    #[error("the {kind}'s field element at byte {offset} has nonzero padding")]
    NonZeroPadding {
        /// What was parsed.
        kind: PointKind,
        /// Offset of the 64-byte element in the input.
        offset: usize,
    },
    /// A field element is not below the modulus p.
    #[error("the {kind}'s field element at byte {offset} is not below the field modulus")]
    NonCanonical {
        /// What was parsed.
        kind: PointKind,
        /// Offset of the 64-byte element in the input.
        offset: usize,
    },
    /// The point at infinity: no secret key signs or verifies with it.
    #[error("the point at infinity is not a valid {kind}")]
    Infinity {
        /// What was parsed or computed.
        kind: PointKind,
    },
    /// The coordinates are not a point of the curve (or of its twist, for keys).
    #[error("the {kind} is not a point on the curve")]
    NotOnCurve {
        /// What was parsed.
        kind: PointKind,
    },
    /// A curve point outside the prime-order subgroup.
    #[error("the {kind} is not in the prime-order subgroup")]
    NotInSubgroup {
        /// What was parsed.
        kind: PointKind,
    },
    /// Flag bits or coordinates that no valid encoding has.
    #[error("the {kind} is not a valid encoding ({reason:?})")]
    BadEncoding {
        /// What was parsed.
        kind: PointKind,
        /// blst's verdict.
        reason: BLST_ERROR,
    },
    /// A secret key must be in `[1, r)`.
    #[error("a secret key must be a nonzero integer below the group order")]
    InvalidSecretKey,
    /// Key generation needs at least 32 bytes of key material.
    #[error("key material must be at least 32 bytes, got {0}")]
    ShortKeyMaterial(usize),
    /// There was nothing to aggregate.
    #[error("nothing to aggregate")]
    EmptyAggregate,
}

impl BlsError {
    fn from_blst(kind: PointKind, err: BLST_ERROR) -> Self {
        match err {
            BLST_ERROR::BLST_POINT_NOT_ON_CURVE => Self::NotOnCurve { kind },
            BLST_ERROR::BLST_POINT_NOT_IN_GROUP => Self::NotInSubgroup { kind },
            BLST_ERROR::BLST_PK_IS_INFINITY => Self::Infinity { kind },
            reason => Self::BadEncoding { kind, reason },
        }
    }
}

/// A BLS secret key, a scalar in `[1, r)`. Zeroized on drop; `Debug` does not print it.
pub struct SecretKey(min_sig::SecretKey);

impl SecretKey {
    /// The key with these 32 big-endian bytes; refused unless in `[1, r)`.
    pub fn from_bytes(bytes: &[u8; SECRET_KEY_LEN]) -> Result<Self, BlsError> {
        min_sig::SecretKey::from_bytes(bytes)
            .map(Self)
            .map_err(|_| BlsError::InvalidSecretKey)
    }

    /// Derives a key from at least 32 bytes of secret key material with the IETF
    /// `KeyGen` (HKDF-SHA-256, salt `BLS-SIG-KEYGEN-SALT-`, as blst and Ethereum's consensus
    /// clients implement it).
    pub fn key_gen(ikm: &[u8]) -> Result<Self, BlsError> {
        min_sig::SecretKey::key_gen(ikm, &[])
            .map(Self)
            .map_err(|_| BlsError::ShortKeyMaterial(ikm.len()))
    }

    /// A fresh key from 32 bytes of `rng`.
    pub fn random<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        loop {
            let mut ikm = Zeroizing::new([0u8; 32]);
            rng.fill_bytes(ikm.as_mut_slice());
            // key_gen refuses short key material only, so this returns the first time.
            if let Ok(key) = Self::key_gen(ikm.as_slice()) {
                return key;
            }
        }
    }

    /// The 32 big-endian bytes, wiped when dropped.
    pub fn to_bytes(&self) -> Zeroizing<[u8; SECRET_KEY_LEN]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public key, `sk · g2`.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.sk_to_pk())
    }

    /// Signs a 32-byte message (a checkpoint digest) under [`SIG_DST`].
    pub fn sign(&self, message: &B256) -> Signature {
        Signature(self.0.sign(message.as_slice(), SIG_DST, &[]))
    }

    /// Signs a proof-of-possession message ([`pop_message`](crate::format::pop_message)) under [`POP_DST`].
    pub fn sign_pop(&self, pop_message: &B256) -> Signature {
        Signature(self.0.sign(pop_message.as_slice(), POP_DST, &[]))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// A BLS public key: a G2 point of the prime-order subgroup, never the point at infinity.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(min_sig::PublicKey);

impl PublicKey {
    /// Parses the 96-byte compressed ZCash encoding.
    pub fn from_compressed(bytes: &[u8]) -> Result<Self, BlsError> {
        let kind = PointKind::PublicKey;
        check_len(kind, bytes, PUBLIC_KEY_COMPRESSED_LEN)?;
        min_sig::PublicKey::uncompress(bytes)
            .map_err(|err| BlsError::from_blst(kind, err))
            .and_then(Self::checked)
    }

    /// Parses the 192-byte uncompressed ZCash encoding.
    pub fn from_uncompressed(bytes: &[u8]) -> Result<Self, BlsError> {
        let kind = PointKind::PublicKey;
        check_len(kind, bytes, PUBLIC_KEY_UNCOMPRESSED_LEN)?;
        min_sig::PublicKey::deserialize(bytes)
            .map_err(|err| BlsError::from_blst(kind, err))
            .and_then(Self::checked)
    }

    /// Parses the 256-byte EIP-2537 encoding, with the checks of the G2 precompiles.
    pub fn from_eip2537(bytes: &[u8]) -> Result<Self, BlsError> {
        let kind = PointKind::PublicKey;
        let zcash: [u8; PUBLIC_KEY_UNCOMPRESSED_LEN] = eip2537_to_zcash(kind, bytes, &G2_ORDER)?;
        min_sig::PublicKey::deserialize(&zcash)
            .map_err(|err| BlsError::from_blst(kind, err))
            .and_then(Self::checked)
    }

    /// The 96-byte compressed ZCash encoding.
    pub fn to_compressed(&self) -> [u8; PUBLIC_KEY_COMPRESSED_LEN] {
        self.0.compress()
    }

    /// The 192-byte uncompressed ZCash encoding.
    pub fn to_uncompressed(&self) -> [u8; PUBLIC_KEY_UNCOMPRESSED_LEN] {
        self.0.serialize()
    }

    /// The 256-byte EIP-2537 encoding the contracts take.
    pub fn to_eip2537(&self) -> [u8; PUBLIC_KEY_EIP2537_LEN] {
        zcash_to_eip2537(&self.0.serialize(), &G2_ORDER)
    }

    /// The sum of `keys`: the key that verifies the sum of their signatures over one
    /// message. Refused when empty, or if the keys cancel out.
    pub fn aggregate<'a>(keys: impl IntoIterator<Item = &'a Self>) -> Result<Self, BlsError> {
        let keys: Vec<&min_sig::PublicKey> = keys.into_iter().map(|key| &key.0).collect();
        let sum = min_sig::AggregatePublicKey::aggregate(&keys, false)
            .map_err(|_| BlsError::EmptyAggregate)?;
        let key = sum.to_public_key();
        if key == min_sig::PublicKey::default() {
            return Err(BlsError::Infinity {
                kind: PointKind::PublicKey,
            });
        }
        Ok(Self(key))
    }

    /// True if `signature` is this key's signature over `message` under [`SIG_DST`].
    pub fn verify(&self, message: &B256, signature: &Signature) -> bool {
        core_verify(self, message, signature, SIG_DST)
    }

    /// True if `pop` is this key's proof of possession over `pop_message` (see
    /// `format::pop_message`), under [`POP_DST`].
    pub fn verify_pop(&self, pop_message: &B256, pop: &Signature) -> bool {
        core_verify(self, pop_message, pop, POP_DST)
    }

    fn checked(key: min_sig::PublicKey) -> Result<Self, BlsError> {
        key.validate()
            .map_err(|err| BlsError::from_blst(PointKind::PublicKey, err))?;
        Ok(Self(key))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublicKey({})",
            hex::encode_prefixed(self.to_compressed())
        )
    }
}

/// A BLS signature: a G1 point of the prime-order subgroup, never the point at infinity.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(min_sig::Signature);

impl Signature {
    /// Parses the 48-byte compressed ZCash encoding.
    pub fn from_compressed(bytes: &[u8]) -> Result<Self, BlsError> {
        let kind = PointKind::Signature;
        check_len(kind, bytes, SIGNATURE_COMPRESSED_LEN)?;
        min_sig::Signature::uncompress(bytes)
            .map_err(|err| BlsError::from_blst(kind, err))
            .and_then(Self::checked)
    }

    /// Parses the 96-byte uncompressed ZCash encoding.
    pub fn from_uncompressed(bytes: &[u8]) -> Result<Self, BlsError> {
        let kind = PointKind::Signature;
        check_len(kind, bytes, SIGNATURE_UNCOMPRESSED_LEN)?;
        min_sig::Signature::deserialize(bytes)
            .map_err(|err| BlsError::from_blst(kind, err))
            .and_then(Self::checked)
    }

    /// Parses the 128-byte EIP-2537 encoding, with the checks of the G1 precompiles.
    pub fn from_eip2537(bytes: &[u8]) -> Result<Self, BlsError> {
        let kind = PointKind::Signature;
        let zcash: [u8; SIGNATURE_UNCOMPRESSED_LEN] = eip2537_to_zcash(kind, bytes, &G1_ORDER)?;
        min_sig::Signature::deserialize(&zcash)
            .map_err(|err| BlsError::from_blst(kind, err))
            .and_then(Self::checked)
    }

    /// The 48-byte compressed ZCash encoding.
    pub fn to_compressed(&self) -> [u8; SIGNATURE_COMPRESSED_LEN] {
        self.0.compress()
    }

    /// The 96-byte uncompressed ZCash encoding.
    pub fn to_uncompressed(&self) -> [u8; SIGNATURE_UNCOMPRESSED_LEN] {
        self.0.serialize()
    }

    /// The 128-byte EIP-2537 encoding the contracts take.
    pub fn to_eip2537(&self) -> [u8; SIGNATURE_EIP2537_LEN] {
        zcash_to_eip2537(&self.0.serialize(), &G1_ORDER)
    }

    fn checked(signature: min_sig::Signature) -> Result<Self, BlsError> {
        signature
            .validate(true)
            .map_err(|err| BlsError::from_blst(PointKind::Signature, err))?;
        Ok(Self(signature))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Signature({})",
            hex::encode_prefixed(self.to_compressed())
        )
    }
}

/// The sum of `signatures`: with signatures of several keys over one message, a signature
/// of their aggregate key ([`PublicKey::aggregate`]). Refused when empty, or if the
/// signatures cancel out.
pub fn aggregate_signatures<'a>(
    signatures: impl IntoIterator<Item = &'a Signature>,
) -> Result<Signature, BlsError> {
    let signatures: Vec<&min_sig::Signature> = signatures
        .into_iter()
        .map(|signature| &signature.0)
        .collect();
    let sum = min_sig::AggregateSignature::aggregate(&signatures, false)
        .map_err(|_| BlsError::EmptyAggregate)?;
    let signature = sum.to_signature();
    if signature
        .serialize()
        .first()
        .is_some_and(|flags| flags & INFINITY_FLAG != 0)
    {
        return Err(BlsError::Infinity {
            kind: PointKind::Signature,
        });
    }
    Ok(Signature(signature))
}

/// True if `signature` aggregates the signatures of every key in `keys` over `message`
/// under [`SIG_DST`] (the IETF `FastAggregateVerify`; every key must have a verified proof
/// of possession). False for no keys.
pub fn fast_aggregate_verify(message: &B256, signature: &Signature, keys: &[PublicKey]) -> bool {
    PublicKey::aggregate(keys).is_ok_and(|key| key.verify(message, signature))
}

/// `e(signature, g2) == e(H(message), key)` with one two-pair pairing, on this thread.
fn core_verify(key: &PublicKey, message: &B256, signature: &Signature, dst: &[u8]) -> bool {
    let key: &blst_p2_affine = (&key.0).into();
    let signature: &blst_p1_affine = (&signature.0).into();
    let mut pairing = Pairing::new(true, dst);
    // Both points were checked (subgroup, not infinity) when they were made.
    if pairing.aggregate(key, false, signature, false, message.as_slice(), &[])
        != BLST_ERROR::BLST_SUCCESS
    {
        return false;
    }
    pairing.commit();
    pairing.finalverify(None)
}

fn check_len(kind: PointKind, bytes: &[u8], expected: usize) -> Result<(), BlsError> {
    if bytes.len() == expected {
        Ok(())
    } else {
        Err(BlsError::BadLength {
            kind,
            expected,
            got: bytes.len(),
        })
    }
}

/// Turns an EIP-2537 point into the uncompressed ZCash encoding blst reads (`N` bytes),
/// refusing nonzero padding, coordinates not below p and the point at infinity. ZCash
/// element `order[i]` is EIP-2537 element `i`.
fn eip2537_to_zcash<const N: usize>(
    kind: PointKind,
    bytes: &[u8],
    order: &[usize],
) -> Result<[u8; N], BlsError> {
    let (elements, rest) = bytes.as_chunks::<{ FP_PADDING + FP_LEN }>();
    if !rest.is_empty() || elements.len() != order.len() || N != order.len().saturating_mul(FP_LEN)
    {
        return Err(BlsError::BadLength {
            kind,
            expected: order.len().saturating_mul(FP_PADDING + FP_LEN),
            got: bytes.len(),
        });
    }
    let mut zcash = [0u8; N];
    let (slots, _) = zcash.as_chunks_mut::<FP_LEN>();
    for (i, (element, &target)) in elements.iter().zip(order).enumerate() {
        let offset = i.saturating_mul(FP_PADDING + FP_LEN);
        let (padding, fp) = element.split_at(FP_PADDING);
        if padding.iter().any(|&b| b != 0) {
            return Err(BlsError::NonZeroPadding { kind, offset });
        }
        // Below p, the top three bits are clear, so blst reads no flags from them.
        if fp >= P.as_slice() {
            return Err(BlsError::NonCanonical { kind, offset });
        }
        if let Some(slot) = slots.get_mut(target) {
            slot.copy_from_slice(fp);
        }
    }
    // Uncompressed and without flags, all zeros would read as (0, 0), which is not on
    // the curve; EIP-2537 means infinity by it, and no key or signature is infinity.
    if zcash.iter().all(|&b| b == 0) {
        return Err(BlsError::Infinity { kind });
    }
    Ok(zcash)
}

/// Turns an uncompressed ZCash point into its EIP-2537 encoding (`N` bytes): EIP-2537
/// element `i` is ZCash element `order[i]`; infinity is all zeros.
fn zcash_to_eip2537<const N: usize>(zcash: &[u8], order: &[usize]) -> [u8; N] {
    let mut out = [0u8; N];
    if zcash
        .first()
        .is_some_and(|flags| flags & INFINITY_FLAG != 0)
    {
        return out;
    }
    let (elements, _) = zcash.as_chunks::<FP_LEN>();
    let (slots, _) = out.as_chunks_mut::<{ FP_PADDING + FP_LEN }>();
    for (slot, &source) in slots.iter_mut().zip(order) {
        if let (Some(element), Some(target)) = (elements.get(source), slot.get_mut(FP_PADDING..)) {
            target.copy_from_slice(element);
        }
    }
    out
}

#[cfg(test)]
mod tests;
