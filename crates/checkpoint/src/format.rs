//! The bytes a checkpoint is made of, as `CheckpointTree.sol`, `RootChain.sol` and
//! `StakeManager.sol` compute them: every integer is a 32-byte big-endian word
//! (`uint256`), addresses are 20 bytes when packed and left-padded words when
//! ABI-encoded, BLS points are in their EIP-2537 encoding.

pub use koma_primitives::merkle::{BadProofIndex, MerkleTree, process_proof, verify_proof};

use alloy_primitives::{Address, B256, Bytes, Keccak256, U256, b256};

use crate::bls::PUBLIC_KEY_EIP2537_LEN;

/// `keccak256("KOMA_CHECKPOINT_V1")`, the domain tag of the signed checkpoint digest.
pub const CHECKPOINT_TAG: B256 =
    b256!("cbd5bfe2e537689353da3e80d8e5e977b33831a30162ad92047cc870ff62753a");

/// `keccak256("KOMA_BLS_POP_V1")`, the domain tag of the proof-of-possession message.
pub const POP_TAG: B256 = b256!("485c71c415c34a072edbc8f9bbe55ef16c7f177e3d53935662b149dbb52f3c0a");

/// Stakes weigh in gwei of KMC: weight = amount / `WEIGHT_UNIT`.
pub const WEIGHT_UNIT: u64 = 1_000_000_000;

/// Why a checkpoint value could not be built or read. The variants mirror the
/// contracts' errors of the same name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// Absent slots must be strictly ascending (each slot at most once).
    #[error("absent slots must be strictly ascending: slot {slot} follows slot {previous}")]
    AbsentNotAscending {
        /// The slot before.
        previous: u16,
        /// The slot that is not above it.
        slot: u16,
    },
    /// An absent list is a sequence of 2-byte slots.
    #[error("an absent list of {length} bytes is not a sequence of 2-byte slots")]
    BadAbsentList {
        /// Its length in bytes.
        length: usize,
    },
    /// The contract keeps stakes in 96 bits and weights in 64.
    #[error("a stake of {amount} wei is too high: it must fit 96 bits and its gwei 64 bits")]
    StakeTooHigh {
        /// The stake in wei.
        amount: U256,
    },
}

/// The fields of one L2 block that a checkpoint commits to (`CheckpointTree.BlockLeaf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BlockLeaf {
    /// Block number.
    pub number: u64,
    /// Block timestamp, in seconds.
    pub timestamp: u64,
    /// Block hash.
    pub block_hash: B256,
    /// Receipts root.
    pub receipts_root: B256,
    /// Root of the block's bridge withdrawals (zero when it has none).
    pub withdrawals_root: B256,
}

impl BlockLeaf {
    /// `keccak256(uint256 number ‖ uint256 timestamp ‖ blockHash ‖ receiptsRoot ‖
    /// withdrawalsRoot)`. The 160-byte preimage cannot be mistaken for an inner node's 64.
    pub fn hash(&self) -> B256 {
        let mut hasher = Keccak256::new();
        hasher.update(word(self.number));
        hasher.update(word(self.timestamp));
        hasher.update(self.block_hash);
        hasher.update(self.receipts_root);
        hasher.update(self.withdrawals_root);
        hasher.finalize()
    }
}

/// A checkpoint (`RootChain.Checkpoint`): number `number` covers the L2 blocks
/// `start..=end`, whose leaves have the Merkle root `root`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CheckpointHeader {
    /// Checkpoint number (the first is 1).
    pub number: u64,
    /// First L2 block covered.
    pub start: u64,
    /// Last L2 block covered (inclusive).
    pub end: u64,
    /// Root of the [`MerkleTree`] over the leaves of `start..=end`.
    pub root: B256,
}

/// Where a checkpoint signature is valid: the L1 chain, the root contract on it and the L2
/// chain. A signature under one domain serves under no other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Domain {
    /// Chain id of the L1 (`block.chainid` of the root contract).
    pub l1_chain_id: u64,
    /// Address of the `RootChain` contract.
    pub root_contract: Address,
    /// Chain id of the L2.
    pub l2_chain_id: u64,
}

impl Domain {
    /// The 32-byte message the stakers of set `set_id` BLS-sign for `header`
    /// (`RootChain.checkpointDigest`): `keccak256(abi.encode(CHECKPOINT_TAG, l1ChainId,
    /// rootContract, l2ChainId, number, start, end, root, setId))`.
    pub fn digest(&self, header: &CheckpointHeader, set_id: u64) -> B256 {
        let mut hasher = Keccak256::new();
        hasher.update(CHECKPOINT_TAG);
        hasher.update(word(self.l1_chain_id));
        hasher.update(self.root_contract.into_word());
        hasher.update(word(self.l2_chain_id));
        hasher.update(word(header.number));
        hasher.update(word(header.start));
        hasher.update(word(header.end));
        hasher.update(header.root);
        hasher.update(word(set_id));
        hasher.finalize()
    }
}

/// The message a staker's proof of possession signs (`StakeManager.popMessage`):
/// `keccak256(abi.encodePacked(POP_TAG, uint256 l1ChainId, rootContract, owner, signer,
/// pk))`, addresses packed to 20 bytes, `pk` the 256-byte EIP-2537 public key. It binds the
/// key to its owner, its KoMaBFT signer, the contract and the chain.
pub fn pop_message(
    l1_chain_id: u64,
    root_contract: Address,
    owner: Address,
    signer: Address,
    pk_eip2537: &[u8; PUBLIC_KEY_EIP2537_LEN],
) -> B256 {
    let mut hasher = Keccak256::new();
    hasher.update(POP_TAG);
    hasher.update(word(l1_chain_id));
    hasher.update(root_contract);
    hasher.update(owner);
    hasher.update(signer);
    hasher.update(pk_eip2537);
    hasher.finalize()
}

/// The commitment to a staker set (`StakeManager.setCommit`): `keccak256(uint256 setId ‖
/// uint256 totalWeight ‖ aggregateKey)`, the aggregate key in its 256-byte EIP-2537 form.
pub fn set_commit(
    set_id: u64,
    total_weight: u64,
    aggregate_key_eip2537: &[u8; PUBLIC_KEY_EIP2537_LEN],
) -> B256 {
    let mut hasher = Keccak256::new();
    hasher.update(word(set_id));
    hasher.update(word(total_weight));
    hasher.update(aggregate_key_eip2537);
    hasher.finalize()
}

/// The weight of a stake of `amount` wei: `amount / 1 gwei`, refused as the contract
/// refuses it when the amount does not fit 96 bits or the weight 64.
pub fn weight_of(amount: U256) -> Result<u64, FormatError> {
    let too_high = || FormatError::StakeTooHigh { amount };
    if amount.bit_len() > 96 {
        return Err(too_high());
    }
    let weight = amount
        .checked_div(U256::from(WEIGHT_UNIT))
        .ok_or_else(too_high)?;
    u64::try_from(weight).map_err(|_| too_high())
}

/// The `absent` argument of `submitCheckpoint`: each slot as 2 big-endian bytes, strictly
/// ascending.
pub fn absent_list(slots: &[u16]) -> Result<Bytes, FormatError> {
    for pair in slots.windows(2) {
        if let [previous, slot] = *pair
            && slot <= previous
        {
            return Err(FormatError::AbsentNotAscending { previous, slot });
        }
    }
    Ok(slots.iter().flat_map(|slot| slot.to_be_bytes()).collect())
}

/// Reads an absent list as `RootChain` does: 2-byte big-endian slots, strictly ascending.
pub fn parse_absent_list(bytes: &[u8]) -> Result<Vec<u16>, FormatError> {
    let (pairs, rest) = bytes.as_chunks::<2>();
    if !rest.is_empty() {
        return Err(FormatError::BadAbsentList {
            length: bytes.len(),
        });
    }
    let slots: Vec<u16> = pairs.iter().map(|pair| u16::from_be_bytes(*pair)).collect();
    absent_list(&slots)?;
    Ok(slots)
}

/// The range of the next checkpoint, or `None` if it is not due yet.
///
/// `next_start` is the first block after the last accepted checkpoint (the contract's
/// `nextStart`) and `latest_final` the latest final L2 block. A checkpoint is due once at
/// least `interval` blocks (at least one) are final past the last one; it covers the final
/// blocks from `next_start`, at most `max_range` of them (the contract's `maxRange`).
pub fn next_range(
    next_start: u64,
    latest_final: u64,
    interval: u64,
    max_range: u64,
) -> Option<(u64, u64)> {
    let last_allowed = next_start.checked_add(max_range.checked_sub(1)?)?;
    let final_blocks = latest_final.checked_sub(next_start)?.saturating_add(1);
    if final_blocks < interval.max(1) {
        return None;
    }
    Some((next_start, latest_final.min(last_allowed)))
}

/// `n` as a `uint256` word.
fn word(n: u64) -> [u8; 32] {
    U256::from(n).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::keccak256;

    #[test]
    fn tags_are_the_hashes_of_their_names() {
        assert_eq!(CHECKPOINT_TAG, keccak256("KOMA_CHECKPOINT_V1"));
        assert_eq!(POP_TAG, keccak256("KOMA_BLS_POP_V1"));
    }

    #[test]
    fn weight_is_gwei_and_bounded_like_the_contract() {
        let gwei = U256::from(WEIGHT_UNIT);
        assert_eq!(weight_of(U256::ZERO), Ok(0));
        assert_eq!(weight_of(gwei - U256::from(1)), Ok(0));
        assert_eq!(
            weight_of(U256::from(1000u64) * U256::from(10u64).pow(U256::from(18))),
            Ok(1_000_000_000_000)
        );
        let max_weight = U256::from(u64::MAX) * gwei + (gwei - U256::from(1));
        assert_eq!(weight_of(max_weight), Ok(u64::MAX));
        let over = max_weight + U256::from(1);
        assert_eq!(
            weight_of(over),
            Err(FormatError::StakeTooHigh { amount: over })
        );
        let huge = U256::from(1) << 96;
        assert_eq!(
            weight_of(huge),
            Err(FormatError::StakeTooHigh { amount: huge })
        );
    }

    #[test]
    fn absent_list_is_ascending_big_endian_slots() {
        assert_eq!(absent_list(&[]).unwrap(), Bytes::new());
        assert_eq!(absent_list(&[2]).unwrap(), Bytes::from_static(&[0, 2]));
        assert_eq!(
            absent_list(&[1, 0x0102, 0xffff]).unwrap(),
            Bytes::from_static(&[0, 1, 1, 2, 0xff, 0xff])
        );
        assert_eq!(
            absent_list(&[3, 3]),
            Err(FormatError::AbsentNotAscending {
                previous: 3,
                slot: 3
            })
        );
        assert_eq!(
            absent_list(&[5, 4]),
            Err(FormatError::AbsentNotAscending {
                previous: 5,
                slot: 4
            })
        );
    }

    #[test]
    fn parse_absent_list_refuses_what_the_contract_refuses() {
        assert_eq!(parse_absent_list(&[]), Ok(vec![]));
        assert_eq!(parse_absent_list(&[0, 1, 1, 0]), Ok(vec![1, 256]));
        assert_eq!(
            parse_absent_list(&[0, 1, 1]),
            Err(FormatError::BadAbsentList { length: 3 })
        );
        assert_eq!(
            parse_absent_list(&[0, 2, 0, 1]),
            Err(FormatError::AbsentNotAscending {
                previous: 2,
                slot: 1
            })
        );
    }

    #[test]
    fn next_range_waits_for_interval_and_caps_at_max_range() {
        // Nothing final past the last checkpoint yet.
        assert_eq!(next_range(100, 99, 10, 1024), None);
        assert_eq!(next_range(100, 50, 10, 1024), None);
        // 9 final blocks: not yet; 10: due.
        assert_eq!(next_range(100, 108, 10, 1024), None);
        assert_eq!(next_range(100, 109, 10, 1024), Some((100, 109)));
        // Far behind: capped at max_range blocks.
        assert_eq!(next_range(0, 5000, 10, 1024), Some((0, 1023)));
        // An interval of 0 still needs one final block.
        assert_eq!(next_range(7, 6, 0, 1024), None);
        assert_eq!(next_range(7, 7, 0, 1024), Some((7, 7)));
        // A zero max range never allows a checkpoint; no overflow at the top.
        assert_eq!(next_range(0, 10, 1, 0), None);
        assert_eq!(
            next_range(0, u64::MAX, 1, u64::MAX),
            Some((0, u64::MAX - 1))
        );
        assert_eq!(next_range(u64::MAX - 1, u64::MAX, 1, 1024), None);
    }

    #[test]
    fn digest_binds_every_field() {
        let domain = Domain {
            l1_chain_id: 1,
            root_contract: Address::repeat_byte(0x11),
            l2_chain_id: 2,
        };
        let header = CheckpointHeader {
            number: 3,
            start: 4,
            end: 5,
            root: B256::repeat_byte(6),
        };
        let base = domain.digest(&header, 7);
        let variants = [
            Domain {
                l1_chain_id: 9,
                ..domain
            }
            .digest(&header, 7),
            Domain {
                root_contract: Address::repeat_byte(0x12),
                ..domain
            }
            .digest(&header, 7),
            Domain {
                l2_chain_id: 9,
                ..domain
            }
            .digest(&header, 7),
            domain.digest(
                &CheckpointHeader {
                    number: 9,
                    ..header
                },
                7,
            ),
            domain.digest(&CheckpointHeader { start: 9, ..header }, 7),
            domain.digest(&CheckpointHeader { end: 9, ..header }, 7),
            domain.digest(
                &CheckpointHeader {
                    root: B256::repeat_byte(9),
                    ..header
                },
                7,
            ),
            domain.digest(&header, 9),
        ];
        for variant in variants {
            assert_ne!(variant, base);
        }
    }
}
