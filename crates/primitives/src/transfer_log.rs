//! The UTXO-like transfer log (docs/protocol.md, "The transfer log").
//!
//! Every native value movement gets a synthetic log from [`TRANSFER_LOG_ADDRESS`]
//! carrying the balances of both sides before (`input1`, `input2`) and after
//! (`output1`, `output2`). Because each account's `output` equals its next `input`, a
//! wallet or auditor can follow every wei like a chain of spent outputs.
//!
//! Fees: the tip goes to the block's coinbase; the burned base fee is logged as a
//! transfer to the zero address, whose balance does not change (`input2 == output2`).

use alloy::primitives::{Address, Log, LogData, U256, address};
use alloy::sol;
use alloy::sol_types::SolEvent;

/// The reserved address the transfer log is emitted from; also the `token` topic for
/// the native coin.
pub const TRANSFER_LOG_ADDRESS: Address = address!("0000000000000000000000000000000000001010");

/// Receiver of burned base fees in the fee log.
pub const BURN_ADDRESS: Address = Address::ZERO;

sol! {
    /// A native value transfer (top-level, internal call, create or selfdestruct).
    #[derive(Debug, PartialEq, Eq)]
    event LogTransfer(address indexed token, address indexed from, address indexed to, uint256 amount, uint256 input1, uint256 input2, uint256 output1, uint256 output2);
    /// A fee payment (tip to the producer, base fee burned).
    #[derive(Debug, PartialEq, Eq)]
    event LogFeeTransfer(address indexed token, address indexed from, address indexed to, uint256 amount, uint256 input1, uint256 input2, uint256 output1, uint256 output2);
}

/// One recorded native value movement with the balances around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    pub from: Address,
    pub to: Address,
    pub amount: U256,
    pub from_before: U256,
    pub to_before: U256,
    pub from_after: U256,
    pub to_after: U256,
}

impl Transfer {
    /// The `LogTransfer` log for a value transfer.
    pub fn value_log(&self) -> Log {
        self.log(LogTransfer::SIGNATURE_HASH)
    }

    /// The `LogFeeTransfer` log for a fee payment.
    pub fn fee_log(&self) -> Log {
        self.log(LogFeeTransfer::SIGNATURE_HASH)
    }

    fn log(&self, topic0: alloy::primitives::B256) -> Log {
        let topics = vec![
            topic0,
            TRANSFER_LOG_ADDRESS.into_word(),
            self.from.into_word(),
            self.to.into_word(),
        ];
        let mut data = Vec::with_capacity(5 * 32);
        for v in [
            self.amount,
            self.from_before,
            self.to_before,
            self.from_after,
            self.to_after,
        ] {
            data.extend_from_slice(&v.to_be_bytes::<32>());
        }
        Log {
            address: TRANSFER_LOG_ADDRESS,
            data: LogData::new_unchecked(topics, data.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_decode_as_the_solidity_event() {
        let t = Transfer {
            from: Address::repeat_byte(1),
            to: Address::repeat_byte(2),
            amount: U256::from(5),
            from_before: U256::from(10),
            to_before: U256::from(1),
            from_after: U256::from(5),
            to_after: U256::from(6),
        };
        let log = t.value_log();
        let ev = LogTransfer::decode_log_data(&log.data).unwrap();
        assert_eq!(ev.token, TRANSFER_LOG_ADDRESS);
        assert_eq!((ev.from, ev.to, ev.amount), (t.from, t.to, t.amount));
        assert_eq!(
            (ev.input1, ev.input2, ev.output1, ev.output2),
            (t.from_before, t.to_before, t.from_after, t.to_after)
        );
        let fee = LogFeeTransfer::decode_log_data(&t.fee_log().data).unwrap();
        assert_eq!(fee.amount, t.amount);
        assert_ne!(LogTransfer::SIGNATURE_HASH, LogFeeTransfer::SIGNATURE_HASH);
    }
}
