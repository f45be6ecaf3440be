//! The checkpoints accepted on L1, as the checkpoint service reads them from the root
//! contract's events, for RPC (`koma_getCheckpoint`, `koma_getFinality`, the
//! `checkpoints` subscription).
//!
//! The ledger lives in memory and is rebuilt from the contract's events at start. A
//! checkpoint records the staker set that signed it as the members of that set (shared
//! by every checkpoint of the set) and the slots that were absent, so that holding every
//! checkpoint stays cheap.

use alloy_primitives::{Address, B256, U256};
use koma_checkpoint::format::WEIGHT_UNIT;
use koma_rpc::CheckpointInfo;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::broadcast;

/// The members of one staker set, by slot: signer address and weight (`None`: empty).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SetMembers {
    pub id: u64,
    pub slots: Vec<Option<(Address, u64)>>,
}

/// Who signed an accepted checkpoint.
#[derive(Debug, Clone)]
pub(crate) struct Signing {
    pub set: Arc<SetMembers>,
    /// Slots of the set that did not sign, ascending.
    pub absent: Vec<u16>,
}

impl Signing {
    fn signers(&self) -> (Vec<Address>, u64, u64) {
        let mut signers = Vec::new();
        let (mut signed, mut total) = (0u64, 0u64);
        for (slot, member) in self.set.slots.iter().enumerate() {
            let Some((address, weight)) = member else {
                continue;
            };
            total = total.saturating_add(*weight);
            let absent = u16::try_from(slot).is_ok_and(|s| self.absent.binary_search(&s).is_ok());
            if !absent {
                signers.push(*address);
                signed = signed.saturating_add(*weight);
            }
        }
        (signers, signed, total)
    }
}

/// One checkpoint accepted on L1.
#[derive(Debug, Clone)]
pub(crate) struct Accepted {
    pub start: u64,
    pub end: u64,
    pub root: B256,
    pub tx: B256,
    pub l1_block: u64,
    /// `None` when the submission could not be read (relayed through another contract,
    /// or an L1 node without the state of that block).
    pub signing: Option<Signing>,
}

/// The checkpoints accepted on L1, by number.
#[derive(Debug)]
pub(crate) struct Ledger {
    accepted: BTreeMap<u64, Accepted>,
    /// The highest number announced as notarized to subscribers.
    notarized_sent: u64,
    /// The L1's latest block at the last read.
    l1_block: u64,
    pub confirmations: u64,
    /// The next L1 block whose checkpoint events are to be read.
    pub next_log_block: u64,
    events: broadcast::Sender<CheckpointInfo>,
}

impl Default for Ledger {
    fn default() -> Self {
        Self {
            accepted: BTreeMap::new(),
            notarized_sent: 0,
            l1_block: 0,
            confirmations: 0,
            next_log_block: 0,
            events: broadcast::channel(256).0,
        }
    }
}

impl Ledger {
    fn info(&self, number: u64, a: &Accepted) -> CheckpointInfo {
        let confirmations = self.l1_block.saturating_sub(a.l1_block).saturating_add(1);
        let signing = a.signing.as_ref().map(Signing::signers);
        let stake = |weight: u64| U256::from(weight).saturating_mul(U256::from(WEIGHT_UNIT));
        CheckpointInfo {
            number,
            start: a.start,
            end: a.end,
            root: a.root,
            l1_tx_hash: a.tx,
            l1_block: a.l1_block,
            confirmations,
            notarized: a.l1_block <= self.l1_block && confirmations >= self.confirmations,
            signing_stake: signing.as_ref().map(|(_, signed, _)| stake(*signed)),
            total_stake: signing.as_ref().map(|(_, _, total)| stake(*total)),
            signers: signing.map(|(signers, _, _)| signers),
            removed: false,
        }
    }

    /// Checkpoint `number` if the ledger has it from transaction `tx` in L1 block
    /// `l1_block` (an event read again).
    pub fn known(&self, number: u64, tx: B256, l1_block: u64) -> Option<Accepted> {
        self.accepted
            .get(&number)
            .filter(|a| a.tx == tx && a.l1_block == l1_block)
            .cloned()
    }

    /// Applies one read of L1: the contract's last accepted number `head_number` at L1
    /// block `l1_block` (checkpoints above it were reorged out) and the checkpoints found
    /// in the events read. Tells subscribers what changed.
    pub fn update(&mut self, head_number: u64, l1_block: u64, found: Vec<(u64, Accepted)>) {
        let removed = self.accepted.split_off(&head_number.saturating_add(1));
        for (number, a) in &removed {
            let mut info = self.info(*number, a);
            info.removed = true;
            let _ = self.events.send(info);
        }
        self.notarized_sent = self.notarized_sent.min(head_number);
        self.l1_block = l1_block;
        for (number, a) in found {
            if number > head_number
                || self
                    .accepted
                    .get(&number)
                    .is_some_and(|known| known.tx == a.tx && known.l1_block == a.l1_block)
            {
                continue;
            }
            let info = self.info(number, &a);
            let notarized = info.notarized;
            if self.accepted.insert(number, a).is_some() {
                // moved to another L1 block: to be notarized again
                self.notarized_sent = self.notarized_sent.min(number.saturating_sub(1));
            }
            let _ = self.events.send(info);
            if notarized {
                self.notarized_sent = self.notarized_sent.max(number);
            }
        }
        // the ones that became notarized with this read, in order
        let newly: Vec<CheckpointInfo> = self
            .accepted
            .range(self.notarized_sent.saturating_add(1)..)
            .map(|(n, a)| self.info(*n, a))
            .take_while(|info| info.notarized)
            .collect();
        for info in newly {
            self.notarized_sent = info.number;
            let _ = self.events.send(info);
        }
    }
}

/// What RPC reads of the ledger.
#[derive(Debug)]
pub(crate) struct CheckpointView(pub Arc<parking_lot::RwLock<Ledger>>);

impl koma_rpc::CheckpointApi for CheckpointView {
    fn checkpoint(&self, number: Option<u64>) -> Option<CheckpointInfo> {
        let ledger = self.0.read();
        let (n, a) = match number {
            Some(n) => (n, ledger.accepted.get(&n)?),
            None => ledger.accepted.last_key_value().map(|(n, a)| (*n, a))?,
        };
        Some(ledger.info(n, a))
    }

    fn checkpoint_covering(&self, block: u64) -> Option<CheckpointInfo> {
        let ledger = self.0.read();
        // ranges are contiguous and ascending: the last one starting at or below `block`
        ledger
            .accepted
            .iter()
            .rev()
            .find(|(_, a)| a.start <= block)
            .filter(|(_, a)| block <= a.end)
            .map(|(n, a)| ledger.info(*n, a))
    }

    fn notarized_end(&self) -> Option<u64> {
        let ledger = self.0.read();
        ledger
            .accepted
            .iter()
            .rev()
            .map(|(n, a)| ledger.info(*n, a))
            .find(|info| info.notarized)
            .map(|info| info.end)
    }

    fn subscribe(&self) -> broadcast::Receiver<CheckpointInfo> {
        self.0.read().events.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(number: u64, l1_block: u64, signing: Option<Signing>) -> (u64, Accepted) {
        (
            number,
            Accepted {
                start: (number - 1) * 32,
                end: number * 32 - 1,
                root: B256::with_last_byte(u8::try_from(number).unwrap()),
                tx: B256::with_last_byte(0xaa),
                l1_block,
                signing,
            },
        )
    }

    fn ledger(confirmations: u64) -> Arc<parking_lot::RwLock<Ledger>> {
        Arc::new(parking_lot::RwLock::new(Ledger {
            confirmations,
            ..Ledger::default()
        }))
    }

    fn drain(rx: &mut broadcast::Receiver<CheckpointInfo>) -> Vec<(u64, bool, bool)> {
        let mut out = Vec::new();
        while let Ok(info) = rx.try_recv() {
            out.push((info.number, info.notarized, info.removed));
        }
        out
    }

    #[test]
    fn announces_accepted_then_notarized_then_removed() {
        use koma_rpc::CheckpointApi;
        let view = CheckpointView(ledger(3));
        let mut rx = view.subscribe();
        view.0.write().update(1, 10, vec![accepted(1, 10, None)]);
        assert_eq!(drain(&mut rx), vec![(1, false, false)]);
        assert_eq!(view.notarized_end(), None);
        view.0.write().update(2, 11, vec![accepted(2, 11, None)]);
        assert_eq!(drain(&mut rx), vec![(2, false, false)]);
        // 3 confirmations: checkpoint 1 at L1 block 12
        view.0.write().update(2, 12, vec![]);
        assert_eq!(drain(&mut rx), vec![(1, true, false)]);
        assert_eq!(view.notarized_end(), Some(31));
        assert_eq!(view.checkpoint_covering(40).map(|c| c.number), Some(2));
        assert_eq!(view.checkpoint_covering(64), None);
        // an L1 reorg drops checkpoint 2; it comes back in another L1 block
        view.0.write().update(1, 12, vec![]);
        assert_eq!(drain(&mut rx), vec![(2, false, true)]);
        assert!(view.checkpoint(Some(2)).is_none());
        view.0.write().update(2, 15, vec![accepted(2, 14, None)]);
        assert_eq!(drain(&mut rx), vec![(2, false, false)]);
        view.0.write().update(2, 16, vec![]);
        assert_eq!(drain(&mut rx), vec![(2, true, false)]);
        // nothing new, nothing said; an event read again is not news either
        view.0.write().update(2, 17, vec![]);
        view.0.write().update(2, 18, vec![accepted(2, 14, None)]);
        assert_eq!(drain(&mut rx), vec![]);
        // a reorg that moves checkpoint 2's transaction to another L1 block, read in one go
        view.0.write().update(2, 19, vec![accepted(2, 18, None)]);
        assert_eq!(drain(&mut rx), vec![(2, false, false)]);
        assert_eq!(view.checkpoint(Some(2)).map(|c| c.l1_block), Some(18));
        view.0.write().update(2, 20, vec![]);
        assert_eq!(drain(&mut rx), vec![(2, true, false)]);
    }

    #[test]
    fn a_checkpoint_read_deep_is_announced_once_notarized() {
        use koma_rpc::CheckpointApi;
        let view = CheckpointView(ledger(2));
        let mut rx = view.subscribe();
        view.0
            .write()
            .update(2, 100, vec![accepted(1, 10, None), accepted(2, 20, None)]);
        assert_eq!(drain(&mut rx), vec![(1, true, false), (2, true, false)]);
        assert_eq!(view.notarized_end(), Some(63));
    }

    #[test]
    fn signers_are_the_set_less_the_absent() {
        use koma_rpc::CheckpointApi;
        let a = |b| Address::with_last_byte(b);
        let set = Arc::new(SetMembers {
            id: 1,
            slots: vec![Some((a(1), 10)), None, Some((a(3), 20)), Some((a(4), 30))],
        });
        let view = CheckpointView(ledger(1));
        let signing = Signing {
            set,
            absent: vec![2],
        };
        view.0
            .write()
            .update(1, 10, vec![accepted(1, 10, Some(signing))]);
        let info = view.checkpoint(None).unwrap();
        assert_eq!(info.signers, Some(vec![a(1), a(4)]));
        assert_eq!(info.signing_stake, Some(U256::from(40u64 * WEIGHT_UNIT)));
        assert_eq!(info.total_stake, Some(U256::from(60u64 * WEIGHT_UNIT)));
    }
}
