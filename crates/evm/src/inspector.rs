//! Records every native value transfer of a transaction, in execution order and
//! interleaved with the contract logs, for the transfer log (docs/protocol.md).
//!
//! Each call/create frame keeps its own list of items (transfers and placeholders for
//! contract logs). A frame that succeeds hands its items to its parent; a frame that
//! reverts or halts drops them, exactly as the EVM drops that frame's logs and value
//! movements. Balances are read right after the transfer happened (when the callee's
//! interpreter starts, or when a code-less callee returns), so `before`/`after` are
//! exact even if the callee moves value on.

use alloy_primitives::{Address, U256};
use koma_primitives::transfer_log::Transfer;
use revm::context_interface::{ContextTr, JournalTr};
use revm::inspector::Inspector;
use revm::interpreter::interpreter::EthInterpreter;
use revm::interpreter::{CallInputs, CallOutcome, CreateInputs, CreateOutcome, Interpreter};
use revm::primitives::Log;

/// One entry of a frame's output, in order.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Item {
    /// A contract log (the `n`-th surviving log of the transaction, in order).
    ContractLog,
    Transfer(Transfer),
}

#[derive(Debug, Default)]
struct Frame {
    items: Vec<Item>,
    /// A value transfer into this frame whose balances are not recorded yet.
    pending: Option<(Address, Option<Address>, U256)>,
    /// A SELFDESTRUCT executed in this frame: (contract, beneficiary, value).
    selfdestruct: Option<(Address, Address, U256)>,
}

/// Collects transfers for one transaction.
#[derive(Debug, Default)]
pub struct TransferInspector {
    frames: Vec<Frame>,
    /// Surviving items of the finished top-level frame.
    done: Vec<Item>,
    /// The transaction sender and the gas prepayment revm holds back from its balance
    /// during execution; added back so the sender's balances chain correctly into the
    /// fee log that follows.
    sender: Address,
    prepaid: U256,
}

impl TransferInspector {
    /// Resets for a new transaction.
    pub fn begin(&mut self, sender: Address, prepaid: U256) {
        self.frames.clear();
        self.done.clear();
        self.sender = sender;
        self.prepaid = prepaid;
    }

    pub(crate) fn take_items(&mut self) -> Vec<Item> {
        self.frames.clear();
        std::mem::take(&mut self.done)
    }

    fn balance<CTX: ContextTr>(ctx: &mut CTX, address: Address) -> U256 {
        // Both sides of a transfer are already loaded (and warm) when this runs, so
        // this does not change EIP-2929 access status.
        ctx.journal_mut()
            .load_account(address)
            .map(|a| a.data.info.balance)
            .unwrap_or_default()
    }

    fn adjusted(&self, address: Address, balance: U256) -> U256 {
        if address == self.sender {
            balance.saturating_add(self.prepaid)
        } else {
            balance
        }
    }

    /// Builds the transfer from balances read after it happened.
    fn record<CTX: ContextTr>(
        &self,
        ctx: &mut CTX,
        from: Address,
        to: Address,
        amount: U256,
    ) -> Transfer {
        let from_after = self.adjusted(from, Self::balance(ctx, from));
        let to_after = self.adjusted(to, Self::balance(ctx, to));
        if from == to {
            return Transfer {
                from,
                to,
                amount,
                from_before: from_after,
                to_before: to_after,
                from_after,
                to_after,
            };
        }
        Transfer {
            from,
            to,
            amount,
            from_before: from_after.saturating_add(amount),
            to_before: to_after.saturating_sub(amount),
            from_after,
            to_after,
        }
    }

    fn flush_pending<CTX: ContextTr>(&mut self, ctx: &mut CTX, to_hint: Option<Address>) {
        let Some(frame) = self.frames.last_mut() else {
            return;
        };
        let Some((from, to, amount)) = frame.pending.take() else {
            return;
        };
        let Some(to) = to.or(to_hint) else { return };
        let t = self.record(ctx, from, to, amount);
        if let Some(frame) = self.frames.last_mut() {
            frame.items.push(Item::Transfer(t));
        }
    }

    fn end_frame<CTX: ContextTr>(
        &mut self,
        ctx: &mut CTX,
        success: bool,
        created: Option<Address>,
    ) {
        if success {
            self.flush_pending(ctx, created);
            let sd = self.frames.last_mut().and_then(|f| f.selfdestruct.take());
            if let Some((contract, target, value)) = sd {
                let t = self.record(ctx, contract, target, value);
                if let Some(frame) = self.frames.last_mut() {
                    frame.items.push(Item::Transfer(t));
                }
            }
        }
        let Some(frame) = self.frames.pop() else {
            return;
        };
        if !success {
            return;
        }
        match self.frames.last_mut() {
            Some(parent) => parent.items.extend(frame.items),
            None => self.done = frame.items,
        }
    }
}

impl<CTX: ContextTr> Inspector<CTX, EthInterpreter> for TransferInspector {
    fn initialize_interp(&mut self, interp: &mut Interpreter<EthInterpreter>, context: &mut CTX) {
        let target = interp.input.target_address;
        self.flush_pending(context, Some(target));
    }

    fn log(&mut self, _context: &mut CTX, _log: Log) {
        if let Some(frame) = self.frames.last_mut() {
            frame.items.push(Item::ContractLog);
        }
    }

    fn call(&mut self, _context: &mut CTX, inputs: &mut CallInputs) -> Option<CallOutcome> {
        let value = inputs.transfer_value().unwrap_or_default();
        let pending =
            (!value.is_zero()).then_some((inputs.caller, Some(inputs.target_address), value));
        self.frames.push(Frame {
            pending,
            ..Default::default()
        });
        None
    }

    fn call_end(&mut self, context: &mut CTX, _inputs: &CallInputs, outcome: &mut CallOutcome) {
        let ok = outcome.result.result.is_ok();
        self.end_frame(context, ok, None);
    }

    fn create(&mut self, _context: &mut CTX, inputs: &mut CreateInputs) -> Option<CreateOutcome> {
        let value = inputs.value();
        let pending = (!value.is_zero()).then_some((inputs.caller(), None, value));
        self.frames.push(Frame {
            pending,
            ..Default::default()
        });
        None
    }

    fn create_end(
        &mut self,
        context: &mut CTX,
        _inputs: &CreateInputs,
        outcome: &mut CreateOutcome,
    ) {
        let ok = outcome.result.result.is_ok();
        self.end_frame(context, ok, outcome.address);
    }

    fn selfdestruct(&mut self, contract: Address, target: Address, value: U256) {
        if value.is_zero() {
            return;
        }
        if let Some(frame) = self.frames.last_mut() {
            frame.selfdestruct = Some((contract, target, value));
        }
    }
}
