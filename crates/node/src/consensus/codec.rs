//! The consensus gossip message and its wire encoding.

use koma_consensus::{Evidence, SignedUnit};

/// A consensus gossip message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConsensusMessage {
    Unit(SignedUnit),
    Evidence(Evidence),
}

impl ConsensusMessage {
    /// One tag byte, then the unit's or the evidence's binary encoding.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let (tag, body) = match self {
            Self::Unit(u) => (0u8, u.to_bytes()),
            Self::Evidence(e) => (1u8, e.to_bytes()),
        };
        let mut out = Vec::with_capacity(body.len().saturating_add(1));
        out.push(tag);
        out.extend_from_slice(&body);
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, koma_consensus::unit::DecodeError> {
        match bytes.split_first() {
            Some((0, body)) => SignedUnit::from_bytes(body).map(Self::Unit),
            Some((1, body)) => Evidence::from_bytes(body).map(Self::Evidence),
            Some((tag, _)) => Err(koma_consensus::unit::DecodeError::BadByte {
                what: "message tag",
                byte: *tag,
            }),
            None => Err(koma_consensus::unit::DecodeError::Truncated(0)),
        }
    }
}
