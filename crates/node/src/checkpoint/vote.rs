//! Checkpoint votes: one staker's BLS signature on one checkpoint, as gossiped and as
//! stored, and the book that collects them until a checkpoint has enough.

use alloy_primitives::B256;
use koma_checkpoint::{CheckpointHeader, Signature, bls::SIGNATURE_COMPRESSED_LEN};
use std::collections::BTreeMap;

/// Encoded length of a vote: number, start, end (u64 each), root, set id (u64), slot
/// (u16), compressed signature.
pub(crate) const VOTE_LEN: usize = 8 * 3 + 32 + 8 + 2 + SIGNATURE_COMPRESSED_LEN;

/// A staker's signature on checkpoint `header` under staker set `set_id`: what the
/// checkpoint topic carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vote {
    pub header: CheckpointHeader,
    pub set_id: u64,
    /// The staker's slot in that set.
    pub slot: u16,
    pub signature: Signature,
}

/// What a vote is about: every vote on the same subject can be aggregated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Subject {
    pub number: u64,
    pub start: u64,
    pub end: u64,
    pub root: B256,
    pub set_id: u64,
}

impl Subject {
    /// The lowest subject with `number`.
    fn first_of(number: u64) -> Self {
        Self {
            number,
            start: 0,
            end: 0,
            root: B256::ZERO,
            set_id: 0,
        }
    }
}

impl Vote {
    pub(crate) fn subject(&self) -> Subject {
        Subject {
            number: self.header.number,
            start: self.header.start,
            end: self.header.end,
            root: self.header.root,
            set_id: self.set_id,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(VOTE_LEN);
        out.extend_from_slice(&self.header.number.to_be_bytes());
        out.extend_from_slice(&self.header.start.to_be_bytes());
        out.extend_from_slice(&self.header.end.to_be_bytes());
        out.extend_from_slice(self.header.root.as_slice());
        out.extend_from_slice(&self.set_id.to_be_bytes());
        out.extend_from_slice(&self.slot.to_be_bytes());
        out.extend_from_slice(&self.signature.to_compressed());
        out
    }

    /// Decodes a vote; the signature is checked to be a valid point (not yet that it
    /// signs anything).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != VOTE_LEN {
            return None;
        }
        let (number, rest) = bytes.split_at_checked(8)?;
        let (start, rest) = rest.split_at_checked(8)?;
        let (end, rest) = rest.split_at_checked(8)?;
        let (root, rest) = rest.split_at_checked(32)?;
        let (set_id, rest) = rest.split_at_checked(8)?;
        let (slot, sig) = rest.split_at_checked(2)?;
        let u64_of = |b: &[u8]| b.try_into().ok().map(u64::from_be_bytes);
        Some(Self {
            header: CheckpointHeader {
                number: u64_of(number)?,
                start: u64_of(start)?,
                end: u64_of(end)?,
                root: B256::from_slice(root),
            },
            set_id: u64_of(set_id)?,
            slot: u16::from_be_bytes(slot.try_into().ok()?),
            signature: Signature::from_compressed(sig).ok()?,
        })
    }
}

/// Verified votes by subject and slot, for checkpoints not yet accepted on L1.
#[derive(Debug, Default)]
pub(crate) struct VoteBook {
    votes: BTreeMap<Subject, BTreeMap<u16, Signature>>,
}

impl VoteBook {
    /// Adds a verified vote; false if the slot had already voted on that subject.
    pub fn add(&mut self, vote: Vote) -> bool {
        self.votes
            .entry(vote.subject())
            .or_default()
            .insert(vote.slot, vote.signature)
            .is_none()
    }

    /// Another vote of `vote`'s slot with the same number on a different checkpoint
    /// (range or root): with `vote`, evidence that the staker signed two.
    pub fn conflicting(&self, vote: &Vote) -> Option<Vote> {
        let mine = vote.subject();
        self.votes
            .range(Subject::first_of(mine.number)..)
            .take_while(|(s, _)| s.number == mine.number)
            .filter(|(s, _)| (s.start, s.end, s.root) != (mine.start, mine.end, mine.root))
            .find_map(|(s, votes)| {
                votes.get(&vote.slot).map(|signature| Vote {
                    header: CheckpointHeader {
                        number: s.number,
                        start: s.start,
                        end: s.end,
                        root: s.root,
                    },
                    set_id: s.set_id,
                    slot: vote.slot,
                    signature: *signature,
                })
            })
    }

    /// Forgets every subject numbered below `number` (accepted on L1).
    pub fn prune_below(&mut self, number: u64) {
        self.votes.retain(|s, _| s.number >= number);
    }

    /// The subject of checkpoint `number` under `set_id` with the most `weight`, its
    /// weight and its votes.
    pub fn best(
        &self,
        number: u64,
        set_id: u64,
        weight: impl Fn(u16) -> u64,
    ) -> Option<(Subject, u64, &BTreeMap<u16, Signature>)> {
        self.votes
            .iter()
            .filter(|(s, _)| s.number == number && s.set_id == set_id)
            .map(|(s, v)| {
                let w = v
                    .keys()
                    .map(|slot| weight(*slot))
                    .fold(0u64, u64::saturating_add);
                (*s, w, v)
            })
            .max_by_key(|(_, w, _)| *w)
    }
}

/// More than 2/3 of `total`, as the contract counts (3 · signed > 2 · total).
pub(crate) fn above_two_thirds(signed: u64, total: u64) -> bool {
    u128::from(signed).saturating_mul(3) > u128::from(total).saturating_mul(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use koma_checkpoint::SecretKey;

    fn vote(slot: u16, root: u8) -> Vote {
        let key = SecretKey::key_gen(&[slot as u8; 32]).unwrap();
        let header = CheckpointHeader {
            number: 7,
            start: 192,
            end: 223,
            root: B256::repeat_byte(root),
        };
        Vote {
            header,
            set_id: 2,
            slot,
            signature: key.sign(&B256::repeat_byte(9)),
        }
    }

    #[test]
    fn encodes_and_decodes() {
        let v = vote(3, 1);
        let bytes = v.encode();
        assert_eq!(bytes.len(), VOTE_LEN);
        assert_eq!(Vote::decode(&bytes), Some(v));
        assert_eq!(Vote::decode(&bytes[1..]), None);
        let mut bad = bytes;
        bad[VOTE_LEN - 10] ^= 0xff; // the signature is no longer a point
        assert_eq!(Vote::decode(&bad), None);
    }

    #[test]
    fn book_weighs_subjects_and_prunes() {
        let mut book = VoteBook::default();
        assert!(book.add(vote(0, 1)));
        assert!(!book.add(vote(0, 1)), "a slot counts once");
        assert!(book.add(vote(1, 1)));
        assert!(book.add(vote(2, 2)));
        let (subject, weight, votes) = book.best(7, 2, |_| 10).unwrap();
        assert_eq!(
            (subject.root, weight, votes.len()),
            (B256::repeat_byte(1), 20, 2)
        );
        assert!(book.best(7, 3, |_| 10).is_none(), "another set");
        book.prune_below(8);
        assert!(book.best(7, 2, |_| 10).is_none());
    }

    #[test]
    fn book_finds_a_slot_that_signed_two_checkpoints() {
        let mut book = VoteBook::default();
        book.add(vote(3, 1));
        book.add(vote(4, 2));
        assert_eq!(book.conflicting(&vote(3, 1)), None, "the same vote again");
        assert_eq!(book.conflicting(&vote(5, 2)), None, "another slot");
        let mut other_set = vote(3, 1);
        other_set.set_id = 3;
        assert_eq!(
            book.conflicting(&other_set),
            None,
            "the same checkpoint under another set"
        );
        assert_eq!(book.conflicting(&vote(3, 2)), Some(vote(3, 1)));
        let mut other_range = vote(3, 1);
        other_range.header.end -= 1;
        assert_eq!(book.conflicting(&other_range), Some(vote(3, 1)));
        let mut other_number = vote(3, 2);
        other_number.header.number += 1;
        assert_eq!(book.conflicting(&other_number), None);
    }

    /// The shared vector's double signature (tests/vectors/checkpoint.json, which the
    /// root contract slashes on): the book pairs its two votes.
    #[test]
    fn book_pairs_the_vectors_double_signature() {
        let vector: serde_json::Value =
            serde_json::from_str(include_str!("../../../../tests/vectors/checkpoint.json"))
                .unwrap();
        let double = &vector["doubleCheckpoint"];
        let slot = u16::try_from(double["slot"].as_u64().unwrap()).unwrap();
        let vote_at = |name: &str| {
            let v = &double[name];
            let u = |k: &str| v[k].as_u64().unwrap();
            let hex = |k: &str| alloy_primitives::hex::decode(v[k].as_str().unwrap()).unwrap();
            Vote {
                header: CheckpointHeader {
                    number: u("number"),
                    start: u("start"),
                    end: u("end"),
                    root: B256::from_slice(&hex("root")),
                },
                set_id: u("setId"),
                slot,
                signature: Signature::from_compressed(&hex("compressed")).unwrap(),
            }
        };
        let (a, b) = (vote_at("a"), vote_at("b"));
        assert_eq!(a.signature.to_eip2537().to_vec(), {
            let s = double["a"]["signature"].as_str().unwrap();
            alloy_primitives::hex::decode(s).unwrap()
        });
        let mut book = VoteBook::default();
        book.add(a.clone());
        assert_eq!(book.conflicting(&b), Some(a));
    }

    #[test]
    fn two_thirds_is_strict() {
        assert!(!above_two_thirds(2, 3));
        assert!(above_two_thirds(3, 4));
        assert!(!above_two_thirds(0, 0));
        assert!(above_two_thirds(u64::MAX, u64::MAX));
    }
}
