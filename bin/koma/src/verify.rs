//! `koma db verify`: replays a chain from genesis in a scratch database.

use koma_primitives::{Block, ChainSpec};
use koma_producer::{check_state_root, execute_block, verify_header};
use koma_storage::Database;
use std::path::Path;
use std::time::Instant;

pub fn verify(spec: &ChainSpec, datadir: &Path) -> eyre::Result<()> {
    if !datadir.join("CURRENT").exists() {
        eyre::bail!("{} does not hold a KOMA database", datadir.display());
    }
    let source = Database::open(datadir, spec)?;
    let scratch_dir = tempfile::Builder::new().prefix("koma-verify-").tempdir()?;
    let replay = Database::open(scratch_dir.path(), spec)?;
    if replay.genesis_hash() != source.genesis_hash() {
        eyre::bail!(
            "genesis mismatch: database {} vs spec {}",
            source.genesis_hash(),
            replay.genesis_hash()
        );
    }
    let head = source.head();
    let started = Instant::now();
    let mut txs = 0usize;
    for number in 1..=head.number() {
        let header = source
            .header_by_number(number)?
            .ok_or_else(|| eyre::eyre!("canonical block {number} missing"))?;
        let body = source
            .body(header.hash)?
            .ok_or_else(|| eyre::eyre!("body of block {number} missing"))?;
        for (i, (tx, stored)) in body.transactions.iter().zip(&body.senders).enumerate() {
            let recovered = koma_txpool::recover_sender(tx)
                .map_err(|e| eyre::eyre!("block {number} tx {i}: {e}"))?;
            if recovered != *stored {
                eyre::bail!(
                    "block {number} tx {i}: stored sender {stored} but signature recovers {recovered}"
                );
            }
        }
        let block = Block {
            header: header.header.clone(),
            body: alloy::consensus::BlockBody {
                transactions: body.transactions.clone(),
                ommers: Vec::new(),
                withdrawals: Some(Default::default()),
            },
        };
        let parent = replay.head();
        verify_header(spec, &parent, &block)?;
        let executed = execute_block(spec, replay.latest(), &block, &body.senders)?;
        let prepared = replay.prepare_state(&executed.changes)?;
        check_state_root(number, header.header.state_root, prepared.state_root)?;
        let committed =
            replay.commit_block(&block, &executed.senders, &executed.receipts, prepared)?;
        if committed.hash != header.hash {
            eyre::bail!(
                "block {number}: replayed hash {} differs from stored {}",
                committed.hash,
                header.hash
            );
        }
        txs += body.transactions.len();
        if number % 1000 == 0 {
            tracing::info!(number, head = head.number(), "verifying");
        }
    }
    println!(
        "verified {} blocks ({txs} transactions) up to head {} in {:.1}s: state roots, receipts roots, blooms and hashes match",
        head.number(),
        head.hash,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
