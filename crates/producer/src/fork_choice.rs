//! Fork choice: the heaviest chain (total difficulty) wins; reorgs unwind to the common
//! ancestor and re-execute the new branch.
//!
//! Blocks that do not extend the head are checked (header rules, seal, senders) and
//! stored as side blocks without executing them. When a side branch becomes strictly
//! heavier than the canonical chain, the node unwinds to the common ancestor with the
//! stored change sets and imports the branch block by block, with full re-execution.
//! If a branch block turns out invalid, the old chain is restored. Ties keep the chain
//! seen first. Each step is an atomic write, so a crash mid-reorg leaves a valid
//! (if lighter) chain that the next import corrects.

use crate::Elections;
use crate::import::{ImportError, KnownSenders, NoKnownSenders, import_block_with, verify_header};
use alloy_primitives::{B256, U256};
use koma_primitives::{Block, ChainSpec, Seal, SealedHeader, SignedHeader};
use koma_storage::{Database, StoredBody};

/// What importing a block did.
#[derive(Debug)]
pub enum ImportOutcome {
    /// Already stored (canonical or side).
    AlreadyKnown,
    /// Extended the canonical head.
    Extended(SealedHeader),
    /// Stored on a side branch that is not heavier than the canonical chain.
    SideChain { hash: B256, total_difficulty: U256 },
    /// A heavier branch became canonical.
    Reorged {
        new_head: SealedHeader,
        /// Blocks that left the canonical chain, newest first (their transactions go
        /// back to the pool; their logs are reported as removed).
        unwound: Vec<(SealedHeader, StoredBody)>,
        /// Blocks that joined it, oldest first.
        applied: Vec<SealedHeader>,
    },
}

/// Rebuilds a block from its stored header, seal and body.
pub fn block_from(header: &SealedHeader, seal: Seal, body: &StoredBody) -> Block {
    Block {
        header: SignedHeader {
            header: header.header.clone(),
            seal,
        },
        body: alloy::consensus::BlockBody {
            transactions: body.transactions.clone(),
            ommers: Vec::new(),
            withdrawals: Some(Default::default()),
        },
    }
}

/// Imports `block` from a peer, applying fork choice. `max_reorg_depth` bounds how
/// many canonical blocks a reorg may unwind.
pub fn import(
    spec: &ChainSpec,
    db: &Database,
    block: &Block,
    max_reorg_depth: u64,
) -> Result<ImportOutcome, ImportError> {
    import_with(
        spec,
        db,
        block,
        max_reorg_depth,
        &NoKnownSenders,
        &Elections::genesis(),
    )
}

/// [`import`] taking the senders it can from `known` (the pool).
pub fn import_with(
    spec: &ChainSpec,
    db: &Database,
    block: &Block,
    max_reorg_depth: u64,
    known: &dyn KnownSenders,
    elections: &Elections,
) -> Result<ImportOutcome, ImportError> {
    let hash = block.header.hash_slow();
    let number = block.header.number;
    if db.header(hash)?.is_some() {
        return Ok(ImportOutcome::AlreadyKnown);
    }
    let head = db.head();
    if block.header.parent_hash == head.hash {
        return Ok(ImportOutcome::Extended(import_block_with(
            spec, db, block, known, elections,
        )?));
    }
    let parent = db
        .header(block.header.parent_hash)?
        .map(|header| SealedHeader {
            hash: block.header.parent_hash,
            header,
        })
        .ok_or(ImportError::UnknownParent {
            number,
            parent: block.header.parent_hash,
        })?;
    let schedule = elections
        .producers_for(spec, db, &parent, number)?
        .schedule(spec);
    verify_header(spec, &schedule, &parent, block)?;
    let senders = crate::import::recover_senders(block, known)?;
    let total_difficulty = db.store_side_block(block, &senders)?;
    let head_td = db.total_difficulty(head.hash)?.unwrap_or_default();
    if total_difficulty <= head_td {
        return Ok(ImportOutcome::SideChain {
            hash,
            total_difficulty,
        });
    }
    reorg_to(
        spec,
        db,
        SealedHeader {
            hash,
            header: block.header.header.clone(),
        },
        max_reorg_depth,
        elections,
    )
}

/// Makes the stored block `tip` (and its stored ancestors) the canonical chain,
/// whatever its weight: unwinds to the common ancestor and re-executes the branch. Used
/// by fork choice for a heavier branch, and by the node to adopt a block that KoMaBFT
/// finalized on a branch the node had left. If a branch block is invalid the old chain
/// is restored and the error returned.
pub fn reorg_to(
    spec: &ChainSpec,
    db: &Database,
    tip: SealedHeader,
    max_reorg_depth: u64,
    elections: &Elections,
) -> Result<ImportOutcome, ImportError> {
    // Walk the branch back to the canonical chain.
    let mut branch = vec![tip.clone()];
    let mut cursor = tip.clone();
    let ancestor = loop {
        let parent_hash = cursor.header.parent_hash;
        let parent = db.header(parent_hash)?.ok_or(ImportError::UnknownParent {
            number: cursor.number(),
            parent: parent_hash,
        })?;
        let parent = SealedHeader {
            hash: parent_hash,
            header: parent,
        };
        if db.is_canonical(parent_hash, parent.number())? {
            break parent;
        }
        branch.push(parent.clone());
        cursor = parent;
    };
    branch.reverse();
    let head = db.head();
    let depth = head.number().saturating_sub(ancestor.number());
    if depth > max_reorg_depth {
        return Err(ImportError::ReorgTooDeep {
            depth,
            max: max_reorg_depth,
        });
    }
    tracing::info!(from = %head.hash, to = %tip.hash, ancestor = ancestor.number(), depth, "reorg");
    let unwound = db.unwind_to(ancestor.number())?;
    let mut applied = Vec::with_capacity(branch.len());
    for header in &branch {
        let body = db.body(header.hash)?.ok_or_else(|| ImportError::Invalid {
            number: header.number(),
            reason: "side block body missing".into(),
        })?;
        let seal = stored_seal(db, header)?;
        match import_block_with(
            spec,
            db,
            &block_from(header, seal, &body),
            &NoKnownSenders,
            elections,
        ) {
            Ok(h) => applied.push(h),
            Err(e) => {
                tracing::warn!(number = header.number(), error = %e, "invalid block on the heavier branch; restoring the old chain");
                db.unwind_to(ancestor.number())?;
                for (h, b) in unwound.iter().rev() {
                    let seal = stored_seal(db, h)?;
                    import_block_with(
                        spec,
                        db,
                        &block_from(h, seal, b),
                        &NoKnownSenders,
                        elections,
                    )?;
                }
                return Err(e);
            }
        }
    }
    let new_head = db.head();
    Ok(ImportOutcome::Reorged {
        new_head,
        unwound,
        applied,
    })
}

/// The stored seal of block `header`, which every stored block but genesis has.
fn stored_seal(db: &Database, header: &SealedHeader) -> Result<Seal, ImportError> {
    db.seal(header.hash)?.ok_or_else(|| ImportError::Invalid {
        number: header.number(),
        reason: "stored block has no seal".into(),
    })
}
