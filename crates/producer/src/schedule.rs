use alloy_primitives::{Address, U256};
use koma_primitives::ChainSpec;
use std::time::Duration;

/// How long after its parent a producer at `distance` from the in-turn position may
/// seal a block: one block time, plus one more per step of distance (the backoff that
/// lets the next in succession take over from a silent producer).
pub fn slot_delay(spec: &ChainSpec, distance: u64) -> Duration {
    Duration::from_millis(
        spec.block_time_ms
            .saturating_mul(distance.saturating_add(1)),
    )
}

/// The earliest timestamp (seconds) a block may carry when its producer is at
/// `distance`: the parent's plus the slot delay, in whole seconds.
pub fn earliest_timestamp(spec: &ChainSpec, parent_timestamp: u64, distance: u64) -> u64 {
    parent_timestamp.saturating_add(slot_delay(spec, distance).as_secs())
}

/// The producer rotation among one sprint's producers (their set is fixed per span but
/// for replacements, see [`crate::Elections`]): the in-turn producer changes every
/// sprint, and the others follow in succession order.
#[derive(Debug, Clone)]
pub struct ProducerSchedule {
    producers: Vec<Address>,
    sprint: u64,
}

impl ProducerSchedule {
    pub fn new(producers: Vec<Address>, sprint: u64) -> Self {
        Self { producers, sprint }
    }

    /// The chain spec's genesis producers.
    pub fn genesis(spec: &ChainSpec) -> Self {
        Self::new(spec.producers.producers.clone(), spec.producers.sprint)
    }

    pub fn producers(&self) -> &[Address] {
        &self.producers
    }

    /// The producer in turn for block `number`.
    pub fn in_turn(&self, number: u64) -> Address {
        let n = self.producers.len() as u64;
        let idx = number
            .checked_div(self.sprint)
            .and_then(|slot| slot.checked_rem(n))
            .unwrap_or(0);
        self.producers
            .get(idx as usize)
            .copied()
            .unwrap_or_default()
    }

    /// How far `producer` is from the in-turn position for `number` (0 = in turn),
    /// or `None` if it is not a producer.
    pub fn distance(&self, number: u64, producer: Address) -> Option<u64> {
        let n = self.producers.len() as u64;
        let pos = self.producers.iter().position(|p| *p == producer)? as u64;
        let in_turn = number.checked_div(self.sprint)?.checked_rem(n)?;
        // pos and in_turn are both below n
        pos.checked_add(n)?.checked_sub(in_turn)?.checked_rem(n)
    }

    /// Difficulty encodes turn priority: `n - distance`, so the in-turn block is the
    /// heaviest and fork choice prefers it.
    pub fn difficulty(&self, number: u64, producer: Address) -> Option<U256> {
        let n = self.producers.len() as u64;
        self.distance(number, producer)
            .map(|d| U256::from(n.saturating_sub(d)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_distance() {
        let spec = ChainSpec::devnet();
        assert_eq!(spec.block_time_ms, 1000);
        assert_eq!(slot_delay(&spec, 0), Duration::from_secs(1));
        assert_eq!(slot_delay(&spec, 2), Duration::from_secs(3));
        assert_eq!(earliest_timestamp(&spec, 100, 0), 101);
        assert_eq!(earliest_timestamp(&spec, 100, 3), 104);
        let mut fast = spec;
        fast.block_time_ms = 400;
        // Sub-second slots share a timestamp; distance still pushes it.
        assert_eq!(earliest_timestamp(&fast, 100, 0), 100);
        assert_eq!(earliest_timestamp(&fast, 100, 2), 101);
    }

    #[test]
    fn rotates_every_sprint() {
        let ps: Vec<Address> = (1..=4u8).map(Address::repeat_byte).collect();
        let s = ProducerSchedule::new(ps.clone(), 16);
        assert_eq!(s.in_turn(0), ps[0]);
        assert_eq!(s.in_turn(15), ps[0]);
        assert_eq!(s.in_turn(16), ps[1]);
        assert_eq!(s.in_turn(64), ps[0]);
        assert_eq!(s.difficulty(16, ps[1]), Some(U256::from(4)));
        assert_eq!(s.difficulty(16, ps[2]), Some(U256::from(3)));
        assert_eq!(s.difficulty(16, ps[0]), Some(U256::from(1)));
        assert_eq!(s.difficulty(16, Address::ZERO), None);
    }
}
