//! Development keys: the standard `test … junk` mnemonic used by Hardhat and Anvil.
//!
//! These keys are public knowledge. They exist so that `koma devnet` works with every
//! tool's default accounts; a node refuses nothing on their account, so never use them
//! on a network that holds value.

use alloy::signers::local::{MnemonicBuilder, PrivateKeySigner, coins_bip39::English};
use alloy_primitives::Address;

/// The mnemonic every Ethereum development tool funds by default.
pub const DEV_MNEMONIC: &str = "test test test test test test test test test test test junk";

/// First derivation index used for devnet producer keys, away from the funded accounts.
const PRODUCER_INDEX_BASE: u32 = 100;

fn derive(index: u32) -> PrivateKeySigner {
    // The mnemonic and the derivation path are constants, so derivation cannot fail.
    #[allow(clippy::expect_used)]
    MnemonicBuilder::<English>::default()
        .phrase(DEV_MNEMONIC)
        .index(index)
        .and_then(|b| b.build())
        .expect("constant mnemonic derives")
}

/// The first `n` development accounts (`m/44'/60'/0'/0/i`) with their keys.
pub fn dev_accounts(n: u32) -> Vec<(Address, PrivateKeySigner)> {
    (0..n).map(derive).map(|s| (s.address(), s)).collect()
}

/// The devnet producer key number `i`.
pub fn dev_producer_key(i: u32) -> PrivateKeySigner {
    derive(PRODUCER_INDEX_BASE.saturating_add(i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::address;

    #[test]
    fn matches_anvil_default_accounts() {
        let accs = dev_accounts(2);
        assert_eq!(
            accs[0].0,
            address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
        );
        assert_eq!(
            accs[1].0,
            address!("70997970C51812dc3A010C7d01b50e0d17dc79C8")
        );
    }
}
