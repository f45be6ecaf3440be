//! Producer elections (docs/producers.md): a span takes the producers ranked on L1 at
//! the anchor of the previous span's first block, a producer in turn that misses its
//! sprint is replaced by the next reserve from the next sprint on, and an importer with
//! the same L1 reading accepts exactly the blocks of that schedule.

use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::{Address, B256, Bytes};
use koma_primitives::{Block, ChainSpec, dev};
use koma_producer::test_utils::VecPool;
use koma_producer::{
    DepositSource, Elections, ImportError, NoKnownSenders, ProducerRankings, build_block_with,
    import_block_with,
};
use koma_storage::Database;
use std::collections::HashMap;
use std::sync::Arc;

const ANCHOR: B256 = B256::repeat_byte(0xA1);

/// No deposits; every block names [`ANCHOR`] as its L1 block.
struct Anchored;

impl DepositSource for Anchored {
    fn confirmed_from(&self, _: u64, _: usize) -> Vec<Bytes> {
        Vec::new()
    }
    fn agreed_through(&self) -> u64 {
        0
    }
    fn l1_anchor(&self, _: B256) -> B256 {
        ANCHOR
    }
}

/// Rankings "read on L1", by anchor.
struct Rankings(HashMap<B256, Arc<Vec<Address>>>);

impl ProducerRankings for Rankings {
    fn ranking_at(&self, anchor: B256) -> Option<Arc<Vec<Address>>> {
        self.0.get(&anchor).cloned()
    }
}

fn key(i: u32) -> PrivateKeySigner {
    dev::dev_producer_key(i)
}

/// Genesis producers 0 and 1; sprints of 2 blocks, spans of 8; 2 elected; a producer
/// missing half its sprint is replaced.
fn spec() -> ChainSpec {
    let mut spec = ChainSpec::devnet();
    spec.producers.producers = vec![key(0).address(), key(1).address()];
    spec.producers.sprint = 2;
    spec.producers.span = 8;
    spec.producers.elected = 2;
    spec.producers.replace_missed_percent = 50;
    spec
}

struct Chain {
    spec: ChainSpec,
    db: Database,
    elections: Elections,
    _dir: tempfile::TempDir,
}

impl Chain {
    fn new(rankings: Rankings) -> Self {
        let spec = spec();
        let dir = tempfile::tempdir().unwrap();
        Self {
            db: Database::open(dir.path(), &spec).unwrap(),
            elections: Elections::new(Arc::new(rankings)),
            spec,
            _dir: dir,
        }
    }

    /// The producers of the next block, in succession order.
    fn producers(&self) -> Vec<Address> {
        let head = self.db.head();
        self.elections
            .producers_for(&self.spec, &self.db, &head, head.number() + 1)
            .unwrap()
            .producers
            .clone()
    }

    /// The next block, sealed by `sealer` (at its distance's earliest time).
    fn build(&self, sealer: &PrivateKeySigner) -> Result<Block, String> {
        let ts = self.db.head().header.timestamp + 1;
        build_block_with(
            &self.spec,
            &self.db,
            &mut VecPool::default(),
            &Anchored,
            &self.elections,
            sealer,
            ts,
            None,
        )
        .map(|b| b.block)
        .map_err(|e| e.to_string())
    }

    /// Builds the next block with its producer in turn, or with `instead` if that one
    /// is `silent`.
    fn advance(&self, silent: Option<Address>, instead: &PrivateKeySigner) -> Block {
        let head = self.db.head();
        let schedule = self
            .elections
            .producers_for(&self.spec, &self.db, &head, head.number() + 1)
            .unwrap()
            .schedule(&self.spec);
        let in_turn = schedule.in_turn(head.number() + 1);
        let sealer = (0..6)
            .map(key)
            .find(|k| k.address() == in_turn)
            .expect("a dev key");
        if Some(in_turn) == silent {
            self.build(instead).unwrap()
        } else {
            self.build(&sealer).unwrap()
        }
    }
}

fn ranking(order: &[u32]) -> Rankings {
    let list = order.iter().map(|i| key(*i).address()).collect();
    Rankings(HashMap::from([(ANCHOR, Arc::new(list))]))
}

#[test]
fn spans_follow_the_l1_ranking_and_a_silent_producer_is_replaced() {
    let chain = Chain::new(ranking(&[2, 1, 3]));
    let importer = Chain::new(ranking(&[2, 1, 3]));
    let import = |block: &Block| {
        import_block_with(
            &importer.spec,
            &importer.db,
            block,
            &NoKnownSenders,
            &importer.elections,
        )
    };
    let genesis = vec![key(0).address(), key(1).address()];
    // spans 0 and 1 keep the genesis producers (span 1's source is genesis: no anchor)
    for _ in 1..16 {
        assert_eq!(chain.producers(), genesis);
        let block = chain.advance(None, &key(0));
        import(&block).unwrap();
    }
    // span 2 (blocks 16..23): elected at block 8's anchor: producers 2 and 1, reserve 3
    let elected = vec![key(2).address(), key(1).address()];
    assert_eq!(chain.producers(), elected);
    // a genesis producer that is not elected can no longer seal
    let refused = chain.build(&key(0)).unwrap_err();
    assert!(refused.contains("not a producer"), "{refused}");
    // producer 2 is in turn for blocks 16 and 17 and stays silent: 1 covers
    for _ in 16..18 {
        let block = chain.advance(Some(key(2).address()), &key(1));
        assert_eq!(block.header.beneficiary, key(1).address());
        import(&block).unwrap();
    }
    // from block 18, 3 replaces 2 for the rest of the span, on both nodes
    let replaced = vec![key(3).address(), key(1).address()];
    assert_eq!(chain.producers(), replaced);
    let sprint = importer
        .elections
        .producers_for(&importer.spec, &importer.db, &importer.db.head(), 18)
        .unwrap();
    assert_eq!(sprint.producers, replaced);
    assert_eq!(sprint.replacements.len(), 1);
    assert_eq!(sprint.replacements[0].from_block, 18);
    assert_eq!(sprint.replacements[0].replaced, key(2).address());
    assert_eq!(sprint.replacements[0].by, key(3).address());
    assert_eq!(sprint.replacements[0].sealed, 0);
    // the replaced producer's block is refused by the importer
    let stale = {
        let other = Chain::new(ranking(&[2, 1, 3]));
        // same chain on a third node, then producer 2 seals block 18 there
        for n in 1..=17 {
            let block = chain_block(&chain, n);
            import_block_with(
                &other.spec,
                &other.db,
                &block,
                &NoKnownSenders,
                &other.elections,
            )
            .unwrap();
        }
        other.build(&key(2))
    };
    assert!(stale.unwrap_err().contains("not a producer"));
    for _ in 18..24 {
        let block = chain.advance(None, &key(0));
        import(&block).unwrap();
    }
    // block 20 was sealed by the reserve, in turn
    assert_eq!(chain_block(&chain, 20).header.beneficiary, key(3).address());
    // span 3 starts over with the election: 2 is back
    assert_eq!(chain.producers(), elected);
}

#[test]
fn a_producer_that_seals_enough_of_its_sprint_stays() {
    let chain = Chain::new(ranking(&[2, 1, 3]));
    for _ in 1..16 {
        chain.advance(None, &key(0));
    }
    // producer 2 seals block 16, misses 17: half its sprint, at the 50% bar: replaced
    chain.advance(None, &key(0));
    chain.advance(Some(key(2).address()), &key(1));
    assert_eq!(chain.producers()[0], key(3).address());
    let chain = Chain::new(ranking(&[2, 1, 3]));
    for _ in 1..18 {
        chain.advance(None, &key(0));
    }
    assert_eq!(
        chain.producers()[0],
        key(2).address(),
        "sealed its whole sprint"
    );
}

#[test]
fn without_a_reserve_nothing_is_replaced_and_an_empty_ranking_keeps_the_genesis_set() {
    let chain = Chain::new(ranking(&[2, 1]));
    for _ in 1..16 {
        chain.advance(None, &key(0));
    }
    for _ in 16..18 {
        chain.advance(Some(key(2).address()), &key(1));
    }
    assert_eq!(chain.producers(), vec![key(2).address(), key(1).address()]);
    let chain = Chain::new(ranking(&[]));
    for _ in 1..17 {
        chain.advance(None, &key(0));
    }
    assert_eq!(chain.producers(), vec![key(0).address(), key(1).address()]);
}

#[test]
fn a_block_whose_ranking_is_not_read_is_held_not_refused() {
    let chain = Chain::new(ranking(&[2, 1, 3]));
    let importer = Chain::new(Rankings(HashMap::new()));
    for n in 1..=16 {
        let block = chain.advance(None, &key(0));
        assert_eq!(block.header.number, n);
        let result = import_block_with(
            &importer.spec,
            &importer.db,
            &block,
            &NoKnownSenders,
            &importer.elections,
        );
        if n < 16 {
            result.unwrap();
        } else {
            let err = result.unwrap_err();
            assert!(
                matches!(err, ImportError::ProducersNotRead { number: 16, anchor } if anchor == ANCHOR),
                "{err}"
            );
            assert!(!err.is_invalid_block());
        }
    }
}

/// Canonical block `n` of `chain`, as gossiped.
fn chain_block(chain: &Chain, n: u64) -> Block {
    let header = chain.db.header_by_number(n).unwrap().unwrap();
    let seal = chain.db.seal(header.hash).unwrap().unwrap();
    let body = chain.db.body(header.hash).unwrap().unwrap();
    koma_producer::block_from(&header, seal, &body)
}
