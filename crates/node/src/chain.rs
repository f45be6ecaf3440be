//! The single writer of the chain: block production, gossip import and sync all go
//! through [`ChainWriter`], one at a time, and it announces what changed to the pool,
//! the RPC subscriptions and the head watchers.

use alloy::consensus::ReceiptEnvelope;
use alloy_primitives::B256;
use koma_primitives::{Block, ChainSpec, SealedHeader};
use koma_producer::{ImportError, ImportOutcome};
use koma_rpc::{ChainEvent, PoolStateView};
use koma_storage::{Database, StoredBody};
use koma_txpool::TxPool;
use std::sync::Arc;
use tokio::sync::{broadcast, watch};

#[derive(Debug)]
pub(crate) struct ChainWriter {
    pub spec: Arc<ChainSpec>,
    pub db: Database,
    pub pool: Arc<TxPool>,
    pub events: broadcast::Sender<Arc<ChainEvent>>,
    /// The canonical head; producers and sync wait on it.
    pub head: watch::Sender<SealedHeader>,
    /// Held while a block is built or imported.
    pub write: tokio::sync::Mutex<()>,
    pub max_reorg_depth: u64,
    /// Number of the last block final at the node's threshold: no reorg goes below it.
    pub finalized: std::sync::atomic::AtomicU64,
}

/// The pool already recovered the sender of every transaction it holds.
struct PoolSenders<'a>(&'a TxPool);

impl koma_producer::KnownSenders for PoolSenders<'_> {
    fn sender(&self, tx: &B256) -> Option<alloy_primitives::Address> {
        self.0.get(tx).map(|p| p.sender)
    }
}

impl ChainWriter {
    /// A block joined the canonical chain: the pool forgets its transactions, the
    /// subscriptions hear about it.
    pub fn canonical(
        &self,
        header: SealedHeader,
        body: StoredBody,
        receipts: Vec<ReceiptEnvelope>,
    ) {
        let mined: Vec<B256> = body.transactions.iter().map(|t| *t.tx_hash()).collect();
        let next_base_fee = self.spec.base_fee_after(&header.header);
        self.pool.on_canonical_block(
            &mined,
            &body.senders,
            &PoolStateView(self.db.clone()),
            next_base_fee,
        );
        self.head.send_replace(header.clone());
        let _ = self.events.send(Arc::new(ChainEvent {
            header,
            body,
            receipts,
            removed: false,
        }));
    }

    /// Reads a stored block back for announcing it.
    fn stored(
        &self,
        header: &SealedHeader,
    ) -> Result<(StoredBody, Vec<ReceiptEnvelope>), ImportError> {
        let body = self
            .db
            .body(header.hash)?
            .ok_or_else(|| ImportError::Internal(format!("body of {} missing", header.hash)))?;
        let receipts = self.db.receipts(header.hash)?.unwrap_or_default();
        Ok((body, receipts))
    }

    /// Applies fork choice to a block from a peer and announces the result.
    pub fn import(&self, block: &Block) -> Result<ImportOutcome, ImportError> {
        let known = PoolSenders(&self.pool);
        let outcome =
            koma_producer::import_with(&self.spec, &self.db, block, self.reorg_bound(), &known)?;
        self.announce(&outcome)?;
        Ok(outcome)
    }

    /// How deep a reorg may go now: never below the last final block (at the node's
    /// threshold), and never deeper than the configured bound. Since the final block
    /// is canonical (see [`ChainWriter::adopt_final`]), every branch fork choice can
    /// switch to contains it.
    fn reorg_bound(&self) -> u64 {
        let finalized = self.finalized.load(std::sync::atomic::Ordering::Relaxed);
        self.max_reorg_depth
            .min(self.db.head().number().saturating_sub(finalized))
    }

    /// KoMaBFT finalized the stored block `hash` at the node's threshold: makes sure it
    /// is on the canonical chain (reorging to it if fork choice had left its branch),
    /// then records it as the floor of every later reorg. Fork choice and finality
    /// agree from then on: the canonical chain is the heaviest that contains it.
    pub fn adopt_final(&self, hash: B256) -> Result<(), ImportError> {
        let header = self
            .db
            .header(hash)?
            .ok_or_else(|| ImportError::Internal(format!("final block {hash} is not stored")))?;
        let number = header.number;
        if !self.db.is_canonical(hash, number)? {
            tracing::warn!(number, %hash, "final block is on a branch fork choice had left; switching to it");
            let tip = SealedHeader { hash, header };
            let outcome = koma_producer::reorg_to(&self.spec, &self.db, tip, self.max_reorg_depth)?;
            self.announce(&outcome)?;
        }
        self.finalized
            .fetch_max(number, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Tells the pool, the subscriptions and the head watchers what an import did.
    fn announce(&self, outcome: &ImportOutcome) -> Result<(), ImportError> {
        match outcome {
            ImportOutcome::Extended(header) => {
                let (body, receipts) = self.stored(header)?;
                self.canonical(header.clone(), body, receipts);
            }
            ImportOutcome::Reorged {
                new_head,
                unwound,
                applied,
            } => {
                tracing::info!(
                    depth = unwound.len(),
                    applied = applied.len(),
                    number = new_head.number(),
                    hash = %new_head.hash,
                    "reorg"
                );
                for (header, body) in unwound {
                    let receipts = self.db.receipts(header.hash)?.unwrap_or_default();
                    let ev = ChainEvent {
                        header: header.clone(),
                        body: body.clone(),
                        receipts,
                        removed: true,
                    };
                    let _ = self.events.send(Arc::new(ev));
                }
                for header in applied {
                    let (body, receipts) = self.stored(header)?;
                    self.canonical(header.clone(), body, receipts);
                }
                if applied.is_empty() {
                    self.head.send_replace(new_head.clone());
                }
                // Unwound transactions the new chain did not include go back to the pool.
                let txs = unwound
                    .iter()
                    .flat_map(|(_, b)| b.transactions.iter().cloned())
                    .collect();
                let base_fee = self.spec.base_fee_after(&self.db.head().header);
                self.pool
                    .reinject(txs, &PoolStateView(self.db.clone()), base_fee);
            }
            ImportOutcome::AlreadyKnown | ImportOutcome::SideChain { .. } => {}
        }
        Ok(())
    }

    /// [`ChainWriter::adopt_final`] under the write lock, on a blocking thread.
    pub async fn adopt_final_async(self: &Arc<Self>, hash: B256) -> Result<(), ImportError> {
        let _guard = self.write.lock().await;
        let chain = self.clone();
        tokio::task::spawn_blocking(move || chain.adopt_final(hash))
            .await
            .map_err(|e| ImportError::Internal(e.to_string()))?
    }

    /// [`ChainWriter::import`] under the write lock, on a blocking thread.
    pub async fn import_async(
        self: &Arc<Self>,
        block: Block,
    ) -> Result<ImportOutcome, ImportError> {
        let _guard = self.write.lock().await;
        let chain = self.clone();
        tokio::task::spawn_blocking(move || chain.import(&block))
            .await
            .map_err(|e| ImportError::Internal(e.to_string()))?
    }

    /// Imports consecutive blocks (a sync batch) under one lock; stops at the first error.
    pub async fn import_many(self: &Arc<Self>, blocks: Vec<Block>) -> Result<(), ImportError> {
        let _guard = self.write.lock().await;
        let chain = self.clone();
        tokio::task::spawn_blocking(move || {
            for block in &blocks {
                chain.import(block)?;
            }
            Ok(())
        })
        .await
        .map_err(|e| ImportError::Internal(e.to_string()))?
    }
}
