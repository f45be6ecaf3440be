pub async fn run(_c: BenchCommand) -> eyre::Result<()> {
    Ok(())
}
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    X,
}
