//! `koma db verify`: replays a chain from genesis in a scratch database.

use koma_primitives::ChainSpec;
use koma_producer::import_block;
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
        let seal = source
            .seal(header.hash)?
            .ok_or_else(|| eyre::eyre!("seal of block {number} missing"))?;
        let block = koma_producer::block_from(&header, seal, &body);
        // Full import: header rules, seal, sender recovery, re-execution, every root.
        let committed = import_block(spec, &replay, &block)?;
        if committed.hash != header.hash {
            eyre::bail!(
                "block {number}: replayed hash {} differs from stored {}",
                committed.hash,
                header.hash
            );
        }
        let replayed = replay
            .body(committed.hash)?
            .ok_or_else(|| eyre::eyre!("replayed body {number} missing"))?;
        if replayed.senders != body.senders {
            eyre::bail!("block {number}: stored senders differ from the recovered ones");
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
