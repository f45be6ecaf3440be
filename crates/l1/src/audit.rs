//! The bridge's books: what the L1 bridge holds against what the L2 owes, token by token.
//!
//! For every token id the L1 bridge's `locked[token]` must equal what it owes:
//!
//! ```text
//! locked on L1 = issued on L2 + pending deposits + pending exits - exited ahead
//! ```
//!
//! - **issued on L2** at the audited L2 block: a child token's `totalSupply()`; for KMC
//!   the genesis allocation's circulating supply plus what left the L2 bridge's reserve
//!   (burned base fees are part of it: they were issued, and their backing stays locked);
//! - **pending deposits**: locked on L1 by a state message the audited block has not
//!   applied yet;
//! - **pending exits**: burned on L2 at or before the audited block, not yet paid on L1;
//! - **exited ahead**: paid on L1 for a withdrawal made after the audited block (an
//!   audit of an older block sees exits its withdrawals had not asked for yet).
//!
//! The two sides are read independently ([`L1Books`] from the L1 alone, [`L2Books`] from
//! the L2 alone) and [`audit`] only compares them, so a deposit applied twice or never, a
//! mint without a lock, an exit paid twice or for a forged withdrawal, all show as a
//! difference or a problem.

use alloy_primitives::{Address, B256, U256};
use koma_primitives::bridge::{KMC_TOKEN, Withdrawal};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One deposit as the L1 bridge emitted it (state message `id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L1DepositEntry {
    pub id: u64,
    pub token: Address,
    pub amount: U256,
    /// The L1 hash chain through this message.
    pub state_hash: B256,
}

/// One exit the L1 bridge paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L1Exit {
    pub nonce: U256,
    pub recipient: Address,
    pub token: Address,
    pub amount: U256,
}

/// The L1 side at one L1 block.
#[derive(Debug, Clone, Default)]
pub struct L1Books {
    pub block: u64,
    /// `Bridge.locked(token)` for the tokens of interest.
    pub locked: BTreeMap<Address, U256>,
    /// What the bridge contract holds of each token (its ether balance, `balanceOf`).
    pub held: BTreeMap<Address, U256>,
    /// Every state message, in id order from 1.
    pub deposits: Vec<L1DepositEntry>,
    /// Every exit paid.
    pub exits: Vec<L1Exit>,
}

/// The L2 side at one L2 block.
#[derive(Debug, Clone, Default)]
pub struct L2Books {
    pub block: u64,
    /// `L2Bridge.lastStateId()` and `lastStateHash()`.
    pub last_state_id: u64,
    pub last_state_hash: B256,
    /// `L2Bridge.withdrawalCount()`: withdrawals have nonces below it.
    pub withdrawal_count: U256,
    /// Every withdrawal up to this block.
    pub withdrawals: Vec<Withdrawal>,
    /// Native KMC issued: genesis circulating + (reserve at genesis - reserve now, less
    /// what the bridge keeps for recipients that refused a deposit).
    pub native_issued: U256,
    /// `totalSupply()` of each child token, by L1 token id.
    pub child_supply: BTreeMap<Address, U256>,
}

/// One token's books.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenBooks {
    /// The L1 token id.
    pub token: Address,
    /// `Bridge.locked(token)`.
    pub locked: U256,
    /// What the L1 bridge holds of it.
    pub held: U256,
    pub issued: U256,
    pub pending_deposits: U256,
    pub pending_exits: U256,
    pub exited_ahead: U256,
    /// `locked + exited ahead - (issued + pending deposits + pending exits)`: zero when
    /// the books balance, positive when L1 holds more than L2 can claim (ether forced
    /// into the L2 bridge, a surplus nobody can withdraw), negative when L2 can claim
    /// more than L1 holds.
    pub surplus: String,
}

impl TokenBooks {
    /// `(backing, claims)`: `locked + exited ahead` and `issued + pending`.
    fn sides(&self) -> (U256, U256) {
        (
            self.locked.saturating_add(self.exited_ahead),
            self.issued
                .saturating_add(self.pending_deposits)
                .saturating_add(self.pending_exits),
        )
    }

    pub fn balanced(&self) -> bool {
        let (backing, claims) = self.sides();
        backing == claims
    }

    /// L2 can claim more than L1 holds.
    pub fn short(&self) -> bool {
        let (backing, claims) = self.sides();
        backing < claims || self.held < self.locked
    }
}

/// The audit of one L2 block against one L1 block.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Audit {
    pub l1_block: u64,
    pub l2_block: u64,
    /// State messages on L1, and applied by the audited L2 block.
    pub deposits_on_l1: u64,
    pub deposits_applied: u64,
    /// Withdrawals up to the audited block, and how many of those were paid on L1.
    pub withdrawals: u64,
    pub exited: u64,
    pub tokens: Vec<TokenBooks>,
    /// What does not add up, in words; empty when every check passes.
    pub problems: Vec<String>,
    /// True when there is no problem and every token balances to the wei.
    pub balanced: bool,
}

/// Compares the two sides (see the module's documentation).
pub fn audit(l1: &L1Books, l2: &L2Books) -> Audit {
    let mut problems = Vec::new();
    let applied = l2.last_state_id;

    // Deposits: the L2 applied a prefix of L1's messages, the same ones.
    let on_l1 = u64::try_from(l1.deposits.len()).unwrap_or(u64::MAX);
    for (i, d) in l1.deposits.iter().enumerate() {
        let expected = u64::try_from(i).unwrap_or(u64::MAX).saturating_add(1);
        if d.id != expected {
            problems.push(format!(
                "L1 state message {} where {expected} was expected",
                d.id
            ));
            break;
        }
    }
    if applied > on_l1 {
        problems.push(format!(
            "L2 applied {applied} deposits but L1 has only {on_l1} state messages (a deposit that L1 no longer has)"
        ));
    } else if applied > 0 {
        let through = l1
            .deposits
            .get(usize::try_from(applied.saturating_sub(1)).unwrap_or(usize::MAX))
            .map(|d| d.state_hash);
        if through != Some(l2.last_state_hash) {
            problems.push(format!(
                "L2's deposit hash chain through id {applied} is {} but L1's is {}",
                l2.last_state_hash,
                through.map_or_else(|| "missing".to_string(), |h| h.to_string())
            ));
        }
    }

    // Exits: each pays a withdrawal exactly as L2 made it.
    let made: BTreeMap<U256, &Withdrawal> = l2.withdrawals.iter().map(|w| (w.nonce, w)).collect();
    if U256::from(made.len()) != l2.withdrawal_count {
        problems.push(format!(
            "L2 counts {} withdrawals but {} were read",
            l2.withdrawal_count,
            made.len()
        ));
    }
    let mut paid = BTreeSet::new();
    for e in &l1.exits {
        if !paid.insert(e.nonce) {
            problems.push(format!("withdrawal {} was paid twice on L1", e.nonce));
        }
        if let Some(w) = made.get(&e.nonce)
            && (w.token, w.amount, w.recipient) != (e.token, e.amount, e.recipient)
        {
            problems.push(format!(
                "L1 paid {} of {} to {} for withdrawal {}, which L2 made for {} of {} to {}",
                e.amount, e.token, e.recipient, e.nonce, w.amount, w.token, w.recipient
            ));
        }
    }

    let mut tokens: BTreeSet<Address> = [KMC_TOKEN].into();
    tokens.extend(l1.locked.keys());
    tokens.extend(l2.child_supply.keys());
    tokens.extend(l1.deposits.iter().map(|d| d.token));
    tokens.extend(l2.withdrawals.iter().map(|w| w.token));

    let books: Vec<TokenBooks> = tokens
        .into_iter()
        .map(|token| {
            let sum = |amounts: &mut dyn Iterator<Item = U256>| {
                amounts.fold(U256::ZERO, |s, a| s.saturating_add(a))
            };
            let issued = if token == KMC_TOKEN {
                l2.native_issued
            } else {
                l2.child_supply.get(&token).copied().unwrap_or_default()
            };
            let mut b = TokenBooks {
                token,
                locked: l1.locked.get(&token).copied().unwrap_or_default(),
                held: l1.held.get(&token).copied().unwrap_or_default(),
                issued,
                pending_deposits: sum(&mut l1
                    .deposits
                    .iter()
                    .filter(|d| d.token == token && d.id > applied)
                    .map(|d| d.amount)),
                pending_exits: sum(&mut l2
                    .withdrawals
                    .iter()
                    .filter(|w| w.token == token && !paid.contains(&w.nonce))
                    .map(|w| w.amount)),
                exited_ahead: sum(&mut l1
                    .exits
                    .iter()
                    .filter(|e| e.token == token && e.nonce >= l2.withdrawal_count)
                    .map(|e| e.amount)),
                surplus: String::new(),
            };
            let (backing, claims) = b.sides();
            b.surplus = if backing >= claims {
                backing.saturating_sub(claims).to_string()
            } else {
                format!("-{}", claims.saturating_sub(backing))
            };
            b
        })
        .collect();
    for b in &books {
        if b.held < b.locked {
            problems.push(format!(
                "the L1 bridge holds {} of {} but counts {} locked",
                b.held, b.token, b.locked
            ));
        }
        if b.short() && b.held >= b.locked {
            problems.push(format!(
                "{}: L2 can claim {} more than L1 holds",
                b.token,
                b.surplus.trim_start_matches('-')
            ));
        }
    }
    let exited = u64::try_from(
        l2.withdrawals
            .iter()
            .filter(|w| paid.contains(&w.nonce))
            .count(),
    )
    .unwrap_or(u64::MAX);
    let balanced = problems.is_empty() && books.iter().all(TokenBooks::balanced);
    Audit {
        l1_block: l1.block,
        l2_block: l2.block,
        deposits_on_l1: on_l1,
        deposits_applied: applied,
        withdrawals: u64::try_from(l2.withdrawals.len()).unwrap_or(u64::MAX),
        exited,
        tokens: books,
        problems,
        balanced,
    }
}
