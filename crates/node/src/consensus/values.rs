//! The value rule: which proposed L2 blocks the node accepts as milestones.

use alloy_primitives::B256;
use koma_consensus::{Validity, ValueCheck};

/// Proposed values are L2 block hashes: valid if the block is known here and descends
/// from (or is) the parent milestone; unknown until it has been imported.
pub(super) struct ChainValues {
    pub(super) db: koma_storage::Database,
}

impl ValueCheck for ChainValues {
    fn check(&self, value: &B256, parent: &B256) -> Validity {
        let Ok(Some(header)) = self.db.header(*value) else {
            return Validity::Unknown;
        };
        let Ok(Some(parent_header)) = self.db.header(*parent) else {
            return Validity::Unknown;
        };
        if header.number < parent_header.number {
            return Validity::Invalid;
        }
        let canonical = |h: &B256, n: u64| self.db.is_canonical(*h, n).unwrap_or(false);
        if canonical(value, header.number) && canonical(parent, parent_header.number) {
            return Validity::Valid;
        }
        // A side branch: walk back from the value to the parent's height.
        let mut cursor = header;
        let mut hash = *value;
        while cursor.number > parent_header.number {
            hash = cursor.parent_hash;
            match self.db.header(hash) {
                Ok(Some(h)) => cursor = h,
                _ => return Validity::Unknown,
            }
        }
        if hash == *parent {
            Validity::Valid
        } else {
            Validity::Invalid
        }
    }
}
