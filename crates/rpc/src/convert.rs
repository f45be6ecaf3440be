//! Builders of the RPC representations of blocks, transactions, receipts and logs.

use alloy::consensus::transaction::Recovered;
use alloy::consensus::{ReceiptEnvelope, Transaction as _, TxEnvelope};
use alloy::eips::eip2718::Encodable2718;
use alloy::rpc::types::{
    Block, BlockTransactions, Header as RpcHeader, Log, Transaction, TransactionReceipt,
};
use alloy_primitives::{Address, U256};
use koma_primitives::SealedHeader;
use koma_storage::StoredBody;

pub type RpcReceipt = TransactionReceipt<ReceiptEnvelope<Log>>;

pub fn rpc_header(h: &SealedHeader, size: Option<usize>) -> RpcHeader {
    RpcHeader {
        hash: h.hash,
        inner: h.header.clone(),
        total_difficulty: None,
        size: size.map(U256::from),
    }
}

pub fn rpc_transaction(
    tx: &TxEnvelope,
    sender: Address,
    block: Option<(&SealedHeader, u64)>,
) -> Transaction {
    let base_fee = block.and_then(|(h, _)| h.header.base_fee_per_gas);
    Transaction {
        inner: Recovered::new_unchecked(tx.clone(), sender),
        block_hash: block.map(|(h, _)| h.hash),
        block_number: block.map(|(h, _)| h.number()),
        transaction_index: block.map(|(_, i)| i),
        effective_gas_price: block.map(|_| tx.effective_gas_price(base_fee)),
        block_timestamp: block.map(|(h, _)| h.header.timestamp),
    }
}

pub fn rpc_block(h: &SealedHeader, body: &StoredBody, full: bool) -> Block {
    let size = body
        .transactions
        .iter()
        .map(|t| t.encode_2718_len())
        .fold(
            alloy_rlp::Encodable::length(&h.header),
            usize::saturating_add,
        )
        .saturating_add(8);
    let transactions = if full {
        BlockTransactions::Full(
            body.transactions
                .iter()
                .zip(&body.senders)
                .enumerate()
                .map(|(i, (tx, sender))| rpc_transaction(tx, *sender, Some((h, i as u64))))
                .collect(),
        )
    } else {
        BlockTransactions::Hashes(body.transactions.iter().map(|t| *t.tx_hash()).collect())
    };
    Block {
        header: rpc_header(h, Some(size)),
        uncles: Vec::new(),
        transactions,
        withdrawals: Some(Default::default()),
    }
}

/// RPC receipts of a whole block (log indexes run across the block).
pub fn rpc_receipts(
    h: &SealedHeader,
    body: &StoredBody,
    receipts: &[ReceiptEnvelope],
) -> Vec<RpcReceipt> {
    let base_fee = h.header.base_fee_per_gas;
    let mut log_index = 0u64;
    let mut prev_cumulative = 0u64;
    let mut out = Vec::with_capacity(receipts.len());
    for (i, ((tx, sender), receipt)) in body
        .transactions
        .iter()
        .zip(&body.senders)
        .zip(receipts)
        .enumerate()
    {
        let tx_hash = *tx.tx_hash();
        let cumulative = receipt.cumulative_gas_used();
        let gas_used = cumulative.saturating_sub(prev_cumulative);
        prev_cumulative = cumulative;
        let inner = receipt.clone().map_logs(|l| {
            let log = Log {
                inner: l,
                block_hash: Some(h.hash),
                block_number: Some(h.number()),
                block_timestamp: Some(h.header.timestamp),
                transaction_hash: Some(tx_hash),
                transaction_index: Some(i as u64),
                log_index: Some(log_index),
                removed: false,
            };
            log_index = log_index.saturating_add(1);
            log
        });
        let contract_address = tx.kind().is_create().then(|| sender.create(tx.nonce()));
        out.push(TransactionReceipt {
            inner,
            transaction_hash: tx_hash,
            transaction_index: Some(i as u64),
            block_hash: Some(h.hash),
            block_number: Some(h.number()),
            gas_used,
            effective_gas_price: tx.effective_gas_price(base_fee),
            blob_gas_used: None,
            blob_gas_price: None,
            from: *sender,
            to: tx.to(),
            contract_address,
        });
    }
    out
}
