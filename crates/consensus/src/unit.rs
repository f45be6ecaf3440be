//! Units (the vertices of the DAG), their signatures, and equivocation evidence.

use crate::types::{Timestamp, ValidatorIndex};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::{Address, B256, Bytes, Signature, keccak256};
use serde::{Deserialize, Serialize};

/// What a unit says it has seen of one validator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Observation {
    /// Nothing.
    None,
    /// Its latest unit (and, through it, its whole swimlane).
    Correct(B256),
    /// Proof that it equivocated.
    Faulty,
}

impl Observation {
    pub fn correct(&self) -> Option<B256> {
        match self {
            Self::Correct(h) => Some(*h),
            _ => None,
        }
    }
}

/// A unit as created and signed by its creator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    pub instance_id: B256,
    pub creator: ValidatorIndex,
    /// 0 for the creator's first unit, then its previous unit's plus one.
    pub seq: u64,
    pub timestamp: Timestamp,
    pub round_exp: u8,
    /// One entry per validator; the creator's own entry is its previous unit.
    pub panorama: Vec<Observation>,
    /// The proposed consensus value (a milestone): only in a round leader's proposal.
    pub value: Option<B256>,
}

impl Unit {
    /// The canonical encoding the hash and signature cover.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.panorama.len().saturating_mul(33).saturating_add(80));
        out.extend_from_slice(UNIT_TAG);
        out.extend_from_slice(self.instance_id.as_slice());
        out.extend_from_slice(&self.creator.to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.push(self.round_exp);
        match &self.value {
            Some(v) => {
                out.push(1);
                out.extend_from_slice(v.as_slice());
            }
            None => out.push(0),
        }
        out.extend_from_slice(
            &u64::try_from(self.panorama.len())
                .unwrap_or(u64::MAX)
                .to_be_bytes(),
        );
        for obs in &self.panorama {
            match obs {
                Observation::None => out.push(0),
                Observation::Correct(h) => {
                    out.push(1);
                    out.extend_from_slice(h.as_slice());
                }
                Observation::Faulty => out.push(2),
            }
        }
        out
    }

    pub fn hash(&self) -> B256 {
        keccak256(self.encode())
    }
}

/// Why bytes from the network are not a unit or evidence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated at byte {0}")]
    Truncated(usize),
    #[error("not a KOMA unit (bad tag)")]
    BadTag,
    #[error("invalid {what} byte {byte}")]
    BadByte { what: &'static str, byte: u8 },
    #[error("panorama of {0} entries is larger than allowed")]
    TooLarge(u64),
    #[error("signature of {0} bytes")]
    BadSignatureLength(usize),
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

const UNIT_TAG: &[u8] = b"koma-unit-v1";
/// The most validators a unit may list (a sanity bound on decoding, far above any era).
pub const MAX_VALIDATORS: u64 = 4096;
const MAX_SIGNATURE: usize = 256;

/// Reads the canonical encoding.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(DecodeError::Truncated(self.pos))?;
        let out = self
            .bytes
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated(self.pos))?;
        self.pos = end;
        Ok(out)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    fn b256(&mut self) -> Result<B256, DecodeError> {
        Ok(B256::from(self.array::<32>()?))
    }
    fn rest(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }
}

impl Unit {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if r.take(UNIT_TAG.len())? != UNIT_TAG {
            return Err(DecodeError::BadTag);
        }
        let instance_id = r.b256()?;
        let creator = u32::from_be_bytes(r.array()?);
        let seq = r.u64()?;
        let timestamp = r.u64()?;
        let round_exp = r.byte()?;
        let value = match r.byte()? {
            0 => None,
            1 => Some(r.b256()?),
            byte => {
                return Err(DecodeError::BadByte {
                    what: "value",
                    byte,
                });
            }
        };
        let n = r.u64()?;
        if n > MAX_VALIDATORS {
            return Err(DecodeError::TooLarge(n));
        }
        let mut panorama = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
        for _ in 0..n {
            panorama.push(match r.byte()? {
                0 => Observation::None,
                1 => Observation::Correct(r.b256()?),
                2 => Observation::Faulty,
                byte => {
                    return Err(DecodeError::BadByte {
                        what: "observation",
                        byte,
                    });
                }
            });
        }
        Ok(Self {
            instance_id,
            creator,
            seq,
            timestamp,
            round_exp,
            panorama,
            value,
        })
    }
}

/// A unit with its creator's signature over its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedUnit {
    pub unit: Unit,
    pub signature: Bytes,
}

impl SignedUnit {
    pub fn hash(&self) -> B256 {
        self.unit.hash()
    }

    /// The wire and storage encoding: the canonical unit encoding (what the hash
    /// covers), then the signature with a one-byte length.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.unit.encode();
        self.write_signature(&mut out);
        out
    }

    fn write_signature(&self, out: &mut Vec<u8>) {
        let sig = self
            .signature
            .get(..MAX_SIGNATURE)
            .unwrap_or(&self.signature);
        out.push(u8::try_from(sig.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(sig);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let unit = Unit::read(r)?;
        let len = usize::from(r.byte()?);
        if len == 0 {
            return Err(DecodeError::BadSignatureLength(len));
        }
        let signature = Bytes::copy_from_slice(r.take(len)?);
        Ok(Self { unit, signature })
    }

    /// Decodes [`SignedUnit::to_bytes`]; anything malformed is an error, never a panic.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader { bytes, pos: 0 };
        let unit = Self::read(&mut r)?;
        match r.rest() {
            0 => Ok(unit),
            n => Err(DecodeError::Trailing(n)),
        }
    }
}

/// Self-contained proof that a validator equivocated: two different units with the
/// same creator, instance and sequence number, both validly signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub a: SignedUnit,
    pub b: SignedUnit,
}

impl Evidence {
    pub fn creator(&self) -> ValidatorIndex {
        self.a.unit.creator
    }

    /// Both units, each in [`SignedUnit::to_bytes`] form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.a.to_bytes();
        out.extend_from_slice(&self.b.to_bytes());
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader { bytes, pos: 0 };
        let a = SignedUnit::read(&mut r)?;
        let b = SignedUnit::read(&mut r)?;
        match r.rest() {
            0 => Ok(Self { a, b }),
            n => Err(DecodeError::Trailing(n)),
        }
    }

    /// Checks the proof on its own (nothing else needed).
    pub fn verify(&self, key: &Address, instance_id: &B256, verifier: &dyn UnitVerifier) -> bool {
        let (a, b) = (&self.a.unit, &self.b.unit);
        a.creator == b.creator
            && a.seq == b.seq
            && a.instance_id == *instance_id
            && b.instance_id == *instance_id
            && a != b
            && verifier.verify(key, &a.hash(), &self.a.signature)
            && verifier.verify(key, &b.hash(), &self.b.signature)
    }
}

/// Signs this node's units.
pub trait UnitSigner: Send + Sync {
    fn address(&self) -> Address;
    fn sign(&self, hash: &B256) -> Bytes;
}

/// Checks a unit signature against the creator's key.
pub trait UnitVerifier: Send + Sync {
    fn verify(&self, key: &Address, hash: &B256, signature: &[u8]) -> bool;
}

/// secp256k1 staker keys: 65-byte recoverable signatures over the unit hash; a
/// signature is valid if it recovers to the creator's address.
#[derive(Clone, Debug, Default)]
pub struct Secp256k1Verifier;

impl UnitVerifier for Secp256k1Verifier {
    fn verify(&self, key: &Address, hash: &B256, signature: &[u8]) -> bool {
        Signature::try_from(signature)
            .ok()
            .and_then(|sig| sig.recover_address_from_prehash(hash).ok())
            .is_some_and(|a| a == *key)
    }
}

impl UnitSigner for PrivateKeySigner {
    fn address(&self) -> Address {
        alloy::signers::Signer::address(self)
    }
    fn sign(&self, hash: &B256) -> Bytes {
        // Signing a 32-byte prehash with a valid key does not fail; an empty signature
        // would only make the unit invalid for everyone, never unsafe.
        self.sign_hash_sync(hash)
            .map(|s| Bytes::from(s.as_bytes().to_vec()))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(seq: u64) -> Unit {
        Unit {
            instance_id: B256::repeat_byte(1),
            creator: 0,
            seq,
            timestamp: 1000,
            round_exp: 0,
            panorama: vec![
                Observation::None,
                Observation::Correct(B256::repeat_byte(2)),
            ],
            value: None,
        }
    }

    #[test]
    fn secp256k1_signatures_verify_and_evidence_is_self_contained() {
        let key = PrivateKeySigner::random();
        let addr = UnitSigner::address(&key);
        let a = unit(3);
        let mut b = unit(3);
        b.timestamp += 1;
        let signed = |u: Unit| SignedUnit {
            signature: UnitSigner::sign(&key, &u.hash()),
            unit: u,
        };
        let (sa, sb) = (signed(a.clone()), signed(b));
        let v = Secp256k1Verifier;
        assert!(v.verify(&addr, &a.hash(), &sa.signature));
        assert!(!v.verify(&Address::ZERO, &a.hash(), &sa.signature));
        assert!(!v.verify(&addr, &a.hash(), &[0u8; 65]));
        assert!(!v.verify(&addr, &a.hash(), &[]));
        let ev = Evidence {
            a: sa.clone(),
            b: sb,
        };
        assert!(ev.verify(&addr, &B256::repeat_byte(1), &v));
        assert!(!ev.verify(&addr, &B256::repeat_byte(7), &v));
        let same = Evidence {
            a: sa.clone(),
            b: sa,
        };
        assert!(!same.verify(&addr, &B256::repeat_byte(1), &v));
    }

    #[test]
    fn wire_encoding_round_trips_and_rejects_garbage() {
        let key = PrivateKeySigner::random();
        let mut u = unit(7);
        u.value = Some(B256::repeat_byte(3));
        u.panorama.push(Observation::Faulty);
        let su = SignedUnit {
            signature: UnitSigner::sign(&key, &u.hash()),
            unit: u,
        };
        let bytes = su.to_bytes();
        assert_eq!(SignedUnit::from_bytes(&bytes), Ok(su.clone()));
        // Every truncation fails cleanly; so do trailing bytes and bad tags.
        for cut in 0..bytes.len() {
            assert!(SignedUnit::from_bytes(&bytes[..cut]).is_err(), "cut {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(SignedUnit::from_bytes(&long), Err(DecodeError::Trailing(1)));
        let mut bad = bytes;
        bad[0] ^= 1;
        assert_eq!(SignedUnit::from_bytes(&bad), Err(DecodeError::BadTag));
        let ev = Evidence {
            a: su.clone(),
            b: su,
        };
        assert_eq!(Evidence::from_bytes(&ev.to_bytes()), Ok(ev));
        // A huge claimed panorama is refused before anything is allocated.
        let mut huge = UNIT_TAG.to_vec();
        huge.extend_from_slice(&[0u8; 32 + 4 + 8 + 8 + 1 + 1]);
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(
            SignedUnit::from_bytes(&huge),
            Err(DecodeError::TooLarge(u64::MAX))
        );
    }

    #[test]
    fn the_hash_covers_every_field() {
        let base = unit(1);
        let mut variants = vec![base.clone()];
        let mut v = base.clone();
        v.seq = 2;
        variants.push(v);
        let mut v = base.clone();
        v.value = Some(B256::ZERO);
        variants.push(v);
        let mut v = base.clone();
        v.panorama[0] = Observation::Faulty;
        variants.push(v);
        let mut v = base;
        v.round_exp = 1;
        variants.push(v);
        let hashes: std::collections::HashSet<_> = variants.iter().map(Unit::hash).collect();
        assert_eq!(hashes.len(), variants.len());
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn arb_unit() -> impl Strategy<Value = SignedUnit> {
        (
            any::<[u8; 32]>(),
            any::<u32>(),
            any::<u64>(),
            any::<u64>(),
            any::<u8>(),
            proptest::option::of(any::<[u8; 32]>()),
            proptest::collection::vec((0u8..3, any::<[u8; 32]>()), 0..40),
            proptest::collection::vec(any::<u8>(), 1..=255),
        )
            .prop_map(
                |(inst, creator, seq, ts, exp, value, pano, sig)| SignedUnit {
                    unit: Unit {
                        instance_id: B256::from(inst),
                        creator,
                        seq,
                        timestamp: ts,
                        round_exp: exp,
                        panorama: pano
                            .into_iter()
                            .map(|(k, h)| match k {
                                0 => Observation::None,
                                1 => Observation::Correct(B256::from(h)),
                                _ => Observation::Faulty,
                            })
                            .collect(),
                        value: value.map(B256::from),
                    },
                    signature: Bytes::from(sig),
                },
            )
    }

    proptest! {
        #[test]
        fn units_and_evidence_round_trip(a in arb_unit(), b in arb_unit()) {
            prop_assert_eq!(SignedUnit::from_bytes(&a.to_bytes()), Ok(a.clone()));
            let ev = Evidence { a, b };
            prop_assert_eq!(Evidence::from_bytes(&ev.to_bytes()), Ok(ev));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = SignedUnit::from_bytes(&bytes);
            let _ = Evidence::from_bytes(&bytes);
        }

        #[test]
        fn mutated_encodings_never_panic(u in arb_unit(), at in any::<usize>(), byte in any::<u8>()) {
            let mut bytes = u.to_bytes();
            let i = at % bytes.len();
            bytes[i] = byte;
            if let Ok(decoded) = SignedUnit::from_bytes(&bytes) {
                // Whatever decodes re-encodes to the same bytes: the encoding is canonical.
                prop_assert_eq!(decoded.to_bytes(), bytes);
            }
        }
    }
}
