//! Command-line interface.

use alloy::signers::local::PrivateKeySigner;
use clap::{Args, Parser, Subcommand};
use eyre::WrapErr;
use std::path::{Path, PathBuf};

/// KOMA: an EVM Layer-2 sidechain with a Proof-of-Stake checkpoint layer.
#[derive(Debug, Parser)]
#[command(name = "koma", version, about, long_about = None)]
pub struct Cli {
    /// Log filter (tracing EnvFilter syntax, e.g. `info`, `debug,koma_rpc=trace`);
    /// RUST_LOG overrides it.
    #[arg(long, global = true, default_value = "info")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a local development chain with embedded defaults (chain id 42424, the 10
    /// standard dev accounts funded, a block every second, RPC on 127.0.0.1:8545).
    Devnet(DevnetArgs),
    /// Run a node of the chain described by a chain spec file.
    Node(NodeArgs),
    /// Manage producer keys (encrypted keystore files).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Inspect or check a node's database (the node must be stopped).
    #[command(subcommand)]
    Db(DbCommand),
    /// Benchmarks: executor, state root, end-to-end load over JSON-RPC.
    #[command(subcommand)]
    Bench(crate::bench::BenchCommand),
}

#[derive(Debug, Args)]
pub struct RpcArgs {
    /// Address the JSON-RPC server (HTTP and WebSocket) listens on. Loopback by
    /// default; expose it on purpose only.
    #[arg(long, default_value = "127.0.0.1")]
    pub http_addr: String,
    /// Port of the JSON-RPC server (HTTP and WebSocket share it).
    #[arg(long, default_value_t = 8545)]
    pub http_port: u16,
    /// Origins allowed by CORS (comma separated, `*` for any). Off by default.
    #[arg(long, value_delimiter = ',')]
    pub http_corsdomain: Option<Vec<String>>,
    /// Largest JSON-RPC request body accepted, in bytes.
    #[arg(long, default_value_t = 5 * 1024 * 1024)]
    pub rpc_max_request_size: u32,
    /// Most simultaneous RPC connections.
    #[arg(long, default_value_t = 1000)]
    pub rpc_max_connections: u32,
}

#[derive(Debug, Args)]
pub struct DevnetArgs {
    /// Data directory. If it already holds the devnet, the chain resumes from its
    /// head. Default: a fresh temporary directory removed at exit.
    #[arg(long)]
    pub datadir: Option<PathBuf>,
    /// Block time in milliseconds (default: the spec's 1000).
    #[arg(long)]
    pub block_time_ms: Option<u64>,
    /// Block gas limit (default: the spec's 600,000,000).
    #[arg(long)]
    pub gas_limit: Option<u64>,
    #[command(flatten)]
    pub rpc: RpcArgs,
}

#[derive(Debug, Args)]
pub struct NodeArgs {
    /// Chain spec (genesis) JSON file, e.g. genesis/devnet.json.
    #[arg(long)]
    pub genesis: PathBuf,
    /// Data directory (created if missing).
    #[arg(long)]
    pub datadir: PathBuf,
    /// Producer keystore (Web3 Secret Storage JSON, see `koma keys new`). Without
    /// it the node follows the chain and serves RPC but does not produce.
    #[arg(long)]
    pub producer_keystore: Option<PathBuf>,
    /// File holding the keystore password (never pass secrets on the command line).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    #[command(flatten)]
    pub rpc: RpcArgs,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a new key and write it as an encrypted keystore file.
    New {
        /// Directory the keystore file is written to.
        #[arg(long)]
        keystore_dir: PathBuf,
        /// File holding the password that encrypts the key.
        #[arg(long)]
        password_file: PathBuf,
    },
    /// Decrypt a keystore and print its address (never the key).
    Show {
        #[arg(long)]
        keystore: PathBuf,
        #[arg(long)]
        password_file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Re-execute every block from genesis in a scratch database and check each
    /// block's state root, receipts root, bloom and gas used, and the head.
    Verify {
        #[arg(long)]
        datadir: PathBuf,
        /// Chain spec of the database (default: the embedded devnet spec).
        #[arg(long)]
        genesis: Option<PathBuf>,
    },
}

fn read_password(path: &Path) -> eyre::Result<String> {
    let pw = std::fs::read_to_string(path)
        .wrap_err_with(|| format!("cannot read password file {}", path.display()))?;
    let pw = pw.trim_end_matches(['\n', '\r']).to_string();
    if pw.is_empty() {
        eyre::bail!("password file {} is empty", path.display());
    }
    Ok(pw)
}

/// Decrypts a producer keystore.
pub fn load_keystore(keystore: &Path, password_file: &Path) -> eyre::Result<PrivateKeySigner> {
    let pw = read_password(password_file)?;
    PrivateKeySigner::decrypt_keystore(keystore, pw)
        .map_err(|e| eyre::eyre!("cannot decrypt keystore {}: {e}", keystore.display()))
}

pub fn keys(cmd: KeysCommand) -> eyre::Result<()> {
    match cmd {
        KeysCommand::New {
            keystore_dir,
            password_file,
        } => {
            let pw = read_password(&password_file)?;
            std::fs::create_dir_all(&keystore_dir)?;
            let mut rng = alloy::signers::k256::elliptic_curve::rand_core::OsRng;
            let (signer, file) = PrivateKeySigner::new_keystore(&keystore_dir, &mut rng, pw, None)
                .map_err(|e| eyre::eyre!("cannot write keystore: {e}"))?;
            println!("address:  {}", signer.address());
            println!("keystore: {}", keystore_dir.join(file).display());
            Ok(())
        }
        KeysCommand::Show {
            keystore,
            password_file,
        } => {
            let signer = load_keystore(&keystore, &password_file)?;
            println!("address: {}", signer.address());
            Ok(())
        }
    }
}
