//! Producer seals, carried beside the header as Ethereum has carried the proposer's
//! signature since the merge (the execution header is unsigned; the beacon block that
//! carries it is signed).
//!
//! The header is a plain Ethereum header: `extra_data` holds at most 32 bytes, so every
//! client's schema accepts it, and the block hash is the hash of that header. The
//! producer signs [`seal_digest`]: `keccak256("KOMA block seal v1" ‖ chain id (8 bytes,
//! big-endian) ‖ block hash)`, a secp256k1 signature of 65 bytes (r ‖ s ‖ v, v = 27 or
//! 28 as `ecrecover` takes it). The domain tag and the chain id keep a seal from being
//! replayed as any other signature of the same key or on another KOMA chain; the digest
//! is one `keccak256(abi.encodePacked(...))` on L1, where seals will serve as slashing
//! evidence. Blocks travel and are stored as [`SignedHeader`] + body.

use alloy::consensus::Header;
use alloy::signers::{SignerSync, local::PrivateKeySigner};
use alloy_primitives::{Address, B256, FixedBytes, Signature};
use alloy_rlp::{RlpDecodable, RlpEncodable};

/// Domain tag of the seal digest.
pub const SEAL_DOMAIN: &[u8] = b"KOMA block seal v1";
/// Length of a seal: r ‖ s ‖ v.
pub const SEAL_LEN: usize = 65;
/// Ethereum's bound on `extra_data` (execution-API schema and yellow paper).
pub const MAX_EXTRA_DATA: usize = 32;

/// A producer's secp256k1 signature over [`seal_digest`].
pub type Seal = FixedBytes<SEAL_LEN>;

/// Why a seal is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("invalid seal signature: {0}")]
    BadSignature(String),
    #[error("signing failed: {0}")]
    Signing(String),
}

/// A header with its producer's seal: what blocks carry on the wire and in storage.
/// It dereferences to the [`Header`], whose hash is the block hash.
#[derive(Debug, Clone, Default, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct SignedHeader {
    pub header: Header,
    /// Zero for the genesis block, which nobody seals.
    pub seal: Seal,
}

impl std::ops::Deref for SignedHeader {
    type Target = Header;

    fn deref(&self) -> &Header {
        &self.header
    }
}

impl SignedHeader {
    /// Signs `header` as `key` on chain `chain_id`.
    pub fn sign(header: Header, chain_id: u64, key: &PrivateKeySigner) -> Result<Self, SealError> {
        let digest = seal_digest(chain_id, header.hash_slow());
        let sig = key
            .sign_hash_sync(&digest)
            .map_err(|e| SealError::Signing(e.to_string()))?;
        Ok(Self {
            header,
            seal: Seal::from(sig.as_bytes()),
        })
    }

    /// The producer that sealed this header of block `hash` (the header's hash, passed
    /// in because callers have it already).
    pub fn recover_producer(&self, chain_id: u64, hash: B256) -> Result<Address, SealError> {
        recover_producer(chain_id, hash, &self.seal)
    }
}

/// What a producer signs for block `hash` on chain `chain_id`.
pub fn seal_digest(chain_id: u64, hash: B256) -> B256 {
    let mut hasher = alloy_primitives::Keccak256::new();
    hasher.update(SEAL_DOMAIN);
    hasher.update(chain_id.to_be_bytes());
    hasher.update(hash);
    hasher.finalize()
}

/// Recovers the address that sealed block `hash` with `seal`.
pub fn recover_producer(chain_id: u64, hash: B256, seal: &Seal) -> Result<Address, SealError> {
    let sig =
        Signature::try_from(seal.as_slice()).map_err(|e| SealError::BadSignature(e.to_string()))?;
    sig.recover_address_from_prehash(&seal_digest(chain_id, hash))
        .map_err(|e| SealError::BadSignature(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::Bytes;

    const CHAIN: u64 = 7_207;

    #[test]
    fn seal_roundtrip_and_tamper_detection() {
        let key = crate::dev::dev_producer_key(0);
        let h = Header {
            number: 7,
            gas_limit: 30_000_000,
            extra_data: Bytes::from_static(b"koma"),
            ..Default::default()
        };
        let signed = SignedHeader::sign(h, CHAIN, &key).unwrap();
        assert_eq!(signed.extra_data.len(), 4, "the seal is not in extra_data");
        let hash = signed.hash_slow();
        assert_eq!(signed.recover_producer(CHAIN, hash).unwrap(), key.address());
        // Another chain, another block: not this producer.
        assert_ne!(
            signed.recover_producer(CHAIN + 1, hash).unwrap(),
            key.address()
        );
        let mut other = signed.header.clone();
        other.number = 8;
        assert_ne!(
            signed.recover_producer(CHAIN, other.hash_slow()).unwrap(),
            key.address()
        );
        // A seal that is not a signature at all.
        let junk = SignedHeader {
            seal: Seal::repeat_byte(0xff),
            ..signed
        };
        assert!(matches!(
            junk.recover_producer(CHAIN, hash),
            Err(SealError::BadSignature(_))
        ));
    }

    #[test]
    fn signed_header_rlp_roundtrip() {
        let key = crate::dev::dev_producer_key(1);
        let signed = SignedHeader::sign(
            Header {
                number: 3,
                ..Default::default()
            },
            CHAIN,
            &key,
        )
        .unwrap();
        let raw = alloy_rlp::encode(&signed);
        let back: SignedHeader = alloy_rlp::Decodable::decode(&mut raw.as_slice()).unwrap();
        assert_eq!(back, signed);
    }

    /// The digest is `keccak256(abi.encodePacked("KOMA block seal v1", uint64(chainId),
    /// blockHash))`; the vector is in tests/vectors/block-seal.json, checked here and by
    /// anything else that verifies seals.
    #[test]
    fn seal_digest_matches_the_vector() {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/vectors/block-seal.json")).unwrap();
        let chain_id = v["chainId"].as_u64().unwrap();
        let hash: B256 = v["blockHash"].as_str().unwrap().parse().unwrap();
        let digest: B256 = v["digest"].as_str().unwrap().parse().unwrap();
        assert_eq!(seal_digest(chain_id, hash), digest);
        let seal: Seal = v["seal"].as_str().unwrap().parse().unwrap();
        let producer: Address = v["producer"].as_str().unwrap().parse().unwrap();
        assert_eq!(recover_producer(chain_id, hash, &seal).unwrap(), producer);
        // Signing is deterministic (RFC 6979) on both sides, so the seal itself matches.
        let key: PrivateKeySigner = v["privateKey"].as_str().unwrap().parse().unwrap();
        let sig = key.sign_hash_sync(&digest).unwrap();
        assert_eq!(Seal::from(sig.as_bytes()), seal);
    }

    /// tests/vectors/double-seal.json (noble): two Prague headers on one parent, sealed by
    /// one key; decoded here they hash and recover as the vector says, so the node's
    /// evidence (these headers re-encoded) is what `RootChain.reportDoubleSeal` accepts.
    #[test]
    fn the_double_seal_vector_decodes_hashes_and_recovers_alike() {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/vectors/double-seal.json")).unwrap();
        let chain_id = v["chainId"].as_u64().unwrap();
        let producer: Address = v["producer"].as_str().unwrap().parse().unwrap();
        let parent: B256 = v["parentHash"].as_str().unwrap().parse().unwrap();
        let key: PrivateKeySigner = v["privateKey"].as_str().unwrap().parse().unwrap();
        let mut hashes = Vec::new();
        for h in v["headers"].as_array().unwrap() {
            let rlp: alloy_primitives::Bytes = h["rlp"].as_str().unwrap().parse().unwrap();
            let header: Header = alloy_rlp::Decodable::decode(&mut rlp.as_ref()).unwrap();
            assert_eq!(
                alloy_rlp::encode(&header),
                rlp.to_vec(),
                "re-encodes to the same bytes"
            );
            let hash: B256 = h["hash"].as_str().unwrap().parse().unwrap();
            assert_eq!(header.hash_slow(), hash);
            assert_eq!(header.parent_hash, parent);
            assert_eq!(header.beneficiary, producer);
            assert_eq!(header.number, v["number"].as_u64().unwrap());
            let digest: B256 = h["digest"].as_str().unwrap().parse().unwrap();
            assert_eq!(seal_digest(chain_id, hash), digest);
            let seal: Seal = h["seal"].as_str().unwrap().parse().unwrap();
            assert_eq!(recover_producer(chain_id, hash, &seal).unwrap(), producer);
            // the node seals the same bytes (RFC 6979)
            let signed = SignedHeader::sign(header, chain_id, &key).unwrap();
            assert_eq!(signed.seal, seal);
            hashes.push(hash);
        }
        assert_ne!(hashes[0], hashes[1], "two different blocks");
    }

    proptest::proptest! {
        /// Any header sealed by any producer key recovers to that producer, and any
        /// change to a hashed field breaks the seal.
        #[test]
        fn seal_roundtrip_for_arbitrary_headers(
            number in proptest::prelude::any::<u64>(),
            gas_limit in proptest::prelude::any::<u64>(),
            timestamp in proptest::prelude::any::<u64>(),
            vanity in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..=32),
            key_index in 0u32..4,
        ) {
            let key = crate::dev::dev_producer_key(key_index);
            let h = Header { number, gas_limit, timestamp, extra_data: vanity.clone().into(), ..Default::default() };
            let signed = SignedHeader::sign(h, CHAIN, &key).unwrap();
            proptest::prop_assert_eq!(&signed.extra_data[..], &vanity[..]);
            proptest::prop_assert_eq!(signed.recover_producer(CHAIN, signed.hash_slow()).unwrap(), key.address());
            let mut changed = signed.header.clone();
            changed.timestamp = timestamp.wrapping_add(1);
            proptest::prop_assert_ne!(signed.recover_producer(CHAIN, changed.hash_slow()).ok(), Some(key.address()));
        }
    }
}
