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
        let mut out = Vec::with_capacity(64 + self.panorama.len() * 33);
        out.extend_from_slice(b"koma-unit-v1");
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
        out.extend_from_slice(&(self.panorama.len() as u64).to_be_bytes());
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
