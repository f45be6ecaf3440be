//! The pool's account reader over the chain database.

use crate::{AccountInfoLite, AccountReader};
use alloy_primitives::{Address, U256};
use koma_storage::Database;

/// The pool's view of the latest state.
#[derive(Debug, Clone)]
pub struct PoolStateView(pub Database);

impl AccountReader for PoolStateView {
    fn account(&self, address: Address) -> AccountInfoLite {
        match self.0.account(address) {
            Ok(Some(a)) => AccountInfoLite {
                nonce: a.nonce,
                balance: a.balance,
            },
            Ok(None) => AccountInfoLite {
                nonce: 0,
                balance: U256::ZERO,
            },
            Err(e) => {
                tracing::error!(%address, error = %e, "state read failed in pool validation");
                AccountInfoLite {
                    nonce: u64::MAX,
                    balance: U256::ZERO,
                }
            }
        }
    }
}
