//! Unit and property tests with real signed transactions and an in-memory state.

use std::{collections::HashMap, sync::Arc};

use alloy::{
    consensus::{
        SignableTransaction, Signed, TxEip1559, TxEip2930, TxEip7702, TxLegacy,
        transaction::SignerRecoverable,
    },
    eips::{
        eip2718::Encodable2718,
        eip2930::{AccessList, AccessListItem},
        eip7702::Authorization,
    },
    network::TxSignerSync,
    signers::{SignerSync, local::PrivateKeySigner},
};
use alloy_primitives::{Address, B256, Bytes, Signature, TxKind, U256};
use proptest::prelude::*;

use crate::*;

const CHAIN_ID: u64 = 42_424;
const ETH: u128 = 1_000_000_000_000_000_000;
const RECIPIENT: Address = Address::repeat_byte(0xbb);

/// secp256k1 group order.
const SECP256K1N: U256 = U256::from_be_bytes([
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE,
    0xBA, 0xAE, 0xDC, 0xE6, 0xAF, 0x48, 0xA0, 0x3B, 0xBF, 0xD2, 0x5E, 0x8C, 0xD0, 0x36, 0x41, 0x41,
]);

#[derive(Default)]
struct MemState {
    accounts: HashMap<Address, AccountInfoLite>,
}

impl MemState {
    fn with(accounts: &[(Address, u64, u128)]) -> Self {
        let mut state = Self::default();
        for (address, nonce, balance) in accounts {
            state.set(*address, *nonce, *balance);
        }
        state
    }

    fn set(&mut self, address: Address, nonce: u64, balance: u128) {
        self.accounts.insert(
            address,
            AccountInfoLite {
                nonce,
                balance: U256::from(balance),
            },
        );
    }
}

impl AccountReader for MemState {
    fn account(&self, address: Address) -> AccountInfoLite {
        self.accounts.get(&address).copied().unwrap_or_default()
    }
}

fn key(i: u64) -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&B256::from(U256::from(i + 1))).unwrap()
}

fn config() -> PoolConfig {
    PoolConfig {
        chain_id: CHAIN_ID,
        ..Default::default()
    }
}

fn sign<T>(signer: &PrivateKeySigner, mut tx: T) -> TxEnvelope
where
    T: SignableTransaction<Signature>,
    Signed<T>: Into<TxEnvelope>,
{
    let signature = signer.sign_transaction_sync(&mut tx).unwrap();
    tx.into_signed(signature).into()
}

fn eip1559_tx(nonce: u64, max_fee_gwei: u128, tip_gwei: u128) -> TxEip1559 {
    TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: max_fee_gwei * GWEI,
        max_priority_fee_per_gas: tip_gwei * GWEI,
        to: TxKind::Call(RECIPIENT),
        value: U256::from(1u64),
        access_list: AccessList::default(),
        input: Bytes::new(),
    }
}

fn transfer(
    signer: &PrivateKeySigner,
    nonce: u64,
    max_fee_gwei: u128,
    tip_gwei: u128,
) -> TxEnvelope {
    sign(signer, eip1559_tx(nonce, max_fee_gwei, tip_gwei))
}

fn legacy_tx(chain_id: Option<u64>, nonce: u64, gas_price_gwei: u128) -> TxLegacy {
    TxLegacy {
        chain_id,
        nonce,
        gas_price: gas_price_gwei * GWEI,
        gas_limit: 21_000,
        to: TxKind::Call(RECIPIENT),
        value: U256::from(1u64),
        input: Bytes::new(),
    }
}

/// A pool and a state in which signers 0..n each hold 100 ETH at nonce 0.
fn setup(config: PoolConfig, funded: u64) -> (TxPool, MemState) {
    let accounts: Vec<_> = (0..funded)
        .map(|i| (key(i).address(), 0, 100 * ETH))
        .collect();
    (TxPool::new(config), MemState::with(&accounts))
}

fn add(pool: &TxPool, state: &MemState, tx: &TxEnvelope) -> Result<B256, PoolError> {
    let result = pool.add_raw(&tx.encoded_2718(), state, GWEI as u64);
    pool.assert_invariants();
    result
}

fn err(pool: &TxPool, state: &MemState, tx: &TxEnvelope) -> PoolError {
    add(pool, state, tx).unwrap_err()
}

fn best_hashes(pool: &TxPool, base_fee: u64) -> Vec<B256> {
    pool.best_transactions(base_fee).map(|tx| tx.hash).collect()
}

// ---------------------------------------------------------------------------------------
// Admission
// ---------------------------------------------------------------------------------------

#[test]
fn accepts_each_supported_type() {
    let (pool, state) = setup(config(), 1);
    let signer = key(0);
    let legacy = sign(&signer, legacy_tx(Some(CHAIN_ID), 0, 2));
    let eip2930 = sign(
        &signer,
        TxEip2930 {
            chain_id: CHAIN_ID,
            nonce: 1,
            gas_price: 2 * GWEI,
            gas_limit: 21_000,
            to: TxKind::Call(RECIPIENT),
            value: U256::ZERO,
            access_list: AccessList::default(),
            input: Bytes::new(),
        },
    );
    let eip1559 = transfer(&signer, 2, 2, 1);
    let auth = Authorization {
        chain_id: U256::from(CHAIN_ID),
        address: RECIPIENT,
        nonce: 4,
    };
    let auth_sig = key(1).sign_hash_sync(&auth.signature_hash()).unwrap();
    let eip7702 = sign(
        &signer,
        TxEip7702 {
            chain_id: CHAIN_ID,
            nonce: 3,
            gas_limit: 100_000,
            max_fee_per_gas: 2 * GWEI,
            max_priority_fee_per_gas: GWEI,
            to: RECIPIENT,
            value: U256::ZERO,
            access_list: AccessList::default(),
            authorization_list: vec![auth.into_signed(auth_sig)],
            input: Bytes::new(),
        },
    );
    for tx in [&legacy, &eip2930, &eip1559, &eip7702] {
        let hash = add(&pool, &state, tx).unwrap();
        assert_eq!(hash, *tx.tx_hash());
        let pooled = pool.get(&hash).unwrap();
        assert_eq!(pooled.sender, signer.address());
        assert_eq!(pooled.encoded_len, tx.encoded_2718().len());
    }
    assert_eq!(
        pool.status(),
        PoolStatus {
            pending: 4,
            queued: 0
        }
    );
    assert_eq!(pool.len(), 4);
    assert!(pool.contains(legacy.tx_hash()));
}

#[test]
fn add_transaction_takes_decoded_envelopes() {
    let (pool, state) = setup(config(), 1);
    let tx = transfer(&key(0), 0, 2, 1);
    assert_eq!(
        pool.add_transaction(tx.clone(), &state, GWEI as u64),
        Ok(*tx.tx_hash())
    );
    assert_eq!(
        pool.add_transaction(tx, &state, GWEI as u64),
        Err(PoolError::AlreadyKnown)
    );
}

#[test]
fn pooled_tx_accessors() {
    let (pool, state) = setup(config(), 1);
    let hash = add(&pool, &state, &transfer(&key(0), 0, 10, 3)).unwrap();
    let tx = pool.get(&hash).unwrap();
    assert_eq!(tx.nonce(), 0);
    assert_eq!(tx.gas_limit(), 21_000);
    assert_eq!(tx.max_fee_per_gas(), 10 * GWEI);
    assert_eq!(tx.max_priority_fee_per_gas(), Some(3 * GWEI));
    assert_eq!(tx.effective_tip(8 * GWEI as u64), Some(2 * GWEI));
    assert_eq!(tx.effective_tip(5 * GWEI as u64), Some(3 * GWEI));
    assert_eq!(tx.effective_tip(11 * GWEI as u64), None);
    assert_eq!(tx.cost(), U256::from(21_000 * 10 * GWEI + 1));
}

#[test]
fn rejects_undecodable_input() {
    let (pool, state) = setup(config(), 1);
    for raw in [
        &[][..],
        &[0xc0][..],
        &[0x02, 0xc0][..],
        &[0x01][..],
        &[0x85, 1, 2, 3, 4, 5][..],
    ] {
        let err = pool.add_raw(raw, &state, GWEI as u64).unwrap_err();
        assert!(matches!(err, PoolError::Decode(_)), "{raw:?}: {err:?}");
        assert!(
            err.to_string()
                .starts_with("failed to decode signed transaction: ")
        );
        assert_eq!(err.rpc_code(), -32602);
    }
    // Trailing bytes after a valid envelope.
    let mut raw = transfer(&key(0), 0, 2, 1).encoded_2718();
    raw.push(0);
    assert!(matches!(
        pool.add_raw(&raw, &state, GWEI as u64),
        Err(PoolError::Decode(_))
    ));
    assert!(pool.is_empty());
}

#[test]
fn rejects_blob_and_unknown_types() {
    let (pool, state) = setup(config(), 1);
    // A type-3 envelope; its body does not matter.
    let mut blob = transfer(&key(0), 0, 2, 1).encoded_2718();
    blob[0] = 0x03;
    let err = pool.add_raw(&blob, &state, GWEI as u64).unwrap_err();
    assert_eq!(err, PoolError::TxTypeNotSupported);
    assert_eq!(err.to_string(), "transaction type not supported");
    assert_eq!(err.rpc_code(), -32000);
    for ty in [0x00, 0x05, 0x7f] {
        blob[0] = ty;
        assert_eq!(
            pool.add_raw(&blob, &state, GWEI as u64),
            Err(PoolError::TxTypeNotSupported)
        );
    }
}

#[test]
fn rejects_wrong_chain_id() {
    let (pool, state) = setup(config(), 1);
    let mut tx = eip1559_tx(0, 2, 1);
    tx.chain_id = 1;
    let err = err(&pool, &state, &sign(&key(0), tx));
    assert_eq!(
        err.to_string(),
        format!("invalid sender: invalid chain id for signer: have 1 want {CHAIN_ID}")
    );
    let legacy = sign(&key(0), legacy_tx(Some(5), 0, 2));
    assert_eq!(
        err_of(&pool, &state, &legacy),
        PoolError::InvalidChainId {
            have: 5,
            want: CHAIN_ID
        }
    );
}

fn err_of(pool: &TxPool, state: &MemState, tx: &TxEnvelope) -> PoolError {
    err(pool, state, tx)
}

#[test]
fn rejects_legacy_without_chain_id() {
    let (pool, state) = setup(config(), 1);
    let tx = sign(&key(0), legacy_tx(None, 0, 2));
    assert!(!tx.is_replay_protected());
    assert_eq!(
        err(&pool, &state, &tx).to_string(),
        "only replay-protected (EIP-155) transactions allowed over RPC"
    );
}

#[test]
fn rejects_high_s_and_garbage_signatures() {
    let (pool, state) = setup(config(), 1);
    let unsigned = eip1559_tx(0, 2, 1);
    let signed = sign(&key(0), unsigned.clone());
    let sig = signed.signature();
    // (r, n - s, !v) is the same signature in its malleable high-s form.
    let high_s = Signature::new(sig.r(), SECP256K1N - sig.s(), !sig.v());
    let malleated: TxEnvelope = unsigned.clone().into_signed(high_s).into();
    assert_eq!(
        malleated.recover_signer_unchecked().unwrap(),
        key(0).address()
    );
    let err = err(&pool, &state, &malleated);
    assert_eq!(err, PoolError::InvalidSender);
    assert_eq!(err.to_string(), "invalid sender");

    let zero: TxEnvelope = unsigned
        .clone()
        .into_signed(Signature::new(U256::ZERO, U256::ZERO, false))
        .into();
    assert_eq!(err_of(&pool, &state, &zero), PoolError::InvalidSender);
    let r_overflow: TxEnvelope = unsigned
        .into_signed(Signature::new(SECP256K1N, U256::from(1u8), false))
        .into();
    assert_eq!(err_of(&pool, &state, &r_overflow), PoolError::InvalidSender);
    assert!(pool.is_empty());
}

#[test]
fn fast_recovery_agrees_with_alloy() {
    for i in 0..20 {
        let tx = transfer(&key(i), i, 2 + u128::from(i), 1);
        assert_eq!(
            validate::recover_sender(&tx).unwrap(),
            tx.recover_signer().unwrap()
        );
        assert_eq!(tx.recover_signer().unwrap(), key(i).address());
    }
}

#[test]
fn rejects_nonce_too_low() {
    let (pool, mut state) = setup(config(), 1);
    state.set(key(0).address(), 5, 100 * ETH);
    let err = err(&pool, &state, &transfer(&key(0), 3, 2, 1));
    assert_eq!(err.to_string(), "nonce too low: next nonce 5, tx nonce 3");
    assert_eq!(err.rpc_code(), -32000);
}

#[test]
fn rejects_nonce_too_far_ahead() {
    let (pool, state) = setup(
        PoolConfig {
            max_per_sender: 4,
            ..config()
        },
        1,
    );
    add(&pool, &state, &transfer(&key(0), 3, 2, 1)).unwrap();
    let err = err(&pool, &state, &transfer(&key(0), 4, 2, 1));
    assert_eq!(
        err,
        PoolError::NonceTooHigh {
            state: 0,
            tx: 4,
            max_gap: 3
        }
    );
    assert!(err.to_string().starts_with("nonce too high"));
}

#[test]
fn rejects_insufficient_funds() {
    let (pool, mut state) = setup(config(), 1);
    let cost = 21_000 * 2 * GWEI + 1;
    state.set(key(0).address(), 0, cost - 1);
    let err = err(&pool, &state, &transfer(&key(0), 0, 2, 1));
    assert_eq!(
        err.to_string(),
        format!(
            "insufficient funds for gas * price + value: balance {}, tx cost {cost}, overshot 1",
            cost - 1
        )
    );
    state.set(key(0).address(), 0, cost);
    add(&pool, &state, &transfer(&key(0), 0, 2, 1)).unwrap();
}

#[test]
fn rejects_overdraft_across_a_senders_queue() {
    let (pool, mut state) = setup(config(), 1);
    let cost = 21_000 * 2 * GWEI + 1;
    state.set(key(0).address(), 0, 2 * cost + cost / 2);
    add(&pool, &state, &transfer(&key(0), 0, 2, 1)).unwrap();
    add(&pool, &state, &transfer(&key(0), 1, 2, 1)).unwrap();
    let err = err(&pool, &state, &transfer(&key(0), 2, 2, 1));
    assert_eq!(
        err,
        PoolError::Overdraft {
            balance: U256::from(2 * cost + cost / 2),
            queued: U256::from(2 * cost),
            cost: U256::from(cost),
            overshot: U256::from(cost - cost / 2),
        }
    );
    assert!(
        err.to_string()
            .starts_with("insufficient funds for gas * price + value: balance ")
    );
}

#[test]
fn fee_floors() {
    let (pool, state) = setup(
        PoolConfig {
            min_priority_fee: 2 * GWEI,
            min_base_fee: 3_000_000_000,
            ..config()
        },
        1,
    );
    let err = err(&pool, &state, &transfer(&key(0), 0, 10, 1));
    assert_eq!(
        err,
        PoolError::TipTooLow {
            tip: GWEI,
            min: 2 * GWEI
        }
    );
    assert!(err.to_string().starts_with("transaction underpriced"));
    let err = err_of(&pool, &state, &transfer(&key(0), 0, 2, 2));
    assert_eq!(
        err.to_string(),
        "transaction underpriced: gas fee cap 2000000000, minimum needed 3000000000"
    );
    let err = err_of(&pool, &state, &transfer(&key(0), 0, 3, 4));
    assert_eq!(
        err.to_string(),
        "max priority fee per gas higher than max fee per gas"
    );
    // Legacy: the gas price is both tip and fee cap.
    let legacy = sign(&key(0), legacy_tx(Some(CHAIN_ID), 0, 2));
    assert!(matches!(
        err_of(&pool, &state, &legacy),
        PoolError::FeeCapTooLow { .. }
    ));
    add(&pool, &state, &transfer(&key(0), 0, 3, 2)).unwrap();
}

#[test]
fn rejects_duplicates() {
    let (pool, state) = setup(config(), 1);
    let tx = transfer(&key(0), 0, 2, 1);
    add(&pool, &state, &tx).unwrap();
    let err = err(&pool, &state, &tx);
    assert_eq!(err.to_string(), "already known");
    assert_eq!(err.rpc_code(), -32000);
}

#[test]
fn intrinsic_gas() {
    let (pool, state) = setup(config(), 2);
    let mut tx = eip1559_tx(0, 2, 1);
    tx.gas_limit = 20_999;
    let err = err(&pool, &state, &sign(&key(0), tx.clone()));
    assert_eq!(
        err.to_string(),
        "intrinsic gas too low: gas 20999, minimum needed 21000"
    );

    // Calldata: 4 zero bytes (4 each) and 4 non-zero bytes (16 each).
    tx.input = Bytes::from(vec![0, 0, 0, 0, 1, 1, 1, 1]);
    tx.gas_limit = 21_079;
    assert_eq!(
        err_of(&pool, &state, &sign(&key(0), tx.clone())),
        PoolError::IntrinsicGasTooLow {
            gas: 21_079,
            min: 21_080
        }
    );

    // Access list: 2400 per address, 1900 per storage key.
    tx.input = Bytes::new();
    tx.access_list = AccessList(vec![AccessListItem {
        address: RECIPIENT,
        storage_keys: vec![B256::ZERO, B256::repeat_byte(1)],
    }]);
    tx.gas_limit = 21_000 + 2_400 + 3_800 - 1;
    assert_eq!(
        err_of(&pool, &state, &sign(&key(0), tx.clone())),
        PoolError::IntrinsicGasTooLow {
            gas: tx.gas_limit,
            min: 27_200
        }
    );
    tx.gas_limit = 27_200;
    add(&pool, &state, &sign(&key(0), tx)).unwrap();

    // Contract creation: 53000 + 2 per init-code word.
    let mut create = eip1559_tx(0, 2, 1);
    create.to = TxKind::Create;
    create.input = Bytes::from(vec![0u8; 64]);
    create.gas_limit = 53_000 + 64 * 4 + 2 * 2 - 1;
    assert_eq!(
        err_of(&pool, &state, &sign(&key(1), create.clone())),
        PoolError::IntrinsicGasTooLow {
            gas: create.gas_limit,
            min: 53_260
        }
    );
    create.gas_limit = 53_260;
    add(&pool, &state, &sign(&key(1), create)).unwrap();
}

#[test]
fn eip7623_floor_gas() {
    let (pool, state) = setup(config(), 1);
    // 1000 non-zero bytes: 4000 tokens. Intrinsic 21000 + 16000; floor 21000 + 40000.
    let mut tx = eip1559_tx(0, 2, 1);
    tx.input = Bytes::from(vec![0xff; 1000]);
    tx.gas_limit = 50_000;
    let err = err(&pool, &state, &sign(&key(0), tx.clone()));
    assert_eq!(
        err.to_string(),
        "insufficient gas for floor data gas cost: gas 50000, minimum needed 61000"
    );
    tx.gas_limit = 61_000;
    add(&pool, &state, &sign(&key(0), tx)).unwrap();
}

#[test]
fn eip7702_rules() {
    let (pool, state) = setup(config(), 2);
    let mut tx = TxEip7702 {
        chain_id: CHAIN_ID,
        nonce: 0,
        gas_limit: 100_000,
        max_fee_per_gas: 2 * GWEI,
        max_priority_fee_per_gas: GWEI,
        to: RECIPIENT,
        value: U256::ZERO,
        access_list: AccessList::default(),
        authorization_list: vec![],
        input: Bytes::new(),
    };
    let err = err(&pool, &state, &sign(&key(0), tx.clone()));
    assert_eq!(err.to_string(), "EIP-7702 transaction with empty auth list");

    let auth = Authorization {
        chain_id: U256::from(CHAIN_ID),
        address: RECIPIENT,
        nonce: 0,
    };
    let signature = key(1).sign_hash_sync(&auth.signature_hash()).unwrap();
    tx.authorization_list = vec![auth.into_signed(signature)];
    // 25 000 per authorization on top of the 21 000 base.
    tx.gas_limit = 45_999;
    assert_eq!(
        err_of(&pool, &state, &sign(&key(0), tx.clone())),
        PoolError::IntrinsicGasTooLow {
            gas: 45_999,
            min: 46_000
        }
    );
    tx.gas_limit = 46_000;
    add(&pool, &state, &sign(&key(0), tx)).unwrap();
}

#[test]
fn rejects_oversized_init_code() {
    let (pool, state) = setup(config(), 1);
    let mut tx = eip1559_tx(0, 2, 1);
    tx.to = TxKind::Create;
    tx.input = Bytes::from(vec![0u8; 49_153]);
    tx.gas_limit = 10_000_000;
    let err = err(&pool, &state, &sign(&key(0), tx));
    assert_eq!(
        err.to_string(),
        "max initcode size exceeded: code size 49153, limit 49152"
    );
}

#[test]
fn rejects_gas_above_block_limit() {
    let (pool, state) = setup(
        PoolConfig {
            block_gas_limit: 1_000_000,
            ..config()
        },
        1,
    );
    let mut tx = eip1559_tx(0, 2, 1);
    tx.gas_limit = 1_000_001;
    assert_eq!(
        err(&pool, &state, &sign(&key(0), tx.clone())).to_string(),
        "exceeds block gas limit"
    );
    tx.gas_limit = 1_000_000;
    add(&pool, &state, &sign(&key(0), tx)).unwrap();
}

#[test]
fn rejects_gas_above_the_per_transaction_cap_with_geths_text() {
    let (pool, state) = setup(
        PoolConfig {
            block_gas_limit: 60_000_000,
            ..config()
        },
        1,
    );
    assert_eq!(pool.config().max_tx_gas, 16_777_216, "EIP-7825 by default");
    let mut tx = eip1559_tx(0, 2, 1);
    tx.gas_limit = 16_777_217;
    let e = err(&pool, &state, &sign(&key(0), tx.clone()));
    assert_eq!(
        e.to_string(),
        "transaction gas limit too high (cap: 16777216, tx: 16777217)"
    );
    assert_eq!(e.rpc_code(), RPC_CODE_POOL);
    assert!(
        e.is_invalid_transaction(),
        "never includable: a relaying peer is to blame"
    );
    // Above both the cap and the block gas limit: the cap is reported, as geth does.
    tx.gas_limit = 60_000_001;
    assert_eq!(
        err(&pool, &state, &sign(&key(0), tx.clone())),
        PoolError::GasLimitTooHigh {
            cap: 16_777_216,
            gas: 60_000_001
        }
    );
    // Exactly the cap is fine.
    tx.gas_limit = 16_777_216;
    add(&pool, &state, &sign(&key(0), tx)).unwrap();

    // The cap comes from the configuration (the chain spec's `maxTxGas`).
    let (pool, state) = setup(
        PoolConfig {
            max_tx_gas: 100_000,
            ..config()
        },
        1,
    );
    let mut tx = eip1559_tx(0, 2, 1);
    tx.gas_limit = 100_001;
    assert_eq!(
        err(&pool, &state, &sign(&key(0), tx.clone())).to_string(),
        "transaction gas limit too high (cap: 100000, tx: 100001)"
    );
    tx.gas_limit = 100_000;
    add(&pool, &state, &sign(&key(0), tx)).unwrap();
}

#[test]
fn rejects_oversized_transactions() {
    let (pool, state) = setup(config(), 1);
    let mut tx = eip1559_tx(0, 2, 1);
    tx.input = Bytes::from(vec![0u8; 128 * 1024]);
    tx.gas_limit = 29_000_000;
    let envelope = sign(&key(0), tx);
    let size = envelope.encoded_2718().len();
    let expected = format!("oversized data: transaction size {size}, limit 131072");
    assert_eq!(err(&pool, &state, &envelope).to_string(), expected);
    let err = pool
        .add_transaction(envelope, &state, GWEI as u64)
        .unwrap_err();
    assert_eq!(err.to_string(), expected);
}

// ---------------------------------------------------------------------------------------
// Replacement, promotion, block updates
// ---------------------------------------------------------------------------------------

#[test]
fn replacement_needs_ten_percent_on_fee_cap_and_tip() {
    let (pool, state) = setup(config(), 1);
    let signer = key(0);
    let original = add(&pool, &state, &transfer(&signer, 0, 100, 10)).unwrap();

    for (fee, tip) in [(101, 10), (109, 11), (110, 10), (200, 10), (109, 20)] {
        let err = err(&pool, &state, &transfer(&signer, 0, fee, tip));
        assert_eq!(
            err.to_string(),
            "replacement transaction underpriced",
            "fee {fee} tip {tip}"
        );
    }
    assert!(pool.contains(&original));

    let replacement = add(&pool, &state, &transfer(&signer, 0, 110, 11)).unwrap();
    assert!(!pool.contains(&original));
    assert!(pool.contains(&replacement));
    assert_eq!(
        pool.status(),
        PoolStatus {
            pending: 1,
            queued: 0
        }
    );
    assert_eq!(best_hashes(&pool, GWEI as u64), vec![replacement]);
}

#[test]
fn replacement_of_a_queued_transaction_stays_queued() {
    let (pool, state) = setup(config(), 1);
    add(&pool, &state, &transfer(&key(0), 2, 10, 1)).unwrap();
    let replacement = add(&pool, &state, &transfer(&key(0), 2, 20, 2)).unwrap();
    assert_eq!(
        pool.status(),
        PoolStatus {
            pending: 0,
            queued: 1
        }
    );
    assert!(
        pool.content().queued[&key(0).address()]
            .get(&2)
            .is_some_and(|tx| tx.hash == replacement)
    );
}

#[test]
fn queued_transactions_are_promoted_when_the_gap_fills() {
    let (pool, state) = setup(config(), 1);
    let signer = key(0);
    let mut events = pool.subscribe();
    let third = add(&pool, &state, &transfer(&signer, 2, 2, 1)).unwrap();
    let second = add(&pool, &state, &transfer(&signer, 1, 2, 1)).unwrap();
    assert_eq!(
        pool.status(),
        PoolStatus {
            pending: 0,
            queued: 2
        }
    );
    assert!(best_hashes(&pool, GWEI as u64).is_empty());
    assert!(
        events.try_recv().is_err(),
        "queued transactions are not announced"
    );

    let first = add(&pool, &state, &transfer(&signer, 0, 2, 1)).unwrap();
    assert_eq!(
        pool.status(),
        PoolStatus {
            pending: 3,
            queued: 0
        }
    );
    assert_eq!(best_hashes(&pool, GWEI as u64), vec![first, second, third]);
    let announced: Vec<B256> = std::iter::from_fn(|| events.try_recv().ok()).collect();
    assert_eq!(announced, vec![first, second, third]);

    let content = pool.content();
    assert_eq!(
        content.pending[&signer.address()]
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert!(content.queued.is_empty());
}

#[test]
fn canonical_block_removes_mined_and_stale_transactions() {
    let (pool, mut state) = setup(config(), 2);
    let (a, b) = (key(0), key(1));
    let a0 = add(&pool, &state, &transfer(&a, 0, 2, 1)).unwrap();
    let a1 = add(&pool, &state, &transfer(&a, 1, 2, 1)).unwrap();
    let a2 = add(&pool, &state, &transfer(&a, 2, 2, 1)).unwrap();
    let b0 = add(&pool, &state, &transfer(&b, 0, 2, 1)).unwrap();
    let b1 = add(&pool, &state, &transfer(&b, 1, 2, 1)).unwrap();

    // The block mined a0 and a1; b's nonce 0 was used by a transaction the pool never saw.
    state.set(a.address(), 2, 99 * ETH);
    state.set(b.address(), 1, 99 * ETH);
    pool.on_canonical_block(&[a0, a1], &[b.address()], &state, GWEI as u64);
    pool.assert_invariants();
    for gone in [a0, a1, b0] {
        assert!(!pool.contains(&gone));
    }
    assert_eq!(
        pool.status(),
        PoolStatus {
            pending: 2,
            queued: 0
        }
    );
    assert_eq!(best_hashes(&pool, GWEI as u64).len(), 2);
    assert!(pool.contains(&a2) && pool.contains(&b1));
}

#[test]
fn canonical_block_with_a_lagging_reader_still_drops_mined_transactions() {
    let (pool, state) = setup(config(), 1);
    let a0 = add(&pool, &state, &transfer(&key(0), 0, 2, 1)).unwrap();
    let a1 = add(&pool, &state, &transfer(&key(0), 1, 2, 1)).unwrap();
    // The reader still reports nonce 0.
    pool.on_canonical_block(&[a0], &[], &state, GWEI as u64);
    pool.assert_invariants();
    assert!(!pool.contains(&a0));
    assert_eq!(best_hashes(&pool, GWEI as u64), vec![a1]);
}

#[test]
fn canonical_block_promotes_queued_transactions() {
    let (pool, mut state) = setup(config(), 1);
    let mut events = pool.subscribe();
    let a3 = add(&pool, &state, &transfer(&key(0), 3, 2, 1)).unwrap();
    assert_eq!(
        pool.status(),
        PoolStatus {
            pending: 0,
            queued: 1
        }
    );
    // Nonces 0..3 were used through another node.
    state.set(key(0).address(), 3, 100 * ETH);
    pool.on_canonical_block(&[], &[key(0).address()], &state, GWEI as u64);
    pool.assert_invariants();
    assert_eq!(
        pool.status(),
        PoolStatus {
            pending: 1,
            queued: 0
        }
    );
    assert_eq!(events.try_recv().unwrap(), a3);
    assert_eq!(best_hashes(&pool, GWEI as u64), vec![a3]);
}

#[test]
fn canonical_block_drops_what_the_balance_no_longer_covers() {
    let (pool, mut state) = setup(config(), 1);
    let cost = 21_000 * 2 * GWEI + 1;
    let hashes: Vec<B256> = (0..4)
        .map(|nonce| add(&pool, &state, &transfer(&key(0), nonce, 2, 1)).unwrap())
        .collect();
    state.set(key(0).address(), 0, 2 * cost + 1);
    pool.on_canonical_block(&[], &[key(0).address()], &state, GWEI as u64);
    pool.assert_invariants();
    assert_eq!(best_hashes(&pool, GWEI as u64), hashes[..2].to_vec());
    assert!(!pool.contains(&hashes[2]) && !pool.contains(&hashes[3]));
}

#[test]
fn reinject_after_reorg_accepts_lower_nonces() {
    let (pool, mut state) = setup(config(), 1);
    let signer = key(0);
    let txs: Vec<TxEnvelope> = (0..3).map(|nonce| transfer(&signer, nonce, 2, 1)).collect();
    for tx in &txs {
        add(&pool, &state, tx).unwrap();
    }
    state.set(signer.address(), 3, 100 * ETH);
    let mined: Vec<B256> = txs.iter().map(|tx| *tx.tx_hash()).collect();
    pool.on_canonical_block(&mined, &[], &state, GWEI as u64);
    assert!(pool.is_empty());
    // A 4th transaction arrives, then the block is reorged out.
    let fourth = add(&pool, &state, &transfer(&signer, 3, 2, 1)).unwrap();
    state.set(signer.address(), 0, 100 * ETH);
    let invalid = transfer(&key(7), 0, 2, 1); // unfunded: dropped silently
    pool.reinject(
        txs.iter().cloned().chain([invalid]).collect(),
        &state,
        GWEI as u64,
    );
    pool.assert_invariants();
    let mut expected = mined;
    expected.push(fourth);
    assert_eq!(best_hashes(&pool, GWEI as u64), expected);
}

#[test]
fn remove_transactions_demotes_later_nonces() {
    let (pool, state) = setup(config(), 1);
    let hashes: Vec<B256> = (0..3)
        .map(|nonce| add(&pool, &state, &transfer(&key(0), nonce, 2, 1)).unwrap())
        .collect();
    let removed = pool.remove_transactions(&[hashes[1], B256::ZERO]);
    pool.assert_invariants();
    assert_eq!(removed.len(), 1);
    assert_eq!(
        pool.status(),
        PoolStatus {
            pending: 1,
            queued: 1
        }
    );
    assert_eq!(best_hashes(&pool, GWEI as u64), vec![hashes[0]]);
}

#[test]
fn pending_nonce_follows_the_executable_sequence() {
    let (pool, state) = setup(config(), 2);
    let a = key(0).address();
    assert_eq!(pool.pending_nonce(a, 0), 0);
    assert_eq!(pool.pending_nonce(a, 7), 7);
    for nonce in [0, 1, 2, 4] {
        add(&pool, &state, &transfer(&key(0), nonce, 2, 1)).unwrap();
    }
    assert_eq!(pool.pending_nonce(a, 0), 3);
    // The caller's state is newer than the pool's: 0..2 mined, 3 came from elsewhere.
    assert_eq!(pool.pending_nonce(a, 2), 3);
    assert_eq!(pool.pending_nonce(a, 4), 5);
    assert_eq!(pool.pending_nonce(a, 9), 9);
    assert_eq!(pool.pending_nonce(key(1).address(), 3), 3);
}

// ---------------------------------------------------------------------------------------
// Block-building order
// ---------------------------------------------------------------------------------------

#[test]
fn best_orders_by_effective_tip_and_nonce() {
    let (pool, state) = setup(config(), 3);
    let (a, b, c) = (key(0), key(1), key(2));
    // a: a low tip first, then a high one that must wait for it.
    let a0 = add(&pool, &state, &transfer(&a, 0, 100, 1)).unwrap();
    let a1 = add(&pool, &state, &transfer(&a, 1, 100, 50)).unwrap();
    let b0 = add(&pool, &state, &transfer(&b, 0, 100, 5)).unwrap();
    let b1 = add(&pool, &state, &transfer(&b, 1, 100, 3)).unwrap();
    // c: high tip but a fee cap that leaves little at base fee 20 gwei.
    let c0 = add(&pool, &state, &transfer(&c, 0, 22, 20)).unwrap();

    let base_fee = 20 * GWEI as u64;
    // Effective tips: a0 1, a1 50, b0 5, b1 3, c0 2.
    assert_eq!(best_hashes(&pool, base_fee), vec![b0, b1, c0, a0, a1]);
    // At base fee 0 tips are the caps: c0 20, b0 5, b1 3, a0 1, a1 50.
    assert_eq!(best_hashes(&pool, 0), vec![c0, b0, b1, a0, a1]);
}

#[test]
fn best_breaks_ties_by_arrival() {
    let (pool, state) = setup(config(), 3);
    let hashes: Vec<B256> = (0..3)
        .map(|i| add(&pool, &state, &transfer(&key(i), 0, 5, 2)).unwrap())
        .collect();
    assert_eq!(best_hashes(&pool, GWEI as u64), hashes);
}

#[test]
fn best_skips_transactions_below_the_base_fee_and_their_successors() {
    let (pool, state) = setup(config(), 2);
    let a0 = add(&pool, &state, &transfer(&key(0), 0, 30, 1)).unwrap();
    add(&pool, &state, &transfer(&key(0), 1, 10, 1)).unwrap();
    add(&pool, &state, &transfer(&key(0), 2, 30, 1)).unwrap();
    add(&pool, &state, &transfer(&key(1), 0, 10, 1)).unwrap();
    assert_eq!(best_hashes(&pool, 20 * GWEI as u64), vec![a0]);
    assert_eq!(pool.len(), 4, "underpriced transactions stay pooled");
}

#[test]
fn best_mark_invalid_skips_the_rest_of_a_sender() {
    let (pool, state) = setup(config(), 2);
    let a0 = add(&pool, &state, &transfer(&key(0), 0, 100, 10)).unwrap();
    add(&pool, &state, &transfer(&key(0), 1, 100, 10)).unwrap();
    let b0 = add(&pool, &state, &transfer(&key(1), 0, 100, 5)).unwrap();
    let b1 = add(&pool, &state, &transfer(&key(1), 1, 100, 5)).unwrap();

    let mut best = pool.best_transactions(GWEI as u64);
    let first = best.next().unwrap();
    assert_eq!(first.hash, a0);
    best.mark_invalid(first.sender);
    assert_eq!(best.map(|tx| tx.hash).collect::<Vec<_>>(), vec![b0, b1]);
}

#[test]
fn best_yields_a_successor_that_arrives_during_iteration() {
    let (pool, state) = setup(config(), 1);
    let a0 = add(&pool, &state, &transfer(&key(0), 0, 100, 10)).unwrap();
    let mut best = pool.best_transactions(GWEI as u64);
    assert_eq!(best.next().unwrap().hash, a0);
    assert!(best.next().is_none());

    let mut best = pool.best_transactions(GWEI as u64);
    let a1 = add(&pool, &state, &transfer(&key(0), 1, 100, 10)).unwrap();
    assert_eq!(best.next().unwrap().hash, a0);
    assert_eq!(best.next().unwrap().hash, a1);
}

// ---------------------------------------------------------------------------------------
// Limits and eviction
// ---------------------------------------------------------------------------------------

#[test]
fn full_pending_pool_evicts_the_cheapest_tail() {
    let (pool, state) = setup(
        PoolConfig {
            max_pending: 3,
            ..config()
        },
        4,
    );
    let a0 = add(&pool, &state, &transfer(&key(0), 0, 10, 1)).unwrap();
    let a1 = add(&pool, &state, &transfer(&key(0), 1, 5, 1)).unwrap();
    let b0 = add(&pool, &state, &transfer(&key(1), 0, 8, 1)).unwrap();

    // Not more than the cheapest tail (a1: 5 gwei): refused.
    let err = err(&pool, &state, &transfer(&key(2), 0, 5, 1));
    assert_eq!(err.to_string(), "txpool is full");
    assert_eq!(err.rpc_code(), -32000);

    // Outbids a1, the tail of a; a0 is cheaper than b0 but evicting it would leave a gap.
    let c0 = add(&pool, &state, &transfer(&key(2), 0, 6, 1)).unwrap();
    assert!(!pool.contains(&a1));
    for kept in [a0, b0, c0] {
        assert!(pool.contains(&kept));
    }
    assert_eq!(
        pool.status(),
        PoolStatus {
            pending: 3,
            queued: 0
        }
    );

    // The sender's own pending tail is never the victim of its next nonce.
    let err = err_of(&pool, &state, &transfer(&key(2), 1, 5, 1));
    assert_eq!(err, PoolError::PoolFull);
}

#[test]
fn full_queued_pool_evicts_the_cheapest_queued_tail() {
    let (pool, state) = setup(
        PoolConfig {
            max_queued: 2,
            ..config()
        },
        3,
    );
    let a2 = add(&pool, &state, &transfer(&key(0), 2, 4, 1)).unwrap();
    let b5 = add(&pool, &state, &transfer(&key(1), 5, 3, 1)).unwrap();
    assert_eq!(
        err(&pool, &state, &transfer(&key(2), 1, 3, 1)),
        PoolError::PoolFull
    );
    let c1 = add(&pool, &state, &transfer(&key(2), 1, 5, 1)).unwrap();
    assert!(!pool.contains(&b5));
    assert!(pool.contains(&a2) && pool.contains(&c1));
    // Pending transactions do not count against the queued limit.
    add(&pool, &state, &transfer(&key(1), 0, 2, 1)).unwrap();
    assert_eq!(
        pool.status(),
        PoolStatus {
            pending: 1,
            queued: 2
        }
    );
}

#[test]
fn promotion_beyond_the_pending_limit_evicts_the_cheapest() {
    let (pool, state) = setup(
        PoolConfig {
            max_pending: 3,
            ..config()
        },
        2,
    );
    let b0 = add(&pool, &state, &transfer(&key(1), 0, 10, 1)).unwrap();
    add(&pool, &state, &transfer(&key(0), 1, 3, 1)).unwrap();
    add(&pool, &state, &transfer(&key(0), 2, 2, 1)).unwrap();
    let a0 = add(&pool, &state, &transfer(&key(0), 0, 20, 1)).unwrap();
    // a0 promoted a1 and a2: four pending, so the cheapest tail (a2) went.
    assert_eq!(
        pool.status(),
        PoolStatus {
            pending: 3,
            queued: 0
        }
    );
    assert_eq!(pool.pending_nonce(key(0).address(), 0), 2);
    assert!(pool.contains(&a0) && pool.contains(&b0));
}

#[test]
fn per_sender_limit() {
    let (pool, state) = setup(
        PoolConfig {
            max_per_sender: 3,
            ..config()
        },
        1,
    );
    for nonce in 0..3 {
        add(&pool, &state, &transfer(&key(0), nonce, 2, 1)).unwrap();
    }
    assert!(matches!(
        err(&pool, &state, &transfer(&key(0), 3, 2, 1)),
        PoolError::NonceTooHigh { .. }
    ));
    // Replacements are still allowed at the limit.
    add(&pool, &state, &transfer(&key(0), 2, 4, 2)).unwrap();
}

#[test]
fn concurrent_inserts_from_many_threads() {
    let (pool, state) = setup(config(), 8);
    let txs: Vec<Vec<TxEnvelope>> = (0..8)
        .map(|i| {
            (0..20)
                .map(|nonce| transfer(&key(i), nonce, 2, 1))
                .collect()
        })
        .collect();
    std::thread::scope(|scope| {
        for sender_txs in &txs {
            let (pool, state) = (&pool, &state);
            // Reverse order: everything is queued until nonce 0 arrives.
            scope.spawn(move || {
                for tx in sender_txs.iter().rev() {
                    pool.add_raw(&tx.encoded_2718(), state, GWEI as u64)
                        .unwrap();
                }
            });
        }
    });
    pool.assert_invariants();
    assert_eq!(
        pool.status(),
        PoolStatus {
            pending: 160,
            queued: 0
        }
    );
    assert_eq!(pool.best_transactions(GWEI as u64).count(), 160);
}

#[test]
fn error_codes() {
    assert_eq!(
        PoolError::Decode("x".into()).rpc_code(),
        RPC_CODE_INVALID_PARAMS
    );
    for err in [
        PoolError::AlreadyKnown,
        PoolError::PoolFull,
        PoolError::ReplacementUnderpriced,
        PoolError::ExceedsBlockGasLimit,
        PoolError::GasLimitTooHigh { cap: 1, gas: 2 },
        PoolError::InvalidSender,
    ] {
        assert_eq!(err.rpc_code(), RPC_CODE_POOL);
    }
}

// ---------------------------------------------------------------------------------------
// Property test: random operation sequences keep every invariant.
// ---------------------------------------------------------------------------------------

const SENDERS: usize = 5;

#[derive(Debug, Clone)]
enum Op {
    Add {
        sender: usize,
        nonce_ahead: u64,
        fee_cap: u128,
        tip: u128,
    },
    Block {
        sender: usize,
        nonce_step: u64,
        balance_units: u128,
    },
    Remove {
        index: usize,
    },
    Best {
        base_fee: u64,
        invalid_sender: Option<usize>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..SENDERS, prop_oneof![3 => 0u64..2, 1 => 0u64..8], 1u128..6, 1u128..6).prop_map(|(sender, nonce_ahead, fee_cap, tip)| Op::Add {
            sender,
            nonce_ahead,
            fee_cap: fee_cap.max(tip),
            tip,
        }),
        2 => (0..SENDERS, 0u64..3, 0u128..12).prop_map(|(sender, nonce_step, balance_units)| Op::Block {
            sender,
            nonce_step,
            balance_units,
        }),
        1 => (0usize..64).prop_map(|index| Op::Remove { index }),
        1 => (0u64..6, proptest::option::of(0..SENDERS)).prop_map(|(base_fee, invalid_sender)| Op::Best {
            base_fee,
            invalid_sender,
        }),
    ]
}

/// Inserts without a signature: the property is about pool logic, and signing dominates
/// the run time otherwise.
fn insert_unsigned(
    pool: &TxPool,
    sender: Address,
    tx: TxEip1559,
    account: AccountInfoLite,
    sequence: u64,
) -> Result<(), PoolError> {
    let envelope: TxEnvelope = tx.into_signed(Signature::test_signature()).into();
    let encoded_len = envelope.eip2718_encoded_length();
    let pooled = Arc::new(PooledTx::new(envelope, sender, encoded_len, sequence));
    pool.inner
        .write()
        .insert(&pool.config, pooled, account, false)
        .map(|_| ())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn random_operations_keep_invariants(ops in proptest::collection::vec(op(), 1..80)) {
        let config = PoolConfig { max_per_sender: 6, max_pending: 8, max_queued: 4, min_priority_fee: 1, min_base_fee: 1, ..config() };
        let pool = TxPool::new(config);
        let unit = U256::from(21_000 * 5 * GWEI);
        let senders: Vec<Address> = (0..SENDERS).map(|i| Address::with_last_byte(i as u8 + 1)).collect();
        let mut accounts: Vec<AccountInfoLite> =
            vec![AccountInfoLite { nonce: 0, balance: unit * U256::from(8u8) }; SENDERS];
        let mut sequence = 0u64;

        for op in ops {
            match op {
                Op::Add { sender, nonce_ahead, fee_cap, tip } => {
                    let mut tx = eip1559_tx(accounts[sender].nonce + nonce_ahead, fee_cap, tip);
                    tx.value = U256::ZERO;
                    sequence += 1;
                    let result = insert_unsigned(&pool, senders[sender], tx, accounts[sender], sequence);
                    if let Err(err) = result {
                        prop_assert!(!matches!(err, PoolError::NonceTooLow { .. }), "{}", err);
                    }
                }
                Op::Block { sender, nonce_step, balance_units } => {
                    accounts[sender].nonce += nonce_step;
                    accounts[sender].balance = unit * U256::from(balance_units);
                    let state = |address: Address| {
                        senders.iter().position(|s| *s == address).map(|i| accounts[i]).unwrap_or_default()
                    };
                    pool.on_canonical_block(&[], &[senders[sender]], &state, 0);
                    let account = accounts[sender];
                    let content = pool.content();
                    for txs in [content.pending.get(&senders[sender]), content.queued.get(&senders[sender])].into_iter().flatten() {
                        prop_assert!(txs.keys().all(|nonce| *nonce >= account.nonce));
                    }
                }
                Op::Remove { index } => {
                    let content = pool.content();
                    let all: Vec<B256> = content.pending.values().chain(content.queued.values())
                        .flat_map(|txs| txs.values().map(|tx| tx.hash)).collect();
                    if let Some(hash) = all.get(index % all.len().max(1)) {
                        pool.remove_transactions(&[*hash]);
                        prop_assert!(!pool.contains(hash));
                    }
                }
                Op::Best { base_fee, invalid_sender } => {
                    let base_fee = base_fee * GWEI as u64;
                    let content = pool.content();
                    let mut best = pool.best_transactions(base_fee);
                    let mut next_nonce: HashMap<Address, u64> = HashMap::new();
                    let invalid = invalid_sender.map(|i| senders[i]);
                    let mut yielded = 0;
                    while let Some(tx) = best.next() {
                        yielded += 1;
                        prop_assert!(Some(tx.sender) != invalid || !next_nonce.contains_key(&tx.sender));
                        let pending = &content.pending[&tx.sender];
                        let expected = next_nonce.get(&tx.sender).copied().unwrap_or(*pending.keys().next().unwrap());
                        prop_assert_eq!(tx.nonce(), expected);
                        prop_assert!(pending.contains_key(&tx.nonce()));
                        prop_assert!(tx.effective_tip(base_fee).is_some());
                        next_nonce.insert(tx.sender, tx.nonce() + 1);
                        if Some(tx.sender) == invalid {
                            best.mark_invalid(tx.sender);
                        }
                    }
                    prop_assert!(yielded <= pool.status().pending);
                    if invalid.is_none() {
                        // Each sender's pending sequence up to its first transaction that
                        // cannot pay the base fee.
                        for (sender, txs) in &content.pending {
                            let payable = txs.values().take_while(|tx| tx.max_fee_per_gas() >= u128::from(base_fee)).count() as u64;
                            let first = *txs.keys().next().unwrap();
                            let taken = next_nonce.get(sender).map_or(0, |next| next - first);
                            prop_assert_eq!(taken, payable);
                        }
                    }
                }
            }
            pool.assert_invariants();
            let status = pool.status();
            let content = pool.content();
            prop_assert_eq!(status.pending, content.pending.values().map(|txs| txs.len()).sum::<usize>());
            prop_assert_eq!(status.queued, content.queued.values().map(|txs| txs.len()).sum::<usize>());
            prop_assert_eq!(pool.len(), status.pending + status.queued);
            // No gaps in pending: each sender's pending nonces are consecutive from the
            // account nonce.
            for (sender, txs) in &content.pending {
                let index = senders.iter().position(|s| s == sender).unwrap();
                let nonces: Vec<u64> = txs.keys().copied().collect();
                let expected: Vec<u64> = (accounts[index].nonce..accounts[index].nonce + nonces.len() as u64).collect();
                prop_assert_eq!(nonces, expected);
            }
        }
    }
}

#[test]
fn rejects_max_nonce() {
    let (pool, state) = setup(config(), 1);
    let err = err(&pool, &state, &transfer(&key(0), u64::MAX, 2, 1));
    assert_eq!(err, PoolError::NonceMax(u64::MAX));
    assert!(err.to_string().starts_with("nonce has max value"));
}

#[test]
fn pool_and_iterator_can_cross_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}
    assert_send_sync::<TxPool>();
    assert_send_sync::<PooledTx>();
    assert_send::<BestTransactions>();
}
