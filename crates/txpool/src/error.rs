//! Rejection reasons, worded as geth words them so that wallets and tooling that match on
//! the message (MetaMask, ethers, viem, foundry) behave as they do against Ethereum.

use alloy_primitives::U256;

/// JSON-RPC code geth uses for every transaction-pool rejection.
pub const RPC_CODE_POOL: i32 = -32000;
/// JSON-RPC "invalid params" code, used for input that is not a transaction at all.
pub const RPC_CODE_INVALID_PARAMS: i32 = -32602;

/// Why the pool refused a transaction.
///
/// `Display` is the message an Ethereum client expects; [`PoolError::rpc_code`] is the
/// JSON-RPC error code to send with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The bytes are not an EIP-2718 transaction envelope.
    #[error("failed to decode signed transaction: {0}")]
    Decode(String),
    /// Blob (type 3) or unknown transaction types.
    #[error("transaction type not supported")]
    TxTypeNotSupported,
    /// Legacy transaction signed without an EIP-155 chain id.
    #[error("only replay-protected (EIP-155) transactions allowed over RPC")]
    NotReplayProtected,
    /// Signed for another chain.
    #[error("invalid sender: invalid chain id for signer: have {have} want {want}")]
    InvalidChainId {
        /// Chain id in the transaction.
        have: u64,
        /// This chain's id.
        want: u64,
    },
    /// The signature does not recover (malformed, high-s, r or s out of range).
    #[error("invalid sender")]
    InvalidSender,
    /// The nonce was already used on chain.
    #[error("nonce too low: next nonce {state}, tx nonce {tx}")]
    NonceTooLow {
        /// Account nonce in the latest state.
        state: u64,
        /// Nonce of the transaction.
        tx: u64,
    },
    /// The nonce is so far ahead of the account nonce that the pool will not hold it.
    #[error("nonce too high: next nonce {state}, tx nonce {tx}, max gap {max_gap}")]
    NonceTooHigh {
        /// Account nonce in the latest state.
        state: u64,
        /// Nonce of the transaction.
        tx: u64,
        /// Largest accepted `tx - state`.
        max_gap: u64,
    },
    /// EIP-2681: the nonce cannot be incremented past this transaction.
    #[error("nonce has max value: nonce {0}")]
    NonceMax(u64),
    /// The balance does not cover `value + gas_limit * max_fee_per_gas` of this transaction.
    #[error(
        "insufficient funds for gas * price + value: balance {balance}, tx cost {cost}, overshot {overshot}"
    )]
    InsufficientFunds {
        /// Account balance.
        balance: U256,
        /// Worst-case cost of the transaction.
        cost: U256,
        /// `cost - balance`.
        overshot: U256,
    },
    /// The balance covers this transaction alone but not together with the sender's other
    /// transactions already in the pool.
    #[error(
        "insufficient funds for gas * price + value: balance {balance}, queued cost {queued}, tx cost {cost}, overshot {overshot}"
    )]
    Overdraft {
        /// Account balance.
        balance: U256,
        /// Worst-case cost of the sender's other pooled transactions.
        queued: U256,
        /// Worst-case cost of the transaction.
        cost: U256,
        /// `queued + cost - balance`.
        overshot: U256,
    },
    /// A transaction with the same sender and nonce is pooled and this one does not pay
    /// enough more (both fee cap and tip must rise by the price bump).
    #[error("replacement transaction underpriced")]
    ReplacementUnderpriced,
    /// The priority fee (gas price for legacy transactions) is below the node's minimum.
    #[error("transaction underpriced: gas tip cap {tip}, minimum needed {min}")]
    TipTooLow {
        /// Priority fee of the transaction.
        tip: u128,
        /// Minimum the node accepts.
        min: u128,
    },
    /// The fee cap is below the chain's base fee floor.
    #[error("transaction underpriced: gas fee cap {fee_cap}, minimum needed {min}")]
    FeeCapTooLow {
        /// `max_fee_per_gas` of the transaction.
        fee_cap: u128,
        /// Base fee floor.
        min: u64,
    },
    /// `max_priority_fee_per_gas > max_fee_per_gas`.
    #[error("max priority fee per gas higher than max fee per gas")]
    TipAboveFeeCap,
    /// The same transaction is already pooled.
    #[error("already known")]
    AlreadyKnown,
    /// `gas_limit` below the intrinsic gas of the transaction.
    #[error("intrinsic gas too low: gas {gas}, minimum needed {min}")]
    IntrinsicGasTooLow {
        /// Gas limit of the transaction.
        gas: u64,
        /// Intrinsic gas.
        min: u64,
    },
    /// `gas_limit` below the EIP-7623 calldata floor.
    #[error("insufficient gas for floor data gas cost: gas {gas}, minimum needed {min}")]
    FloorDataGas {
        /// Gas limit of the transaction.
        gas: u64,
        /// EIP-7623 floor.
        min: u64,
    },
    /// EIP-3860: contract-creation code longer than 49152 bytes.
    #[error("max initcode size exceeded: code size {size}, limit {limit}")]
    MaxInitCodeSizeExceeded {
        /// Length of the init code.
        size: usize,
        /// Maximum length.
        limit: usize,
    },
    /// `gas_limit` above the chain's per-transaction cap (EIP-7825): never includable.
    #[error("transaction gas limit too high (cap: {cap}, tx: {gas})")]
    GasLimitTooHigh {
        /// The chain's per-transaction gas cap.
        cap: u64,
        /// Gas limit of the transaction.
        gas: u64,
    },
    /// `gas_limit` above the block gas limit: the transaction could never be included.
    #[error("exceeds block gas limit")]
    ExceedsBlockGasLimit,
    /// Encoded transaction larger than the pool accepts.
    #[error("oversized data: transaction size {size}, limit {limit}")]
    OversizedData {
        /// Encoded size in bytes.
        size: usize,
        /// Maximum size.
        limit: usize,
    },
    /// The pool is at capacity and the transaction does not pay more than the cheapest
    /// transaction it could evict.
    #[error("txpool is full")]
    PoolFull,
    /// The sender already has the maximum number of pooled transactions.
    #[error("account limit exceeded")]
    AccountLimitExceeded,
    /// EIP-7702 transaction without authorizations.
    #[error("EIP-7702 transaction with empty auth list")]
    EmptyAuthList,
}

impl PoolError {
    /// JSON-RPC error code to answer with: `-32602` for input that does not decode,
    /// `-32000` (as geth) for every validation and pool rejection.
    /// Whether the transaction can never become valid whatever the state (bad encoding,
    /// signature, chain id, gas or size rules): a peer that relays it is misbehaving.
    /// Nonce, balance, price and capacity errors depend on the pool and state and are
    /// not held against anyone.
    pub fn is_invalid_transaction(&self) -> bool {
        matches!(
            self,
            Self::Decode(_)
                | Self::TxTypeNotSupported
                | Self::InvalidChainId { .. }
                | Self::InvalidSender
                | Self::NonceMax(_)
                | Self::TipAboveFeeCap
                | Self::IntrinsicGasTooLow { .. }
                | Self::FloorDataGas { .. }
                | Self::MaxInitCodeSizeExceeded { .. }
                | Self::GasLimitTooHigh { .. }
                | Self::ExceedsBlockGasLimit
                | Self::OversizedData { .. }
                | Self::EmptyAuthList
        )
    }

    pub fn rpc_code(&self) -> i32 {
        match self {
            Self::Decode(_) => RPC_CODE_INVALID_PARAMS,
            _ => RPC_CODE_POOL,
        }
    }
}
