//! Producer seals (Clique/Bor style): `extra_data` = 32-byte vanity ‖ 65-byte
//! secp256k1 signature over the hash of the header with the signature removed.

use alloy::consensus::Header;
use alloy::signers::{SignerSync, local::PrivateKeySigner};
use alloy_primitives::{Address, B256, Bytes, Signature};

/// Length of the vanity prefix of `extra_data`.
pub const VANITY_LEN: usize = 32;
/// Length of the seal suffix of `extra_data`.
pub const SEAL_LEN: usize = 65;

/// Why a header's seal is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("extra data is {len} bytes, a sealed header needs {} ", VANITY_LEN + SEAL_LEN)]
    BadExtraLength { len: usize },
    #[error("invalid seal signature: {0}")]
    BadSignature(String),
    #[error("signing failed: {0}")]
    Signing(String),
}

/// The hash a producer signs: the header hash with the seal bytes stripped.
pub fn seal_hash(header: &Header) -> Result<B256, SealError> {
    let len = header.extra_data.len();
    let vanity = match header.extra_data.split_at_checked(VANITY_LEN) {
        Some((vanity, seal)) if seal.len() == SEAL_LEN => vanity,
        _ => return Err(SealError::BadExtraLength { len }),
    };
    let mut unsealed = header.clone();
    unsealed.extra_data = Bytes::copy_from_slice(vanity);
    Ok(unsealed.hash_slow())
}

/// Seals `header` in place with `key`. `extra_data` may hold up to 32 vanity bytes
/// before the call; it is padded to 32 and the seal appended.
pub fn seal_header(header: &mut Header, key: &PrivateKeySigner) -> Result<(), SealError> {
    let mut extra = header.extra_data.to_vec();
    extra.resize(VANITY_LEN, 0);
    extra.extend_from_slice(&[0u8; SEAL_LEN]);
    header.extra_data = extra.into();
    let hash = seal_hash(header)?;
    let sig = key
        .sign_hash_sync(&hash)
        .map_err(|e| SealError::Signing(e.to_string()))?;
    let mut extra = header.extra_data.to_vec();
    extra.truncate(VANITY_LEN);
    extra.extend_from_slice(&sig.as_bytes());
    header.extra_data = extra.into();
    Ok(())
}

/// Recovers the producer address that sealed `header`.
pub fn recover_producer(header: &Header) -> Result<Address, SealError> {
    let hash = seal_hash(header)?;
    let raw = header.extra_data.get(VANITY_LEN..).unwrap_or_default();
    let sig = Signature::try_from(raw).map_err(|e| SealError::BadSignature(e.to_string()))?;
    sig.recover_address_from_prehash(&hash)
        .map_err(|e| SealError::BadSignature(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_roundtrip_and_tamper_detection() {
        let key = crate::dev::dev_producer_key(0);
        let mut h = Header {
            number: 7,
            gas_limit: 30_000_000,
            ..Default::default()
        };
        seal_header(&mut h, &key).unwrap();
        assert_eq!(h.extra_data.len(), VANITY_LEN + SEAL_LEN);
        assert_eq!(recover_producer(&h).unwrap(), key.address());
        h.number = 8;
        assert_ne!(recover_producer(&h).unwrap(), key.address());
        h.extra_data = Bytes::from_static(b"short");
        assert!(matches!(
            recover_producer(&h),
            Err(SealError::BadExtraLength { len: 5 })
        ));
    }

    proptest::proptest! {
        /// Any header sealed by any producer key recovers to that producer, and any
        /// change to a sealed field breaks the seal.
        #[test]
        fn seal_roundtrip_for_arbitrary_headers(
            number in proptest::prelude::any::<u64>(),
            gas_limit in proptest::prelude::any::<u64>(),
            timestamp in proptest::prelude::any::<u64>(),
            vanity in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..=32),
            key_index in 0u32..4,
        ) {
            let key = crate::dev::dev_producer_key(key_index);
            let mut h = Header { number, gas_limit, timestamp, extra_data: vanity.clone().into(), ..Default::default() };
            seal_header(&mut h, &key).unwrap();
            proptest::prop_assert_eq!(&h.extra_data[..vanity.len()], &vanity[..]);
            proptest::prop_assert_eq!(recover_producer(&h).unwrap(), key.address());
            h.timestamp = timestamp.wrapping_add(1);
            proptest::prop_assert_ne!(recover_producer(&h).ok(), Some(key.address()));
        }
    }
}
