//! The sync request-response protocol `/koma/<chain_id>/sync/1` (CBOR on the wire).
//!
//! Payloads are opaque RLP bytes (headers or blocks as the storage layer encodes them), so
//! this crate does not depend on storage. Counts are bounded by [`MAX_SYNC_ITEMS`]; the
//! service answers an out-of-range request with [`SyncResponse::Error`] without bothering the
//! node, and trims a response to the configured byte limit (the requester then asks for the
//! rest).

use alloy_primitives::{B256, U256};
use serde::{Deserialize, Serialize};

/// Most headers or blocks one request may ask for.
pub const MAX_SYNC_ITEMS: u64 = 1024;
/// Largest encoded request accepted (a few dozen bytes, or up to [`MAX_SYNC_ITEMS`]
/// unit hashes).
pub const MAX_REQUEST_BYTES: u64 = 64 * 1024;
/// Per-item framing overhead assumed when fitting a response into the byte limit
/// (CBOR byte-string header plus slack).
const ITEM_OVERHEAD: usize = 16;
/// Envelope overhead of a response (enum tag and array header).
const RESPONSE_OVERHEAD: usize = 64;

/// A request of the sync protocol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// Headers `start..start + count` of the canonical chain.
    HeadersByRange { start: u64, count: u64 },
    /// Blocks `start..start + count` of the canonical chain.
    BlocksByRange { start: u64, count: u64 },
    /// One block by its hash.
    BlockByHash(B256),
    /// The peer's canonical head.
    Status,
    /// Consensus units by hash (answered with those the peer has).
    Units(Vec<B256>),
    /// The latest consensus unit of every validator of an era instance (a node that
    /// fell behind catches up from these).
    LatestUnits(B256),
}

/// A node's canonical head, as it answers [`SyncRequest::Status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainStatus {
    pub number: u64,
    pub hash: B256,
    /// Total difficulty of the head: fork choice picks the heaviest chain.
    pub total_difficulty: U256,
}

impl SyncRequest {
    /// The most items a correct answer may hold.
    pub fn max_items(&self) -> u64 {
        match self {
            Self::HeadersByRange { count, .. } | Self::BlocksByRange { count, .. } => *count,
            Self::BlockByHash(_) => 1,
            Self::Status => 0,
            Self::Units(hashes) => hashes.len() as u64,
            Self::LatestUnits(_) => MAX_SYNC_ITEMS,
        }
    }

    /// Checks the bounds every server enforces.
    pub fn validate(&self) -> Result<(), SyncError> {
        match self {
            Self::HeadersByRange { count, .. } | Self::BlocksByRange { count, .. } => {
                if *count == 0 {
                    Err(SyncError::ZeroCount)
                } else if *count > MAX_SYNC_ITEMS {
                    Err(SyncError::CountTooLarge {
                        count: *count,
                        max: MAX_SYNC_ITEMS,
                    })
                } else {
                    Ok(())
                }
            }
            Self::Units(hashes) if hashes.len() as u64 > MAX_SYNC_ITEMS => {
                Err(SyncError::CountTooLarge {
                    count: hashes.len() as u64,
                    max: MAX_SYNC_ITEMS,
                })
            }
            Self::BlockByHash(_) | Self::Status | Self::Units(_) | Self::LatestUnits(_) => Ok(()),
        }
    }
}

/// A response of the sync protocol. Items are RLP-encoded, in ascending block order; a
/// response may hold fewer items than asked for (end of chain, or the byte limit).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    /// Answer to [`SyncRequest::HeadersByRange`].
    Headers(#[serde(with = "bytes_list")] Vec<Vec<u8>>),
    /// Answer to [`SyncRequest::BlocksByRange`] and [`SyncRequest::BlockByHash`]
    /// (empty when the hash is unknown).
    Blocks(#[serde(with = "bytes_list")] Vec<Vec<u8>>),
    /// Answer to [`SyncRequest::Status`].
    Status(ChainStatus),
    /// Answer to [`SyncRequest::Units`]: the encoded units the peer has.
    Units(#[serde(with = "bytes_list")] Vec<Vec<u8>>),
    /// The request was refused.
    Error(SyncError),
}

impl SyncResponse {
    /// Whether this is the right kind of answer for `request` with an allowed item count.
    pub fn check_matches(&self, request: &SyncRequest) -> Result<(), &'static str> {
        let items = match (request, self) {
            (_, Self::Error(_)) | (SyncRequest::Status, Self::Status(_)) => return Ok(()),
            (SyncRequest::HeadersByRange { .. }, Self::Headers(items))
            | (
                SyncRequest::BlocksByRange { .. } | SyncRequest::BlockByHash(_),
                Self::Blocks(items),
            )
            | (SyncRequest::Units(_) | SyncRequest::LatestUnits(_), Self::Units(items)) => items,
            _ => return Err("response kind does not match the request"),
        };
        if u64::try_from(items.len()).map_or(true, |n| n > request.max_items()) {
            return Err("more items than requested");
        }
        Ok(())
    }

    /// Drops trailing items until the response fits in `max_bytes` once encoded.
    pub(crate) fn truncate_to(self, max_bytes: usize) -> Self {
        let trim = |mut items: Vec<Vec<u8>>| {
            let mut total = RESPONSE_OVERHEAD;
            let mut keep = 0usize;
            for item in &items {
                total = total
                    .saturating_add(item.len())
                    .saturating_add(ITEM_OVERHEAD);
                if total > max_bytes {
                    break;
                }
                keep = keep.saturating_add(1);
            }
            items.truncate(keep);
            items
        };
        match self {
            Self::Headers(items) => Self::Headers(trim(items)),
            Self::Blocks(items) => Self::Blocks(trim(items)),
            Self::Units(items) => Self::Units(trim(items)),
            other @ (Self::Error(_) | Self::Status(_)) => other,
        }
    }
}

/// Why a server refused a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum SyncError {
    #[error("requested {count} items, at most {max} allowed")]
    CountTooLarge { count: u64, max: u64 },
    #[error("requested zero items")]
    ZeroCount,
    #[error("the server cannot answer now (busy or still syncing)")]
    Unavailable,
    #[error("server error: {0}")]
    Server(String),
}

/// Serializes `Vec<Vec<u8>>` as a sequence of byte strings rather than of integers, which
/// CBOR would spend up to two bytes per byte on.
mod bytes_list {
    use std::fmt;

    use serde::{
        Deserializer, Serializer,
        de::{self, SeqAccess, Visitor},
    };

    struct AsBytes<'a>(&'a [u8]);

    impl serde::Serialize for AsBytes<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_bytes(self.0)
        }
    }

    pub(super) fn serialize<S: Serializer>(
        items: &[Vec<u8>],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(items.iter().map(|item| AsBytes(item)))
    }

    struct ByteBuf(Vec<u8>);

    impl<'de> serde::Deserialize<'de> for ByteBuf {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct BytesVisitor;
            impl<'de> Visitor<'de> for BytesVisitor {
                type Value = ByteBuf;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a byte string")
                }
                fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<ByteBuf, E> {
                    Ok(ByteBuf(v.to_vec()))
                }
                fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
                    Ok(ByteBuf(v))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ByteBuf, A::Error> {
                    let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                    while let Some(b) = seq.next_element::<u8>()? {
                        out.push(b);
                    }
                    Ok(ByteBuf(out))
                }
            }
            deserializer.deserialize_byte_buf(BytesVisitor)
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Vec<u8>>, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = Vec<Vec<u8>>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence of byte strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                // The size hint comes from the peer: cap the preallocation.
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                while let Some(ByteBuf(item)) = seq.next_element::<ByteBuf>()? {
                    out.push(item);
                }
                Ok(out)
            }
        }
        deserializer.deserialize_seq(ListVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_bounds_counts() {
        assert!(
            SyncRequest::BlocksByRange {
                start: 0,
                count: MAX_SYNC_ITEMS
            }
            .validate()
            .is_ok()
        );
        assert_eq!(
            SyncRequest::HeadersByRange {
                start: 0,
                count: MAX_SYNC_ITEMS + 1
            }
            .validate(),
            Err(SyncError::CountTooLarge {
                count: MAX_SYNC_ITEMS + 1,
                max: MAX_SYNC_ITEMS
            })
        );
        assert_eq!(
            SyncRequest::BlocksByRange { start: 7, count: 0 }.validate(),
            Err(SyncError::ZeroCount)
        );
        assert!(SyncRequest::BlockByHash(B256::ZERO).validate().is_ok());
    }

    #[test]
    fn response_must_match_request() {
        let range = SyncRequest::BlocksByRange { start: 0, count: 2 };
        assert!(
            SyncResponse::Blocks(vec![vec![1], vec![2]])
                .check_matches(&range)
                .is_ok()
        );
        assert!(
            SyncResponse::Blocks(vec![vec![1]; 3])
                .check_matches(&range)
                .is_err()
        );
        assert!(SyncResponse::Headers(vec![]).check_matches(&range).is_err());
        let by_hash = SyncRequest::BlockByHash(B256::ZERO);
        assert!(
            SyncResponse::Blocks(vec![vec![1], vec![2]])
                .check_matches(&by_hash)
                .is_err()
        );
        assert!(
            SyncResponse::Error(SyncError::Unavailable)
                .check_matches(&by_hash)
                .is_ok()
        );
    }

    #[test]
    fn truncate_keeps_a_prefix_within_the_limit() {
        let items: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 100]).collect();
        let SyncResponse::Blocks(kept) = SyncResponse::Blocks(items.clone()).truncate_to(500)
        else {
            panic!("kind changed");
        };
        assert_eq!(kept.len(), 3, "64 + 3 * 116 = 412 <= 500 < 528");
        assert_eq!(kept[..], items[..3]);
    }
}
