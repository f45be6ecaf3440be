//! Who produces a block: the span's producers elected on L1, and the replacements made
//! within the span (docs/producers.md).
//!
//! - **Election.** Span `k > 0` takes the candidates the root contract ranks by stake
//!   votes (`producerRanking`), read at the L1 block named by the anchor
//!   (`parentBeaconBlockRoot`) of block `(k - 1) * span`, the first block of the span
//!   before: the first `elected` are its producers, the rest its reserves, in order.
//!   Span 0, a zero anchor (a chain without an L1) and an L1 that ranks no candidate
//!   keep the chain spec's genesis producers, with no reserves.
//! - **Replacement.** When a sprint ends in which the producer in turn sealed so few of
//!   its blocks that it missed at least `replaceMissedPercent` of them, the next
//!   reserve takes its place for the rest of the span, from the next sprint's first
//!   block. Without a reserve nothing changes (the backups keep covering).
//!
//! Both are functions of the block's ancestry and of L1 state read by block hash, so
//! every node that imports a chain computes the same producers for it, and all switch
//! at the same block of the chain KoMaBFT finalizes.

use crate::{ImportError, ProducerSchedule};
use alloy_primitives::{Address, B256};
use koma_primitives::{ChainSpec, SealedHeader};
use koma_storage::Database;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Where the candidate rankings read on L1 come from.
pub trait ProducerRankings: Send + Sync {
    /// The candidates ranked at L1 block `anchor`, most votes first, or `None` while
    /// this node has not read them (it asks its L1 meanwhile).
    fn ranking_at(&self, anchor: B256) -> Option<Arc<Vec<Address>>>;
}

/// No L1 reading: every span keeps the genesis producers.
#[derive(Debug, Clone, Copy, Default)]
pub struct GenesisProducers;

impl ProducerRankings for GenesisProducers {
    fn ranking_at(&self, _: B256) -> Option<Arc<Vec<Address>>> {
        Some(Arc::default())
    }
}

/// A span's producers as elected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanElection {
    pub span: u64,
    /// The block whose L1 anchor the ranking was read at (`None` for span 0).
    pub source: Option<(u64, B256)>,
    /// That anchor (zero: none, the genesis producers).
    pub anchor: B256,
    /// Whether L1 ranked candidates (else the genesis producers hold).
    pub from_l1: bool,
    pub elected: Vec<Address>,
    pub reserves: Vec<Address>,
}

/// A producer replaced within a span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    /// The first block the replacement produces in turn for (a sprint's first block).
    pub from_block: u64,
    pub replaced: Address,
    pub by: Address,
    /// How many of its sprint's blocks the replaced producer sealed.
    pub sealed: u64,
}

/// The producers of one sprint of a chain: the span's election and what was replaced
/// before the sprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SprintProducers {
    pub election: Arc<SpanElection>,
    pub replacements: Vec<Replacement>,
    /// The producers, in succession order.
    pub producers: Vec<Address>,
    /// How many reserves are in use.
    reserves_used: usize,
}

impl SprintProducers {
    pub fn schedule(&self, spec: &ChainSpec) -> ProducerSchedule {
        ProducerSchedule::new(self.producers.clone(), spec.producers.sprint)
    }
}

/// Most sprint states kept (they are recomputed from headers when evicted).
const CACHED: usize = 4096;

/// The producer elections of one chain, with the sprint states computed so far.
pub struct Elections {
    rankings: Arc<dyn ProducerRankings>,
    /// By the hash of the block before the sprint's first block.
    sprints: Mutex<HashMap<B256, Arc<SprintProducers>>>,
}

impl std::fmt::Debug for Elections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Elections").finish_non_exhaustive()
    }
}

impl Elections {
    pub fn new(rankings: Arc<dyn ProducerRankings>) -> Self {
        Self {
            rankings,
            sprints: Mutex::new(HashMap::new()),
        }
    }

    /// Elections on a chain without an L1 reading: the genesis producers throughout.
    pub fn genesis() -> Self {
        Self::new(Arc::new(GenesisProducers))
    }

    /// The producers of block `number`, whose parent is `parent` (stored in `db`, as
    /// are its ancestors). [`ImportError::ProducersNotRead`] if the span's ranking was
    /// not read from L1 here yet.
    pub fn producers_for(
        &self,
        spec: &ChainSpec,
        db: &Database,
        parent: &SealedHeader,
        number: u64,
    ) -> Result<Arc<SprintProducers>, ImportError> {
        let sprint = spec.producers.sprint.max(1);
        let first = number
            .checked_div(sprint)
            .and_then(|s| s.checked_mul(sprint))
            .unwrap_or(0);
        self.sprint_state(spec, db, parent, first)
    }

    /// The election of span `span` on the chain through `tip` (which must reach its
    /// source block, the first block of the span before).
    pub fn election(
        &self,
        spec: &ChainSpec,
        db: &Database,
        tip: &SealedHeader,
        span: u64,
    ) -> Result<Arc<SpanElection>, ImportError> {
        let params = &spec.producers;
        let genesis = |source, anchor| {
            Arc::new(SpanElection {
                span,
                source,
                anchor,
                from_l1: false,
                elected: params.producers.clone(),
                reserves: Vec::new(),
            })
        };
        let Some(previous) = span.checked_sub(1) else {
            return Ok(genesis(None, B256::ZERO));
        };
        let height = previous.saturating_mul(params.span);
        let source = ancestor(db, tip, height)?;
        let anchor = source.header.parent_beacon_block_root.unwrap_or_default();
        let source_id = Some((height, source.hash));
        if anchor.is_zero() {
            return Ok(genesis(source_id, anchor));
        }
        let ranking = self
            .rankings
            .ranking_at(anchor)
            .ok_or(ImportError::ProducersNotRead {
                number: span.saturating_mul(params.span),
                anchor,
            })?;
        if ranking.is_empty() {
            return Ok(genesis(source_id, anchor));
        }
        let n = params.elected_count().min(ranking.len());
        let (elected, reserves) = ranking.split_at(n);
        Ok(Arc::new(SpanElection {
            span,
            source: source_id,
            anchor,
            from_l1: true,
            elected: elected.to_vec(),
            reserves: reserves.to_vec(),
        }))
    }

    /// The producers of the sprint starting at block `first` on the chain through
    /// `tip` (at or above `first - 1`).
    fn sprint_state(
        &self,
        spec: &ChainSpec,
        db: &Database,
        tip: &SealedHeader,
        first: u64,
    ) -> Result<Arc<SprintProducers>, ImportError> {
        let params = &spec.producers;
        let span_len = params.span.max(1);
        let sprint = params.sprint.max(1);
        let span = first.checked_div(span_len).unwrap_or(0);
        let fresh = |election: Arc<SpanElection>| {
            Arc::new(SprintProducers {
                producers: election.elected.clone(),
                election,
                replacements: Vec::new(),
                reserves_used: 0,
            })
        };
        if first.checked_rem(span_len) == Some(0) || params.replace_missed_percent == 0 {
            return Ok(fresh(self.election(spec, db, tip, span)?));
        }
        let Some(last) = first.checked_sub(1) else {
            return Ok(fresh(self.election(spec, db, tip, span)?));
        };
        let before = ancestor(db, tip, last)?;
        if let Some(known) = self.cached(&before.hash) {
            return Ok(known);
        }
        // the sprint before, and how its producer in turn did
        let previous_first = first.saturating_sub(sprint);
        let previous = self.sprint_state(spec, db, &before, previous_first)?;
        let schedule = previous.schedule(spec);
        let in_turn = schedule.in_turn(previous_first);
        let mut sealed = 0u64;
        let mut header = before.clone();
        loop {
            if header.header.beneficiary == in_turn {
                sealed = sealed.saturating_add(1);
            }
            if header.header.number <= previous_first {
                break;
            }
            header = parent_of(db, &header)?;
        }
        let missed = sprint.saturating_sub(sealed);
        let replace = missed.saturating_mul(100)
            >= params.replace_missed_percent.saturating_mul(sprint)
            && previous.reserves_used < previous.election.reserves.len();
        let state = if replace {
            let mut next = (*previous).clone();
            let by = next
                .election
                .reserves
                .get(next.reserves_used)
                .copied()
                .unwrap_or_default();
            if let Some(slot) = next.producers.iter_mut().find(|p| **p == in_turn) {
                *slot = by;
            }
            next.reserves_used = next.reserves_used.saturating_add(1);
            next.replacements.push(Replacement {
                from_block: first,
                replaced: in_turn,
                by,
                sealed,
            });
            tracing::debug!(block = first, %in_turn, %by, sealed, "producer replaced for the rest of the span");
            Arc::new(next)
        } else {
            previous
        };
        self.remember(before.hash, state.clone());
        Ok(state)
    }

    fn cached(&self, hash: &B256) -> Option<Arc<SprintProducers>> {
        self.sprints
            .lock()
            .ok()
            .and_then(|map| map.get(hash).cloned())
    }

    fn remember(&self, hash: B256, state: Arc<SprintProducers>) {
        if let Ok(mut map) = self.sprints.lock() {
            if map.len() >= CACHED {
                map.clear();
            }
            map.insert(hash, state);
        }
    }
}

fn parent_of(db: &Database, header: &SealedHeader) -> Result<SealedHeader, ImportError> {
    let hash = header.header.parent_hash;
    db.header(hash)?
        .map(|header| SealedHeader { hash, header })
        .ok_or_else(|| {
            ImportError::Internal(format!(
                "ancestor {hash} of block {} is not stored",
                header.header.number
            ))
        })
}

/// The block at `height` on the chain through `tip` (at or above it): by number once
/// the walk reaches the canonical chain.
fn ancestor(db: &Database, tip: &SealedHeader, height: u64) -> Result<SealedHeader, ImportError> {
    let mut at = tip.clone();
    while at.header.number > height {
        if db.is_canonical(at.hash, at.header.number)? {
            return db.header_by_number(height)?.ok_or_else(|| {
                ImportError::Internal(format!("canonical block {height} is not stored"))
            });
        }
        at = parent_of(db, &at)?;
    }
    if at.header.number == height {
        Ok(at)
    } else {
        Err(ImportError::Internal(format!(
            "block {} has no ancestor at {height}",
            at.header.number
        )))
    }
}
