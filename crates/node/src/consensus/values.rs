//! The value rule: which proposed L2 blocks the node accepts as milestones.

use crate::deposits::{DepositBook, DepositVerdict};
use alloy_primitives::B256;
use koma_consensus::{Validity, ValueCheck};
use koma_primitives::bridge::Watermark;
use parking_lot::Mutex;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Blocks whose own watermark was found confirmed are remembered (up to this many), so
/// a block is looked at once however many proposals span it.
const CHECKED_KEPT: usize = 4096;

/// Proposed values are L2 block hashes: valid if the block is known here and descends
/// from (or is) the parent milestone; unknown until it has been imported, and until
/// every deposit watermark the blocks it adds to the parent milestone announce is
/// confirmed in this node's own reading of L1 (docs/bridge.md, ADR 0017).
pub(super) struct ChainValues {
    pub(super) db: koma_storage::Database,
    pub(super) deposits: Arc<DepositBook>,
    pub(super) stake: Arc<crate::stake::StakeView>,
    /// The number of the last block final here (`ChainWriter::finalized`).
    pub(super) finalized: Arc<AtomicU64>,
    pub(super) checked: Mutex<HashSet<B256>>,
}

impl ValueCheck for ChainValues {
    fn check(&self, value: &B256, parent: &B256) -> Validity {
        match self.descends(value, parent) {
            // a final block's anchor and watermark were agreed (units restored after
            // a restart propose blocks this node's L1 reading may no longer cover)
            Validity::Valid if self.is_final(value) => Validity::Valid,
            Validity::Valid => match self.anchor_confirmed(value, parent) {
                Validity::Valid => self.deposits_confirmed(value, parent),
                other => other,
            },
            other => other,
        }
    }
}

impl ChainValues {
    /// Whether `value` is a canonical block at or below the last final one.
    fn is_final(&self, value: &B256) -> bool {
        let Ok(Some(header)) = self.db.header(*value) else {
            return false;
        };
        header.number <= self.finalized.load(Ordering::Relaxed)
            && self.db.is_canonical(*value, header.number).unwrap_or(false)
    }

    /// The L1 anchor of the value's block must be an L1 block this node read, deep
    /// enough, and not older than the parent's (crate::stake).
    fn anchor_confirmed(&self, value: &B256, parent: &B256) -> Validity {
        let (Ok(Some(header)), Ok(Some(parent_header))) =
            (self.db.header(*value), self.db.header(*parent))
        else {
            return Validity::Unknown;
        };
        let anchor = |h: &alloy::consensus::Header| h.parent_beacon_block_root.unwrap_or_default();
        let verdict = self.stake.verdict(anchor(&header), anchor(&parent_header));
        if verdict != Validity::Valid {
            tracing::debug!(block = header.number, anchor = %anchor(&header), ?verdict, "proposal waits: its L1 anchor is not confirmed here");
        }
        verdict
    }

    fn descends(&self, value: &B256, parent: &B256) -> Validity {
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

    /// Valid if every deposit watermark the blocks after `parent` up to `value` (which
    /// descends from it) announce is confirmed in this node's book; `Unknown` (wait) if
    /// one is not, or not with the same hash chain. The deposits those blocks apply
    /// were checked against agreed watermarks at import.
    fn deposits_confirmed(&self, value: &B256, parent: &B256) -> Validity {
        if !self.deposits.reads_l1() {
            return Validity::Valid;
        }
        let mut hash = *value;
        let mut newly = Vec::new();
        while hash != *parent {
            let Ok(Some(header)) = self.db.header(hash) else {
                return Validity::Unknown;
            };
            if !self.checked.lock().contains(&hash) && header.number > 0 {
                let Ok(Some(previous)) = self.db.header(header.parent_hash) else {
                    return Validity::Unknown;
                };
                let (Ok(mark), Ok(before)) = (Watermark::of(&header), Watermark::of(&previous))
                else {
                    return Validity::Invalid; // import refuses these; never vote for one
                };
                if mark.id > before.id {
                    match self.deposits.verdict(&mark) {
                        DepositVerdict::Confirmed | DepositVerdict::NoL1 => {}
                        verdict @ (DepositVerdict::Seen
                        | DepositVerdict::NotSeen
                        | DepositVerdict::Conflicts) => {
                            tracing::debug!(
                                block = header.number,
                                id = mark.id,
                                ?verdict,
                                "proposal waits: a deposit watermark not confirmed here"
                            );
                            return Validity::Unknown;
                        }
                    }
                }
                newly.push(hash);
            }
            if header.number == 0 {
                break;
            }
            hash = header.parent_hash;
        }
        let mut checked = self.checked.lock();
        if checked.len().saturating_add(newly.len()) > CHECKED_KEPT {
            checked.clear();
        }
        checked.extend(newly);
        Validity::Valid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{Address, Bytes, U256};
    use koma_primitives::bridge::{Deposit, KMC_TOKEN, L2_BRIDGE_ADDRESS};
    use koma_primitives::{ChainSpec, dev};
    use koma_producer::build_block_with;
    use koma_producer::test_utils::{VecDeposits as Confirmed, VecPool};

    fn deposit(amount: u64) -> Bytes {
        Deposit {
            token: KMC_TOKEN,
            from: Address::with_last_byte(1),
            to: Address::with_last_byte(2),
            amount: U256::from(amount),
            metadata: None,
        }
        .encode()
    }

    fn values(db: &koma_storage::Database, book: Arc<DepositBook>) -> ChainValues {
        ChainValues {
            db: db.clone(),
            deposits: book,
            stake: Arc::new(crate::stake::StakeView::new(false)),
            finalized: Default::default(),
            checked: Default::default(),
        }
    }

    #[test]
    fn a_proposal_waits_until_the_watermarks_it_adds_are_confirmed_here() {
        let spec = ChainSpec::devnet();
        let dir = tempfile::tempdir().unwrap();
        let db = koma_storage::Database::open(dir.path(), &spec).unwrap();
        let genesis = db.head().hash;
        let key = dev::dev_producer_key(0);
        let applied = Confirmed(vec![deposit(5), deposit(6)]);
        let build = |n: u64, source: &Confirmed| {
            build_block_with(
                &spec,
                &db,
                &mut VecPool::default(),
                source,
                &koma_producer::Elections::genesis(),
                &key,
                spec.timestamp + n,
                None,
            )
            .unwrap()
            .header
            .hash
        };
        let first = build(1, &applied);
        let second = build(2, &applied); // applies them, announces nothing new
        let receiver = L2_BRIDGE_ADDRESS;
        let read = |data: &[Bytes]| {
            data.iter()
                .enumerate()
                .map(|(i, d)| (i as u64 + 1, d.clone(), 10, B256::ZERO))
                .collect::<Vec<_>>()
        };

        // this node has not seen them on L1: wait (never "invalid")
        let book = Arc::new(DepositBook::new(true));
        book.set_confirmations(2);
        let v = values(&db, book.clone());
        assert_eq!(v.check(&second, &genesis), Validity::Unknown);
        assert_eq!(
            v.check(&second, &first),
            Validity::Valid,
            "no new watermark after the parent"
        );
        // a final block was agreed: restored units proposing it are not held back
        v.finalized.store(2, Ordering::Relaxed);
        assert_eq!(v.check(&second, &genesis), Validity::Valid);
        v.finalized.store(0, Ordering::Relaxed);
        // the first one only: still waiting
        assert!(book.extend(read(&applied.0[..1]), receiver));
        assert_eq!(v.check(&first, &genesis), Validity::Unknown);
        // L1 says something else for id 2: still waiting
        let other = Arc::new(DepositBook::new(true));
        assert!(other.extend(read(&[deposit(5), deposit(7)]), receiver));
        other.saw_head(100);
        assert_eq!(
            values(&db, other).check(&first, &genesis),
            Validity::Unknown
        );
        // both, with the same data, but one L1 block short of the confirmations: wait
        assert!(book.extend(read(&applied.0), receiver));
        book.saw_head(11);
        assert_eq!(v.check(&second, &genesis), Validity::Unknown);
        // confirmations deep: accepted
        book.saw_head(12);
        assert_eq!(v.check(&second, &genesis), Validity::Valid);
        assert_eq!(v.check(&first, &genesis), Validity::Valid);
        // a node that reads no L1 follows the stakers
        assert_eq!(
            values(&db, Arc::new(DepositBook::new(false))).check(&second, &genesis),
            Validity::Valid
        );
        // the rule on ancestry is unchanged
        assert_eq!(v.check(&genesis, &second), Validity::Invalid);
    }
}
