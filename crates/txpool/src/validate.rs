//! Checks that need no pool or account state: decoding, type, size, chain id, gas, fee
//! floors, and signature recovery.

use alloy::{
    consensus::{Transaction, TxEnvelope},
    eips::eip2718::Decodable2718,
};
use alloy_primitives::Address;
use revm::{
    context_interface::cfg::GasParams, primitives::eip3860::MAX_INITCODE_SIZE,
    primitives::hardfork::SpecId,
};

use crate::{PoolConfig, PoolError};

/// Typed transactions accepted: EIP-2930, EIP-1559, EIP-7702 (not EIP-4844 blobs).
const SUPPORTED_TYPED: [u8; 3] = [0x01, 0x02, 0x04];

/// Decodes an EIP-2718 envelope as received by `eth_sendRawTransaction`.
pub(crate) fn decode_raw(raw: &[u8], max_size: usize) -> Result<TxEnvelope, PoolError> {
    if raw.len() > max_size {
        return Err(PoolError::OversizedData {
            size: raw.len(),
            limit: max_size,
        });
    }
    // Dispatch on the type byte first: blob transactions come over RPC in a form with
    // sidecar that is not a plain envelope, and are unsupported in any form; other type
    // bytes below 0x80 are types this chain does not know. (Legacy transactions are RLP
    // lists and start with a byte >= 0xc0.)
    match raw.first() {
        None => return Err(PoolError::Decode("empty input".to_string())),
        Some(&ty) if ty < 0x80 && !SUPPORTED_TYPED.contains(&ty) => {
            return Err(PoolError::TxTypeNotSupported);
        }
        Some(_) => {}
    }
    TxEnvelope::decode_2718_exact(raw).map_err(|err| PoolError::Decode(err.to_string()))
}

/// Everything about `tx` that depends only on the transaction and the configuration.
pub(crate) fn validate_stateless(
    tx: &TxEnvelope,
    encoded_len: usize,
    config: &PoolConfig,
    gas_params: &GasParams,
) -> Result<(), PoolError> {
    if tx.is_eip4844() {
        return Err(PoolError::TxTypeNotSupported);
    }
    if encoded_len > config.max_tx_size {
        return Err(PoolError::OversizedData {
            size: encoded_len,
            limit: config.max_tx_size,
        });
    }
    match tx.chain_id() {
        None => return Err(PoolError::NotReplayProtected),
        Some(have) if have != config.chain_id => {
            return Err(PoolError::InvalidChainId {
                have,
                want: config.chain_id,
            });
        }
        Some(_) => {}
    }
    if tx.nonce() == u64::MAX {
        return Err(PoolError::NonceMax(tx.nonce()));
    }
    let input = tx.input();
    if tx.is_create()
        && config.spec.is_enabled_in(SpecId::SHANGHAI)
        && input.len() > MAX_INITCODE_SIZE
    {
        return Err(PoolError::MaxInitCodeSizeExceeded {
            size: input.len(),
            limit: MAX_INITCODE_SIZE,
        });
    }
    // Checked before the block gas limit, as geth does (EIP-7825).
    if tx.gas_limit() > config.max_tx_gas {
        return Err(PoolError::GasLimitTooHigh {
            cap: config.max_tx_gas,
            gas: tx.gas_limit(),
        });
    }
    if tx.gas_limit() > config.block_gas_limit {
        return Err(PoolError::ExceedsBlockGasLimit);
    }
    let fee_cap = tx.max_fee_per_gas();
    let tip = tx.priority_fee_or_price();
    if tip > fee_cap {
        return Err(PoolError::TipAboveFeeCap);
    }
    if tx.is_eip7702() && tx.authorization_list().is_none_or(|list| list.is_empty()) {
        return Err(PoolError::EmptyAuthList);
    }

    let (accounts, storage_keys) = tx.access_list().map_or((0, 0), |list| {
        list.iter().fold((0u64, 0u64), |(accounts, keys), item| {
            (
                accounts.saturating_add(1),
                keys.saturating_add(item.storage_keys.len() as u64),
            )
        })
    });
    let authorizations = tx.authorization_list().map_or(0, |list| list.len() as u64);
    let gas = gas_params.initial_tx_gas(
        input,
        tx.is_create(),
        accounts,
        storage_keys,
        authorizations,
        None,
    );
    let intrinsic = gas.initial_total_gas();
    if tx.gas_limit() < intrinsic {
        return Err(PoolError::IntrinsicGasTooLow {
            gas: tx.gas_limit(),
            min: intrinsic,
        });
    }
    if config.spec.is_enabled_in(SpecId::PRAGUE) && tx.gas_limit() < gas.floor_gas() {
        return Err(PoolError::FloorDataGas {
            gas: tx.gas_limit(),
            min: gas.floor_gas(),
        });
    }

    if tip < config.min_priority_fee {
        return Err(PoolError::TipTooLow {
            tip,
            min: config.min_priority_fee,
        });
    }
    if fee_cap < u128::from(config.min_base_fee) {
        return Err(PoolError::FeeCapTooLow {
            fee_cap,
            min: config.min_base_fee,
        });
    }
    Ok(())
}

/// Recovers the sender (libsecp256k1, low-s enforced); see [`koma_evm::recover_sender`].
pub fn recover_sender(tx: &TxEnvelope) -> Result<Address, PoolError> {
    koma_evm::recover_sender(tx).map_err(|_| PoolError::InvalidSender)
}
