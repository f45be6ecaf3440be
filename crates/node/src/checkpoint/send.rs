//! Sending one checkpoint transaction to L1 until it is mined or moot.
//!
//! The nonce is read from the L1 for every submission (the pending count), never cached,
//! so a failed submission or an L1 reorg cannot leave a gap that blocks every later one.
//! The fees are EIP-1559's as the L1 suggests them. A transaction not mined within
//! `bump_after` is replaced (same nonce) with fees raised by [`BUMP_PERCENT`], up to the
//! configured cap; the loop ends when one of the sent transactions is mined, when the
//! checkpoint is accepted through someone else's, or after `give_up_after`.
//!
//! The L1 is reached through [`L1Client`], so that the policy is tested against a
//! simulated L1.

use alloy_primitives::B256;
use std::time::Duration;
use std::time::Instant;

/// A replacement raises both fees by this many percent (L1 nodes want at least 10).
pub(crate) const BUMP_PERCENT: u128 = 25;

/// The EIP-1559 fees of one transaction, in wei per gas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fees {
    pub max_fee: u128,
    pub tip: u128,
}

/// The fees of a replacement for a transaction sent with `prev`, the L1 now suggesting
/// `now`: each at least [`BUMP_PERCENT`] above `prev`'s and at least `now`'s; `None` if
/// the max fee would pass `cap`.
pub(crate) fn replacement_fees(prev: Fees, now: Fees, cap: u128) -> Option<Fees> {
    let bump = |fee: u128| {
        fee.saturating_mul(100u128.saturating_add(BUMP_PERCENT))
            .div_ceil(100)
            .max(fee.saturating_add(1))
    };
    let tip = bump(prev.tip).max(now.tip);
    let max_fee = bump(prev.max_fee).max(now.max_fee).max(tip);
    (max_fee <= cap).then_some(Fees { max_fee, tip })
}

/// A mined transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mined {
    pub tx: B256,
    pub success: bool,
    pub gas_used: u64,
}

/// What sending needs of the L1; `String` errors are for the log.
pub(crate) trait L1Client {
    /// The sender's next nonce, counting its pending transactions.
    async fn nonce(&self) -> Result<u64, String>;
    /// The fees the L1 suggests now.
    async fn fees(&self) -> Result<Fees, String>;
    /// The gas the call needs; `Err` with the reason if it would revert.
    async fn estimate_gas(&self) -> Result<u64, String>;
    /// Signs and sends the call.
    async fn send(&self, nonce: u64, gas: u64, fees: Fees) -> Result<B256, String>;
    /// The receipt of `tx`, once mined.
    async fn mined(&self, tx: B256) -> Result<Option<Mined>, String>;
    /// Whether the checkpoint is on L1 already (through any transaction).
    async fn accepted(&self) -> Result<bool, String>;
}

/// How a submission ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// One of the transactions sent was mined (`replacements` of them replaced the first).
    Mined { mined: Mined, replacements: u32 },
    /// The call would revert (a checkpoint already accepted, say), so nothing was sent.
    Refused(String),
    /// The checkpoint was accepted through another transaction.
    Moot,
    /// The L1 failed or nothing was mined in time.
    Failed(String),
}

/// Settings of [`send_until_mined`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct SendPolicy {
    /// How often receipts and the contract are read.
    pub poll: Duration,
    /// A transaction not mined this long is replaced with higher fees.
    pub bump_after: Duration,
    /// The highest max fee per gas ever offered.
    pub max_fee_cap: u128,
    /// The submission is abandoned after this long (the next staker in rotation has
    /// long taken over by then).
    pub give_up_after: Duration,
}

/// Sends the call and sees it through (see the module docs).
pub(crate) async fn send_until_mined<C: L1Client>(l1: &C, policy: SendPolicy) -> Outcome {
    let started = Instant::now();
    let gas = match l1.estimate_gas().await {
        Ok(gas) => gas,
        Err(reason) => return Outcome::Refused(reason),
    };
    let (nonce, mut fees) = match (l1.nonce().await, l1.fees().await) {
        (Ok(n), Ok(f)) => (n, f),
        (Err(e), _) | (_, Err(e)) => return Outcome::Failed(e),
    };
    if fees.max_fee > policy.max_fee_cap {
        return Outcome::Failed(format!(
            "the L1 asks {} wei per gas, above the cap of {}",
            fees.max_fee, policy.max_fee_cap
        ));
    }
    let mut sent: Vec<B256> = Vec::new();
    loop {
        match l1.send(nonce, gas, fees).await {
            Ok(tx) => {
                if !sent.contains(&tx) {
                    sent.push(tx);
                }
            }
            // a replacement may be refused because an earlier one was just mined
            Err(e) if sent.is_empty() => return Outcome::Failed(e),
            Err(e) => tracing::debug!(error = %e, "replacement not accepted by the L1"),
        }
        let sent_at = Instant::now();
        while sent_at.elapsed() < policy.bump_after {
            tokio::time::sleep(policy.poll).await;
            for tx in &sent {
                if let Ok(Some(mined)) = l1.mined(*tx).await {
                    let replacements =
                        u32::try_from(sent.len().saturating_sub(1)).unwrap_or(u32::MAX);
                    return Outcome::Mined {
                        mined,
                        replacements,
                    };
                }
            }
            if l1.accepted().await.unwrap_or(false) {
                return Outcome::Moot;
            }
            if started.elapsed() > policy.give_up_after {
                return Outcome::Failed(format!("not mined within {:?}", policy.give_up_after));
            }
        }
        let now = l1.fees().await.unwrap_or(fees);
        match replacement_fees(fees, now, policy.max_fee_cap) {
            Some(higher) => {
                tracing::warn!(
                    nonce,
                    max_fee = higher.max_fee,
                    tip = higher.tip,
                    waited_ms = u64::try_from(policy.bump_after.as_millis()).unwrap_or(u64::MAX),
                    "checkpoint transaction not mined; replacing it with higher fees"
                );
                fees = higher;
            }
            None => tracing::debug!(nonce, "checkpoint transaction at the fee cap; waiting"),
        }
    }
}

/// [`L1Client`] over an alloy provider that signs with the submitter's key (and fills
/// nothing itself: nonce, gas and fees are set here).
pub(crate) struct AlloyL1 {
    pub provider: alloy::providers::DynProvider,
    pub from: alloy_primitives::Address,
    pub root_chain: alloy_primitives::Address,
    pub chain_id: u64,
    pub input: alloy_primitives::Bytes,
    /// The checkpoint number being submitted.
    pub number: u64,
}

impl AlloyL1 {
    fn request(&self) -> alloy::rpc::types::TransactionRequest {
        alloy::rpc::types::TransactionRequest::default()
            .from(self.from)
            .to(self.root_chain)
            .input(self.input.clone().into())
    }
}

impl L1Client for AlloyL1 {
    async fn nonce(&self) -> Result<u64, String> {
        use alloy::providers::Provider as _;
        self.provider
            .get_transaction_count(self.from)
            .pending()
            .await
            .map_err(|e| e.to_string())
    }

    async fn fees(&self) -> Result<Fees, String> {
        use alloy::providers::Provider as _;
        let estimate = self
            .provider
            .estimate_eip1559_fees()
            .await
            .map_err(|e| e.to_string())?;
        Ok(Fees {
            max_fee: estimate.max_fee_per_gas,
            tip: estimate.max_priority_fee_per_gas,
        })
    }

    async fn estimate_gas(&self) -> Result<u64, String> {
        use alloy::providers::Provider as _;
        match self.provider.estimate_gas(self.request()).await {
            // a margin over the estimate (an absent staker's key read may cost more
            // than estimated when the set changes in between)
            Ok(gas) => Ok(gas.saturating_add(gas / 5)),
            Err(e) => Err(koma_l1::revert_reason(
                &alloy::contract::Error::TransportError(e),
            )),
        }
    }

    async fn send(&self, nonce: u64, gas: u64, fees: Fees) -> Result<B256, String> {
        use alloy::network::TransactionBuilder as _;
        use alloy::providers::Provider as _;
        let tx = self
            .request()
            .with_nonce(nonce)
            .with_gas_limit(gas)
            .with_chain_id(self.chain_id)
            .with_max_fee_per_gas(fees.max_fee)
            .with_max_priority_fee_per_gas(fees.tip);
        self.provider
            .send_transaction(tx)
            .await
            .map(|pending| *pending.tx_hash())
            .map_err(|e| e.to_string())
    }

    async fn mined(&self, tx: B256) -> Result<Option<Mined>, String> {
        use alloy::providers::Provider as _;
        let receipt = self
            .provider
            .get_transaction_receipt(tx)
            .await
            .map_err(|e| e.to_string())?;
        Ok(receipt.map(|r| Mined {
            tx,
            success: r.status(),
            gas_used: r.gas_used,
        }))
    }

    async fn accepted(&self) -> Result<bool, String> {
        let root = koma_l1::bindings::RootChain::new(self.root_chain, &self.provider);
        let head = root.head().call().await.map_err(|e| e.to_string())?;
        Ok(head.checkpointNumber >= alloy_primitives::U256::from(self.number))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    #[test]
    fn replacements_raise_both_fees_enough_and_respect_the_cap() {
        let prev = Fees {
            max_fee: 100,
            tip: 10,
        };
        let quiet = Fees {
            max_fee: 50,
            tip: 1,
        };
        assert_eq!(
            replacement_fees(prev, quiet, 1_000),
            Some(Fees {
                max_fee: 125,
                tip: 13
            })
        );
        // the L1 asking more than the bump: its fees
        let busy = Fees {
            max_fee: 400,
            tip: 20,
        };
        assert_eq!(replacement_fees(prev, busy, 1_000), Some(busy));
        assert_eq!(replacement_fees(prev, busy, 399), None);
        // tiny fees still move (at least +1 wei)
        let tiny = Fees { max_fee: 1, tip: 0 };
        assert_eq!(
            replacement_fees(tiny, tiny, 10),
            Some(Fees { max_fee: 2, tip: 1 })
        );
        // every replacement is at least 10 % above (what geth wants), over many rounds
        let mut fees = Fees { max_fee: 7, tip: 3 };
        for _ in 0..40 {
            let next = replacement_fees(fees, tiny, u128::MAX).unwrap();
            assert!(next.max_fee * 10 >= fees.max_fee * 11 && next.tip * 10 >= fees.tip * 11);
            assert!(next.max_fee >= next.tip);
            fees = next;
        }
    }

    /// An L1 that mines a pending transaction once its max fee reaches `min_fee`, and
    /// whose pending count is what it was when the submission started (nothing mined).
    struct SimL1 {
        min_fee: u128,
        nonce: u64,
        refuse: Option<String>,
        accepted_after_sends: Option<usize>,
        sent: Mutex<Vec<(u64, Fees, B256)>>,
    }

    impl SimL1 {
        fn new(min_fee: u128) -> Self {
            Self {
                min_fee,
                nonce: 7,
                refuse: None,
                accepted_after_sends: None,
                sent: Mutex::new(Vec::new()),
            }
        }
    }

    impl L1Client for SimL1 {
        async fn nonce(&self) -> Result<u64, String> {
            Ok(self.nonce)
        }
        async fn fees(&self) -> Result<Fees, String> {
            Ok(Fees {
                max_fee: 100,
                tip: 2,
            })
        }
        async fn estimate_gas(&self) -> Result<u64, String> {
            self.refuse.clone().map_or(Ok(200_000), Err)
        }
        async fn send(&self, nonce: u64, _gas: u64, fees: Fees) -> Result<B256, String> {
            let mut sent = self.sent.lock();
            // the same transaction again (a rebroadcast at the cap): the same hash
            if let Some((_, _, tx)) = sent.iter().find(|(n, f, _)| *n == nonce && *f == fees) {
                return Ok(*tx);
            }
            let tx = B256::with_last_byte(u8::try_from(sent.len()).unwrap());
            sent.push((nonce, fees, tx));
            Ok(tx)
        }
        async fn mined(&self, tx: B256) -> Result<Option<Mined>, String> {
            let sent = self.sent.lock();
            let paid = sent
                .iter()
                .find(|(_, _, t)| *t == tx)
                .map(|(_, f, _)| f.max_fee);
            Ok(paid.filter(|fee| *fee >= self.min_fee).map(|_| Mined {
                tx,
                success: true,
                gas_used: 182_000,
            }))
        }
        async fn accepted(&self) -> Result<bool, String> {
            Ok(self
                .accepted_after_sends
                .is_some_and(|n| self.sent.lock().len() >= n))
        }
    }

    const POLICY: SendPolicy = SendPolicy {
        poll: Duration::from_millis(2),
        bump_after: Duration::from_millis(20),
        max_fee_cap: 1_000,
        give_up_after: Duration::from_secs(60),
    };

    #[tokio::test]
    async fn a_stuck_transaction_is_replaced_with_the_same_nonce_until_mined() {
        // 100 -> 125 -> 157 -> 197 -> 247: mined at the fourth replacement
        let l1 = SimL1::new(240);
        let outcome = send_until_mined(&l1, POLICY).await;
        let sent = l1.sent.lock().clone();
        assert_eq!(sent.len(), 5);
        assert!(sent.iter().all(|(nonce, _, _)| *nonce == 7));
        assert!(
            sent.windows(2)
                .all(|w| w[1].1.max_fee > w[0].1.max_fee && w[1].1.tip > w[0].1.tip)
        );
        match outcome {
            Outcome::Mined {
                mined,
                replacements,
            } => {
                assert_eq!(replacements, 4);
                assert_eq!(mined.tx, sent[4].2);
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn mined_at_once_is_sent_once() {
        let l1 = SimL1::new(0);
        let outcome = send_until_mined(&l1, POLICY).await;
        assert!(
            matches!(
                outcome,
                Outcome::Mined {
                    replacements: 0,
                    ..
                }
            ),
            "{outcome:?}"
        );
        assert_eq!(l1.sent.lock().len(), 1);
    }

    #[tokio::test]
    async fn at_the_cap_it_waits_and_ends_when_someone_else_submits() {
        let mut l1 = SimL1::new(u128::MAX);
        l1.accepted_after_sends = Some(12);
        let policy = SendPolicy {
            max_fee_cap: 300,
            give_up_after: Duration::from_millis(400),
            ..POLICY
        };
        let started = Instant::now();
        let outcome = send_until_mined(&l1, policy).await;
        // 100, 125, 157, 197, 247 (309 would pass the cap): then the last one is only
        // broadcast again, and the checkpoint never counts as accepted (12 transactions
        // are never reached) until the give-up time
        assert_eq!(l1.sent.lock().len(), 5);
        assert!(matches!(outcome, Outcome::Failed(_)), "{outcome:?}");
        assert!(started.elapsed() >= policy.give_up_after);

        let mut l1 = SimL1::new(u128::MAX);
        l1.accepted_after_sends = Some(2);
        assert_eq!(send_until_mined(&l1, POLICY).await, Outcome::Moot);
    }

    #[tokio::test]
    async fn a_call_that_would_revert_is_not_sent() {
        let mut l1 = SimL1::new(0);
        l1.refuse = Some("NotNextCheckpoint(5, 4)".into());
        assert_eq!(
            send_until_mined(&l1, POLICY).await,
            Outcome::Refused("NotNextCheckpoint(5, 4)".into())
        );
        assert!(l1.sent.lock().is_empty());
    }
}
