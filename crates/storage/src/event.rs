//! What the chain announces when its canonical blocks change.

use crate::StoredBody;
use alloy::consensus::ReceiptEnvelope;
use koma_primitives::SealedHeader;

/// A block that became canonical (`removed == false`) or left the canonical chain in
/// a reorg (`removed == true`).
#[derive(Debug, Clone)]
pub struct ChainEvent {
    pub header: SealedHeader,
    pub body: StoredBody,
    pub receipts: Vec<ReceiptEnvelope>,
    pub removed: bool,
}
