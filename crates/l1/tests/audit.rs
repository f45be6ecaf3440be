//! Property tests of the bridge audit: random deposits, L2 transfers, withdrawals,
//! exits, L1 reorgs and L2 reorgs keep the books balanced to the wei at every L2 block
//! of the canonical chain, and every kind of corruption (a mint without a lock, a
//! deposit applied twice, a phantom deposit, an exit paid twice or altered, a lock
//! taken without an exit) is caught.
//!
//! The chains are a model: the L1 is a log of bridge events that a reorg can shorten,
//! the L2 a list of blocks whose state is replayed, with a final prefix no reorg goes
//! below and exits only for withdrawals in final blocks (what checkpoints allow).

use alloy_primitives::{Address, B256, U256};
use koma_l1::audit::{L1Books, L1DepositEntry, L1Exit, L2Books, audit};
use koma_primitives::bridge::{
    ETH_TOKEN, KMC_TOKEN, L2_BRIDGE_ADDRESS, Withdrawal, next_state_hash,
};
use proptest::prelude::*;

const ERC20: Address = Address::repeat_byte(0x77);
const TOKENS: [Address; 3] = [KMC_TOKEN, ETH_TOKEN, ERC20];
/// Native KMC circulating in the L2 genesis, locked on L1 at deployment.
const GENESIS: u64 = 1_000_000;

#[derive(Debug, Clone)]
enum Op {
    /// Lock `amount` of a token on L1 (a new state message).
    Deposit { token: usize, amount: u64 },
    /// The L2 produces a block applying up to `count` pending deposits.
    Apply { count: usize },
    /// An L2 block with transfers between users and burned fees: the supply is unchanged.
    Transfer,
    /// An L2 block burning `share`/256 of what is issued of a token.
    Withdraw { token: usize, share: u8 },
    /// Everything produced so far becomes final.
    Finalize,
    /// Exit one of the final, unpaid withdrawals on L1.
    Exit { pick: usize },
    /// The L1 drops its last `depth` events: deposits not yet applied on L2, and exits.
    L1Reorg { depth: usize },
    /// The L2 drops its last `depth` blocks above the final one.
    L2Reorg { depth: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..3usize, 1..1_000_000u64).prop_map(|(token, amount)| Op::Deposit { token, amount }),
        3 => (0..4usize).prop_map(|count| Op::Apply { count }),
        1 => Just(Op::Transfer),
        3 => (0..3usize, any::<u8>()).prop_map(|(token, share)| Op::Withdraw { token, share }),
        2 => Just(Op::Finalize),
        2 => any::<usize>().prop_map(|pick| Op::Exit { pick }),
        1 => (1..4usize).prop_map(|depth| Op::L1Reorg { depth }),
        1 => (1..4usize).prop_map(|depth| Op::L2Reorg { depth }),
    ]
}

#[derive(Debug, Clone)]
enum L1Event {
    Deposit(L1DepositEntry),
    Exit(L1Exit),
}

/// What one L2 block did.
#[derive(Debug, Clone)]
enum L2Block {
    Apply(usize),
    Transfer,
    Withdraw(Address, U256),
}

#[derive(Debug, Default)]
struct World {
    l1: Vec<L1Event>,
    l2: Vec<L2Block>,
    final_len: usize,
}

impl World {
    fn l1_books(&self) -> L1Books {
        let mut books = L1Books {
            block: u64::try_from(self.l1.len()).unwrap(),
            ..L1Books::default()
        };
        books.locked.insert(KMC_TOKEN, U256::from(GENESIS));
        for event in &self.l1 {
            match event {
                L1Event::Deposit(d) => {
                    *books.locked.entry(d.token).or_default() += d.amount;
                    books.deposits.push(d.clone());
                }
                L1Event::Exit(e) => {
                    *books.locked.entry(e.token).or_default() -= e.amount;
                    books.exits.push(e.clone());
                }
            }
        }
        books.held = books.locked.clone();
        books
    }

    fn l1_deposits(&self) -> Vec<&L1DepositEntry> {
        self.l1
            .iter()
            .filter_map(|e| match e {
                L1Event::Deposit(d) => Some(d),
                L1Event::Exit(_) => None,
            })
            .collect()
    }

    /// The L2 books after its first `len` blocks.
    fn l2_books(&self, len: usize) -> L2Books {
        let deposits = self.l1_deposits();
        let mut books = L2Books {
            block: u64::try_from(len).unwrap(),
            native_issued: U256::from(GENESIS),
            ..L2Books::default()
        };
        for block in &self.l2[..len] {
            match block {
                L2Block::Apply(count) => {
                    for _ in 0..*count {
                        let d = deposits[usize::try_from(books.last_state_id).unwrap()];
                        books.last_state_id += 1;
                        books.last_state_hash = d.state_hash;
                        *issued(&mut books, d.token) += d.amount;
                    }
                }
                L2Block::Transfer => {}
                L2Block::Withdraw(token, amount) => {
                    *issued(&mut books, *token) -= *amount;
                    books.withdrawals.push(Withdrawal {
                        nonce: books.withdrawal_count,
                        sender: Address::repeat_byte(1),
                        recipient: Address::repeat_byte(2),
                        token: *token,
                        amount: *amount,
                    });
                    books.withdrawal_count += U256::from(1);
                }
            }
        }
        books
    }

    fn apply(&mut self, op: &Op) {
        let head = self.l2_books(self.l2.len());
        match *op {
            Op::Deposit { token, amount } => {
                let deposits = self.l1_deposits();
                let id = u64::try_from(deposits.len()).unwrap() + 1;
                let previous = deposits.last().map_or(B256::ZERO, |d| d.state_hash);
                let token = TOKENS[token];
                let data = [token.as_slice(), &U256::from(amount).to_be_bytes::<32>()].concat();
                self.l1.push(L1Event::Deposit(L1DepositEntry {
                    id,
                    token,
                    amount: U256::from(amount),
                    state_hash: next_state_hash(previous, id, L2_BRIDGE_ADDRESS, &data),
                }));
            }
            Op::Apply { count } => {
                let pending =
                    self.l1_deposits().len() - usize::try_from(head.last_state_id).unwrap();
                let count = count.min(pending);
                if count > 0 {
                    self.l2.push(L2Block::Apply(count));
                }
            }
            Op::Transfer => self.l2.push(L2Block::Transfer),
            Op::Withdraw { token, share } => {
                let token = TOKENS[token];
                let mut books = head;
                let amount = *issued(&mut books, token) * U256::from(share) / U256::from(256);
                if !amount.is_zero() {
                    self.l2.push(L2Block::Withdraw(token, amount));
                }
            }
            Op::Finalize => self.final_len = self.l2.len(),
            Op::Exit { pick } => {
                let paid: Vec<U256> = self.l1_books().exits.iter().map(|e| e.nonce).collect();
                let open: Vec<Withdrawal> = self
                    .l2_books(self.final_len)
                    .withdrawals
                    .into_iter()
                    .filter(|w| !paid.contains(&w.nonce))
                    .collect();
                if !open.is_empty() {
                    let w = &open[pick % open.len()];
                    self.l1.push(L1Event::Exit(L1Exit {
                        nonce: w.nonce,
                        recipient: w.recipient,
                        token: w.token,
                        amount: w.amount,
                    }));
                }
            }
            Op::L1Reorg { depth } => {
                // confirmations protect what the L2 applied: a reorg stops at an applied deposit
                let applied = usize::try_from(head.last_state_id).unwrap();
                for _ in 0..depth {
                    let deposits = self.l1_deposits().len();
                    match self.l1.last() {
                        Some(L1Event::Deposit(_)) if deposits > applied => {}
                        Some(L1Event::Exit(_)) => {}
                        _ => break,
                    }
                    self.l1.pop();
                }
            }
            Op::L2Reorg { depth } => {
                let keep = self.l2.len().saturating_sub(depth).max(self.final_len);
                self.l2.truncate(keep);
            }
        }
    }
}

fn issued(books: &mut L2Books, token: Address) -> &mut U256 {
    if token == KMC_TOKEN {
        &mut books.native_issued
    } else {
        books.child_supply.entry(token).or_default()
    }
}

/// Ways the books can be cooked, each of which the audit must catch.
#[derive(Debug, Clone, Copy)]
enum Corruption {
    /// L2 issues tokens no deposit locked.
    MintWithoutLock,
    /// L2 applies a deposit's amount a second time.
    AppliedTwice,
    /// L1 loses a deposit the L2 applied (a reorg deeper than the confirmations).
    Phantom,
    /// L1 pays a withdrawal a second time.
    ExitedTwice,
    /// L1 pays more than the withdrawal was for.
    ExitAltered,
    /// The L1 bridge's tokens leave without an exit.
    Drained,
}

fn corruption() -> impl Strategy<Value = Corruption> {
    prop_oneof![
        Just(Corruption::MintWithoutLock),
        Just(Corruption::AppliedTwice),
        Just(Corruption::Phantom),
        Just(Corruption::ExitedTwice),
        Just(Corruption::ExitAltered),
        Just(Corruption::Drained),
    ]
}

/// Cooks the books at the L2 head; `None` when the history has nothing to corrupt.
fn corrupt(world: &World, how: Corruption, pick: usize) -> Option<(L1Books, L2Books)> {
    let mut l1 = world.l1_books();
    let mut l2 = world.l2_books(world.l2.len());
    match how {
        Corruption::MintWithoutLock => {
            *issued(&mut l2, TOKENS[pick % 3]) += U256::from(1);
        }
        Corruption::AppliedTwice => {
            let applied = usize::try_from(l2.last_state_id).ok()?;
            if applied == 0 {
                return None;
            }
            let d = l1.deposits.get(pick % applied)?.clone();
            *issued(&mut l2, d.token) += d.amount;
        }
        Corruption::Phantom => {
            // the L1 loses the last deposit the L2 applied, and everything after it
            let keep = usize::try_from(l2.last_state_id).ok()?.checked_sub(1)?;
            for d in l1.deposits.drain(keep..) {
                *l1.locked.get_mut(&d.token)? -= d.amount;
                *l1.held.get_mut(&d.token)? -= d.amount;
            }
        }
        Corruption::ExitedTwice => {
            let e = l1.exits.get(pick % l1.exits.len().max(1))?.clone();
            *l1.locked.get_mut(&e.token)? -= e.amount;
            *l1.held.get_mut(&e.token)? -= e.amount;
            l1.exits.push(e);
        }
        Corruption::ExitAltered => {
            let n = l1.exits.len().max(1);
            let e = l1.exits.get_mut(pick % n)?;
            e.amount += U256::from(1);
            let token = e.token;
            *l1.locked.get_mut(&token)? -= U256::from(1);
            *l1.held.get_mut(&token)? -= U256::from(1);
        }
        Corruption::Drained => {
            let token = TOKENS[pick % 3];
            let locked = l1.locked.get_mut(&token)?;
            if locked.is_zero() {
                return None;
            }
            *locked -= U256::from(1);
            *l1.held.get_mut(&token)? -= U256::from(1);
        }
    }
    Some((l1, l2))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_books_balance_at_every_block_through_reorgs(ops in prop::collection::vec(op(), 1..80)) {
        let mut world = World::default();
        for (step, op) in ops.iter().enumerate() {
            world.apply(op);
            let l1 = world.l1_books();
            for len in 0..=world.l2.len() {
                let a = audit(&l1, &world.l2_books(len));
                prop_assert!(a.balanced, "step {step} ({op:?}), L2 block {len}: {a:#?}");
                prop_assert!(a.tokens.iter().all(|t| t.surplus == "0"), "{a:#?}");
            }
        }
        // after everything is applied, final and exited, nothing is pending
        world.apply(&Op::Apply { count: usize::MAX });
        world.apply(&Op::Finalize);
        while world.l1_books().exits.len() < world.l2_books(world.l2.len()).withdrawals.len() {
            world.apply(&Op::Exit { pick: 0 });
        }
        let a = audit(&world.l1_books(), &world.l2_books(world.l2.len()));
        prop_assert!(a.balanced, "{a:#?}");
        for t in &a.tokens {
            prop_assert_eq!(t.pending_deposits, U256::ZERO);
            prop_assert_eq!(t.pending_exits, U256::ZERO);
            prop_assert_eq!(t.locked, t.issued);
        }
    }

    #[test]
    fn every_corruption_is_caught(
        ops in prop::collection::vec(op(), 1..60),
        how in corruption(),
        pick in any::<usize>(),
    ) {
        let mut world = World::default();
        for op in &ops {
            world.apply(op);
        }
        let cooked = corrupt(&world, how, pick);
        prop_assume!(cooked.is_some(), "nothing to corrupt in this history");
        let (l1, l2) = cooked.unwrap();
        let a = audit(&l1, &l2);
        prop_assert!(!a.balanced, "{how:?} went unnoticed: {a:#?}");
    }
}

#[test]
fn a_surplus_is_reported_but_not_a_problem() {
    let mut world = World::default();
    world.apply(&Op::Deposit {
        token: 1,
        amount: 10,
    });
    world.apply(&Op::Apply { count: 1 });
    let mut l1 = world.l1_books();
    // ether forced into the L1 bridge: held above locked, books still balanced
    *l1.held.get_mut(&ETH_TOKEN).unwrap() += U256::from(5);
    let a = audit(&l1, &world.l2_books(world.l2.len()));
    assert!(a.balanced, "{a:#?}");
    // L1 locks more than L2 issued (native KMC forced into the L2 bridge's reserve)
    let mut l2 = world.l2_books(world.l2.len());
    l2.native_issued -= U256::from(3);
    let a = audit(&world.l1_books(), &l2);
    assert!(!a.balanced && a.problems.is_empty(), "{a:#?}");
    let kmc = a.tokens.iter().find(|t| t.token == KMC_TOKEN).unwrap();
    assert_eq!(kmc.surplus, "3");
    assert!(!kmc.short());
}
