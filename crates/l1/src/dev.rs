//! The development L1 of `koma devnet` and the devnet stakers' L1 identities.
//!
//! The development L1 is a KOMA node in its own chain: one producer, no finality layer
//! (its head is final), Prague rules, a block every second, the standard development
//! accounts funded. Everything about it is public: never use these keys elsewhere.

use alloy_primitives::{Address, U256, keccak256};
use koma_checkpoint::SecretKey;
use koma_primitives::{ChainSpec, GenesisAccount};

/// Chain id of the development L1 (the one local development chains conventionally use).
pub const DEV_L1_CHAIN_ID: u64 = 1337;

/// KMC each devnet staker locks on the development L1.
pub fn dev_stake() -> U256 {
    U256::from(1_000u64) * U256::from(10u64).pow(U256::from(18u64))
}

/// The devnet staker `i`'s BLS key: derived from a public seed, like every devnet key.
pub fn dev_bls_key(i: u32) -> SecretKey {
    let ikm = keccak256(format!("koma devnet BLS key {i}"));
    // 32 bytes of key material always satisfy key_gen
    #[allow(clippy::expect_used)]
    SecretKey::key_gen(ikm.as_slice()).expect("32 bytes of key material")
}

/// The chain spec of the development L1: produced by `producer`, with the L2 devnet's
/// funded accounts (the standard development mnemonic) and `also_funded` (the stakers,
/// which pay their own L1 gas) holding 10,000 ETH each.
pub fn dev_l1_spec(producer: Address, also_funded: &[Address]) -> ChainSpec {
    let mut spec = ChainSpec::devnet();
    spec.name = "koma-l1-devnet".into();
    spec.chain_id = DEV_L1_CHAIN_ID;
    spec.block_time_ms = 1000;
    spec.producers.producers = vec![producer];
    spec.consensus = None;
    let balance = U256::from(10_000u64) * U256::from(10u64).pow(U256::from(18u64));
    for addr in also_funded {
        spec.alloc.entry(*addr).or_insert(GenesisAccount {
            balance,
            nonce: 0,
            code: None,
            storage: Default::default(),
        });
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_l1_spec_is_valid_and_funds_the_stakers() {
        let staker = Address::repeat_byte(9);
        let spec = dev_l1_spec(Address::repeat_byte(1), &[staker]);
        spec.validate().unwrap();
        assert_eq!(spec.chain_id, DEV_L1_CHAIN_ID);
        assert!(spec.consensus.is_none());
        assert!(spec.alloc[&staker].balance > U256::ZERO);
    }

    #[test]
    fn dev_bls_keys_are_fixed_and_distinct() {
        let a = dev_bls_key(0).public_key().to_compressed();
        assert_eq!(a, dev_bls_key(0).public_key().to_compressed());
        assert_ne!(a, dev_bls_key(1).public_key().to_compressed());
    }
}
