//! The binary Merkle tree of the L1-facing formats: a checkpoint's tree over its block
//! leaves, and a block's withdrawals tree over its withdrawal leaves. Proofs are checked
//! as `CheckpointTree.processProof` checks them on L1.
//!
//! The leaves are padded with zero hashes to the next power of two (one leaf is its own
//! root) and a parent is `keccak256(left ‖ right)`. Only the nodes that cover at least one
//! leaf are computed and stored: a subtree over padding alone has a root that depends on
//! its height only, so it is computed once per level. A range of `n` blocks thus costs
//! about `n` hashes whatever its padding.

use alloy_primitives::{B256, keccak256};

/// A proof longer than 255 levels, or an index beyond its `2^depth` leaves (the contract's
/// `BadProofIndex`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("index {index} does not fit a proof of depth {depth}")]
pub struct BadProofIndex {
    /// The leaf position.
    pub index: u64,
    /// The number of siblings in the proof.
    pub depth: usize,
}

/// Longest proof the contract accepts (`CheckpointTree.processProof`).
pub const MAX_PROOF_DEPTH: usize = 255;

/// A binary Merkle tree over leaf hashes, padded with zero hashes to a power of two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    /// `levels[0]` holds the leaves, `levels[h]` the nodes at height `h` that cover at least
    /// one leaf; the last level holds the root alone (or nothing, for no leaves).
    levels: Vec<Vec<B256>>,
    /// `padding[h]`: the root of a subtree of height `h` over padding alone.
    padding: Vec<B256>,
}

impl MerkleTree {
    /// Builds the tree over `leaves` (leaf hashes, in block order). With no leaves the root
    /// is the zero hash, which the contract refuses as a checkpoint root.
    pub fn new(leaves: Vec<B256>) -> Self {
        let mut padding = vec![B256::ZERO];
        let mut levels = vec![leaves];
        while let (Some(level), Some(&pad)) = (levels.last(), padding.last())
            && level.len() > 1
        {
            let next = level
                .chunks(2)
                .map(|pair| match pair {
                    [left, right] => parent(left, right),
                    [left] => parent(left, &pad),
                    // `chunks` yields no empty chunk.
                    [] | [_, _, ..] => pad,
                })
                .collect();
            levels.push(next);
            padding.push(parent(&pad, &pad));
        }
        Self { levels, padding }
    }

    /// The root: the zero hash with no leaves, the leaf itself with one.
    pub fn root(&self) -> B256 {
        self.levels
            .last()
            .and_then(|top| top.first())
            .copied()
            .unwrap_or(B256::ZERO)
    }

    /// The leaf hashes, without padding.
    pub fn leaves(&self) -> &[B256] {
        self.levels.first().map_or(&[], Vec::as_slice)
    }

    /// The number of leaves, without padding.
    pub fn len(&self) -> usize {
        self.leaves().len()
    }

    /// True with no leaves.
    pub fn is_empty(&self) -> bool {
        self.leaves().is_empty()
    }

    /// The length of every proof: log2 of the padded width.
    pub fn depth(&self) -> usize {
        self.levels.len().saturating_sub(1)
    }

    /// The siblings of leaf `index` from the leaf level up, or `None` if there is no such
    /// leaf.
    pub fn proof(&self, index: u64) -> Option<Vec<B256>> {
        let mut position = usize::try_from(index).ok()?;
        if position >= self.len() {
            return None;
        }
        let mut siblings = Vec::with_capacity(self.depth());
        for (level, pad) in self.levels.iter().zip(&self.padding).take(self.depth()) {
            siblings.push(level.get(position ^ 1).copied().unwrap_or(*pad));
            position /= 2;
        }
        Some(siblings)
    }
}

impl FromIterator<B256> for MerkleTree {
    fn from_iter<I: IntoIterator<Item = B256>>(leaves: I) -> Self {
        Self::new(leaves.into_iter().collect())
    }
}

/// The root reached from `leaf` at position `index` through the siblings `proof` (leaf
/// level first), as `CheckpointTree.processProof` computes it: a proof of more than 255
/// levels, or an index of `2^depth` or more, is refused.
pub fn process_proof(leaf: B256, index: u64, proof: &[B256]) -> Result<B256, BadProofIndex> {
    let depth = proof.len();
    let bad_index = BadProofIndex { index, depth };
    if depth > MAX_PROOF_DEPTH {
        return Err(bad_index);
    }
    // A shift of 64 or more leaves nothing of a u64: any index fits.
    let shift = u32::try_from(depth).map_err(|_| bad_index.clone())?;
    if index.checked_shr(shift).is_some_and(|rest| rest != 0) {
        return Err(bad_index);
    }
    let mut node = leaf;
    let mut position = index;
    for sibling in proof {
        node = if position & 1 == 0 {
            parent(&node, sibling)
        } else {
            parent(sibling, &node)
        };
        position /= 2;
    }
    Ok(node)
}

/// True if `proof` places `leaf` at position `index` of the tree with root `root`.
pub fn verify_proof(leaf: B256, index: u64, proof: &[B256], root: B256) -> bool {
    process_proof(leaf, index, proof) == Ok(root)
}

/// `keccak256(left ‖ right)`.
fn parent(left: &B256, right: &B256) -> B256 {
    // One-shot over a stack buffer: measurably faster than the incremental hasher.
    keccak256(left.concat_const::<32, 64>(*right))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::U256;
    use proptest::prelude::*;

    fn leaf(i: u64) -> B256 {
        keccak256(U256::from(i).to_be_bytes::<32>())
    }

    /// The tree as the vector script builds it: every level padded in full.
    fn naive_root(leaves: &[B256]) -> B256 {
        let mut level = leaves.to_vec();
        level.resize(leaves.len().next_power_of_two(), B256::ZERO);
        while level.len() > 1 {
            level = level.chunks(2).map(|p| parent(&p[0], &p[1])).collect();
        }
        level[0]
    }

    #[test]
    fn small_trees() {
        assert_eq!(MerkleTree::new(vec![]).root(), B256::ZERO);
        assert_eq!(MerkleTree::new(vec![]).proof(0), None);
        let one = MerkleTree::new(vec![leaf(0)]);
        assert_eq!(one.root(), leaf(0));
        assert_eq!(one.depth(), 0);
        assert_eq!(one.proof(0), Some(vec![]));
        assert_eq!(one.proof(1), None);
        let three = MerkleTree::from_iter((0..3).map(leaf));
        let right = parent(&leaf(2), &B256::ZERO);
        assert_eq!(three.root(), parent(&parent(&leaf(0), &leaf(1)), &right));
        assert_eq!(
            three.proof(2),
            Some(vec![B256::ZERO, parent(&leaf(0), &leaf(1))])
        );
    }

    #[test]
    fn process_proof_refuses_what_the_contract_refuses() {
        let tree = MerkleTree::from_iter((0..5).map(leaf));
        let proof = tree.proof(4).unwrap();
        assert_eq!(process_proof(leaf(4), 4, &proof), Ok(tree.root()));
        // Index 8 does not fit 3 levels, even though its low bits would give index 0's path.
        assert_eq!(
            process_proof(leaf(4), 8 + 4, &proof),
            Err(BadProofIndex {
                index: 12,
                depth: 3
            })
        );
        assert!(!verify_proof(leaf(4), 12, &proof, tree.root()));
        assert!(!verify_proof(leaf(4), 3, &proof, tree.root()));
        assert!(!verify_proof(leaf(3), 4, &proof, tree.root()));
        // Empty proof: index 0 only.
        assert_eq!(process_proof(leaf(1), 0, &[]), Ok(leaf(1)));
        assert!(process_proof(leaf(1), 1, &[]).is_err());
        // 64 levels or more: any u64 index fits; beyond 255 levels nothing does.
        let long = vec![B256::ZERO; 64];
        assert!(process_proof(leaf(1), u64::MAX, &long).is_ok());
        assert!(process_proof(leaf(1), 0, &vec![B256::ZERO; 255]).is_ok());
        assert_eq!(
            process_proof(leaf(1), 0, &vec![B256::ZERO; 256]),
            Err(BadProofIndex {
                index: 0,
                depth: 256
            })
        );
    }

    #[test]
    fn padding_is_not_hashed_twice_and_agrees_with_full_padding() {
        for n in [1usize, 2, 3, 5, 8, 9, 1023, 1024, 1025] {
            let leaves: Vec<B256> = (0..n as u64).map(leaf).collect();
            assert_eq!(
                MerkleTree::new(leaves.clone()).root(),
                naive_root(&leaves),
                "{n} leaves"
            );
        }
    }

    proptest! {
        #[test]
        fn every_proof_verifies_and_no_other(n in 1usize..300, seed in any::<u64>()) {
            let leaves: Vec<B256> = (0..n as u64).map(|i| leaf(i ^ seed)).collect();
            let tree = MerkleTree::new(leaves.clone());
            prop_assert_eq!(tree.root(), naive_root(&leaves));
            prop_assert_eq!(tree.depth(), n.next_power_of_two().trailing_zeros() as usize);
            for (i, l) in leaves.iter().enumerate() {
                let i = i as u64;
                let proof = tree.proof(i).unwrap();
                prop_assert_eq!(proof.len(), tree.depth());
                prop_assert!(verify_proof(*l, i, &proof, tree.root()));
                let wrong = (i + 1) % n as u64;
                if leaves[wrong as usize] != *l {
                    prop_assert!(!verify_proof(*l, wrong, &proof, tree.root()));
                }
            }
            prop_assert_eq!(tree.proof(n as u64), None);
        }
    }
}
