//! `--config FILE`: a TOML file that sets any flag of `koma node` (or `koma devnet`).
//!
//! Keys are the long flag names (`http-port = 8545`, `bootnodes = ["..."]`,
//! `no-discovery = true`). A key is applied only if its flag was not given on the
//! command line, so the command line wins. The file's values become ordinary flags
//! and go through clap's own parsing, so they are checked exactly as flags are.
//! Unknown keys are refused with the list of valid ones (docs/config.md).

use crate::cli::Cli;
use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches};
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

/// Flags that a file cannot set.
const NOT_IN_FILE: [&str; 3] = ["config", "help", "version"];

/// Parses the process's command line and applies `--config`.
pub fn parse() -> Cli {
    parse_from(std::env::args_os().collect()).unwrap_or_else(|e| e.exit())
}

/// Parses `argv` (with the program name first) and applies `--config`.
pub fn parse_from(argv: Vec<OsString>) -> Result<Cli, clap::Error> {
    let command = Cli::command();
    let matches = match command.clone().try_get_matches_from(&argv) {
        Ok(matches) => matches,
        // Required flags may be in the file: read what the command line holds, and let
        // the final parse say what is missing from both.
        Err(e) if e.kind() == clap::error::ErrorKind::MissingRequiredArgument => {
            match command
                .clone()
                .ignore_errors(true)
                .try_get_matches_from(&argv)
            {
                Ok(matches) if has_config(&matches) => matches,
                _ => return Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    let Some((name, sub)) = matches.subcommand() else {
        return Cli::from_arg_matches(&matches);
    };
    let Some(path) = sub
        .try_get_one::<std::path::PathBuf>("config")
        .ok()
        .flatten()
    else {
        return Cli::from_arg_matches(&matches);
    };
    let Some(sub_command) = command.find_subcommand(name) else {
        return Cli::from_arg_matches(&matches);
    };
    let fail = |msg: String| Cli::command().error(clap::error::ErrorKind::InvalidValue, msg);
    let text = std::fs::read_to_string(path)
        .map_err(|e| fail(format!("cannot read config file {}: {e}", path.display())))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| fail(format!("config file {}: {e}", path.display())))?;
    // The flags a file may set: the subcommand's and the global ones.
    let settable: Vec<&clap::Arg> = sub_command
        .get_arguments()
        .chain(command.get_arguments().filter(|a| a.is_global_set()))
        .filter(|a| !a.is_hide_set())
        .filter(|a| a.get_long().is_some_and(|l| !NOT_IN_FILE.contains(&l)))
        .collect();
    let mut extra = Vec::new();
    for (key, value) in &table {
        let Some(arg) = settable.iter().find(|a| a.get_long() == Some(key.as_str())) else {
            let mut valid: Vec<&str> = settable.iter().filter_map(|a| a.get_long()).collect();
            valid.sort_unstable();
            return Err(fail(format!(
                "unknown key `{key}` in config file {} (valid keys: {})",
                path.display(),
                valid.join(", ")
            )));
        };
        let id = arg.get_id().as_str();
        let source = if arg.is_global_set() {
            matches.value_source(id)
        } else {
            sub.value_source(id)
        };
        if source == Some(ValueSource::CommandLine) {
            continue;
        }
        flag_args(key, value, arg, &mut extra)
            .map_err(|msg| fail(format!("config file {}: {msg}", path.display())))?;
    }
    let mut full = argv;
    full.extend(extra.into_iter().map(OsString::from));
    Cli::try_parse_from_config(full, path)
}

impl Cli {
    /// The final parse, with errors (now only possible in the file's values) naming the
    /// file.
    fn try_parse_from_config(argv: Vec<OsString>, path: &Path) -> Result<Cli, clap::Error> {
        let matches = Cli::command().try_get_matches_from(argv).map_err(|e| {
            if e.kind() == clap::error::ErrorKind::MissingRequiredArgument {
                return e;
            }
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            Cli::command().error(
                e.kind(),
                format!(
                    "config file {}: {}",
                    path.display(),
                    first.trim_start_matches("error: ")
                ),
            )
        })?;
        Cli::from_arg_matches(&matches)
    }
}

fn has_config(matches: &clap::ArgMatches) -> bool {
    matches.subcommand().is_some_and(|(_, sub)| {
        sub.try_get_one::<std::path::PathBuf>("config")
            .ok()
            .flatten()
            .is_some()
    })
}

/// The command-line form of `key = value`.
fn flag_args(
    key: &str,
    value: &toml::Value,
    arg: &clap::Arg,
    out: &mut Vec<String>,
) -> Result<(), String> {
    let takes_value = arg.get_action().takes_values();
    let scalar = |v: &toml::Value| -> Result<String, String> {
        match v {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(i) => Ok(i.to_string()),
            toml::Value::Float(f) => Ok(f.to_string()),
            toml::Value::Boolean(b) => Ok(b.to_string()),
            _ => Err(format!(
                "`{key}` must be a string, number or boolean, not {}",
                v.type_str()
            )),
        }
    };
    match value {
        toml::Value::Boolean(b) if !takes_value => {
            if *b {
                out.push(format!("--{key}"));
            }
        }
        _ if !takes_value => return Err(format!("`{key}` is a switch: write `{key} = true`")),
        toml::Value::Array(items) => {
            for item in items {
                out.push(format!("--{key}={}", scalar(item)?));
            }
        }
        v => out.push(format!("--{key}={}", scalar(v)?)),
    }
    Ok(())
}

/// `--metrics`: `IP:PORT`, or a port alone for loopback.
pub fn parse_metrics_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    s.parse()
        .map_err(|_| format!("`{s}` is neither IP:PORT (e.g. 127.0.0.1:9545) nor a port"))
}

fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// Transaction pool limits (geth's `--txpool.*` where they mean the same).
#[derive(Debug, Args)]
pub struct PoolArgs {
    /// Most transactions pooled per sender (executable and future), and the largest
    /// nonce gap accepted. Default: 256.
    #[arg(long, value_parser = positive)]
    pub txpool_accountslots: Option<usize>,
    /// Most executable transactions in the pool (beyond it the cheapest are evicted).
    /// Default: 200,000.
    #[arg(long, value_parser = positive)]
    pub txpool_globalslots: Option<usize>,
    /// Most future (nonce-gapped) transactions in the pool. Default: 50,000.
    #[arg(long, value_parser = positive)]
    pub txpool_globalqueue: Option<usize>,
    /// Percent by which a replacement must raise both fee cap and tip. Default: 10.
    #[arg(long)]
    pub txpool_pricebump: Option<u64>,
    /// Largest transaction accepted (EIP-2718 encoded bytes). Default: 131,072.
    #[arg(long, value_parser = positive)]
    pub txpool_max_tx_size: Option<usize>,
    /// Threads that validate incoming transactions (from RPC and peers). Default: the
    /// number of CPUs.
    #[arg(long, value_parser = positive)]
    pub txpool_validation_threads: Option<usize>,
    /// How many `nice` levels below the rest of the node those threads run, so that
    /// block production, import and KoMaBFT get the CPU first (0-19; 0: same
    /// priority). Default: 10.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=19))]
    pub txpool_validation_nice: Option<u8>,
}

impl PoolArgs {
    /// `base` (the pool settings of the chain spec) with these flags applied.
    pub fn apply(&self, mut base: koma_txpool::PoolConfig) -> koma_txpool::PoolConfig {
        if let Some(v) = self.txpool_accountslots {
            base.max_per_sender = v;
        }
        if let Some(v) = self.txpool_globalslots {
            base.max_pending = v;
        }
        if let Some(v) = self.txpool_globalqueue {
            base.max_queued = v;
        }
        if let Some(v) = self.txpool_pricebump {
            base.price_bump_percent = u128::from(v);
        }
        if let Some(v) = self.txpool_max_tx_size {
            base.max_tx_size = v;
        }
        base
    }

    /// How incoming transactions are validated, with these flags applied.
    pub fn admission(&self) -> koma_txpool::AdmissionConfig {
        let mut config = koma_txpool::AdmissionConfig::default();
        if let Some(v) = self.txpool_validation_threads {
            config.threads = v;
        }
        if let Some(v) = self.txpool_validation_nice {
            config.nice = i32::from(v);
        }
        config
    }

    /// These flags as `koma node` arguments (for the devnet's node processes).
    pub fn to_args(&self) -> Vec<String> {
        let flags = [
            ("--txpool-accountslots", self.txpool_accountslots),
            ("--txpool-globalslots", self.txpool_globalslots),
            ("--txpool-globalqueue", self.txpool_globalqueue),
            (
                "--txpool-pricebump",
                self.txpool_pricebump.and_then(|v| usize::try_from(v).ok()),
            ),
            ("--txpool-max-tx-size", self.txpool_max_tx_size),
            (
                "--txpool-validation-threads",
                self.txpool_validation_threads,
            ),
            (
                "--txpool-validation-nice",
                self.txpool_validation_nice.map(usize::from),
            ),
        ];
        flags
            .into_iter()
            .filter_map(|(flag, v)| v.map(|v| format!("{flag}={v}")))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;

    fn node_with(config: &str, flags: &[&str]) -> Result<crate::cli::NodeArgs, String> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("koma.toml");
        std::fs::write(&file, config).unwrap();
        let mut argv: Vec<OsString> = ["koma", "node", "--config"]
            .iter()
            .map(OsString::from)
            .collect();
        argv.push(file.into_os_string());
        argv.extend(flags.iter().map(OsString::from));
        match parse_from(argv).map_err(|e| e.to_string())?.command {
            Command::Node(args) => Ok(args),
            other => panic!("parsed {other:?}"),
        }
    }

    const FILE: &str = r#"
        genesis = "genesis/devnet.json"
        datadir = "/tmp/koma-config-test"
        http-port = 9000
        rpc-max-logs = 5000
        bootnodes = ["/ip4/127.0.0.1/tcp/30303/p2p/a", "/ip4/127.0.0.1/tcp/30304/p2p/b"]
        no-discovery = true
        admin-rpc = false
        metrics = 9545
        txpool-globalslots = 1000
        log = "debug"
    "#;

    #[test]
    fn file_values_apply_when_the_flag_is_absent() {
        let args = node_with(FILE, &[]).unwrap();
        assert_eq!(args.datadir, Path::new("/tmp/koma-config-test"));
        assert_eq!(args.rpc.http_port, 9000);
        assert_eq!(args.rpc.rpc_max_logs, Some(5000));
        assert_eq!(args.p2p.bootnodes.len(), 2);
        assert!(args.p2p.no_discovery);
        assert!(!args.admin_rpc);
        assert_eq!(args.metrics, Some("127.0.0.1:9545".parse().unwrap()));
        assert_eq!(args.pool.txpool_globalslots, Some(1000));
        // Defaults stay where neither file nor flag speaks.
        assert_eq!(args.rpc.rpc_max_connections, 1000);
    }

    #[test]
    fn the_command_line_wins() {
        let args = node_with(
            FILE,
            &[
                "--http-port",
                "8545",
                "--bootnodes",
                "/ip4/10.0.0.1/tcp/1/p2p/c",
                "--metrics",
                "0.0.0.0:9100",
            ],
        )
        .unwrap();
        assert_eq!(args.rpc.http_port, 8545);
        assert_eq!(args.p2p.bootnodes, vec!["/ip4/10.0.0.1/tcp/1/p2p/c"]);
        assert_eq!(args.metrics, Some("0.0.0.0:9100".parse().unwrap()));
        // The rest still comes from the file.
        assert_eq!(args.rpc.rpc_max_logs, Some(5000));
        let cli = parse_from(
            ["koma", "--log", "warn", "node", "--config", "/nonexistent"]
                .iter()
                .map(OsString::from)
                .collect(),
        );
        assert!(
            cli.unwrap_err()
                .to_string()
                .contains("cannot read config file")
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let e = node_with("genesis = \"g\"\ndatadir = \"d\"\nhttp-prot = 1\n", &[]).unwrap_err();
        assert!(e.contains("unknown key `http-prot`"), "{e}");
        assert!(e.contains("http-port"), "{e}");
        assert!(e.contains("txpool-globalslots"), "{e}");
        assert!(!e.contains("equivocate"), "{e}");
        let e =
            node_with("genesis = \"g\"\ndatadir = \"d\"\nhttp-port = \"x\"\n", &[]).unwrap_err();
        assert!(e.contains("config file") && e.contains("http-port"), "{e}");
        let e = node_with("genesis = \"g\"\ndatadir = \"d\"\nno-p2p = 1\n", &[]).unwrap_err();
        assert!(e.contains("switch"), "{e}");
        let e = node_with("genesis = [", &[]).unwrap_err();
        assert!(e.contains("config file"), "{e}");
    }

    #[test]
    fn metrics_addresses() {
        assert_eq!(
            parse_metrics_addr("9545"),
            Ok("127.0.0.1:9545".parse().unwrap())
        );
        assert_eq!(
            parse_metrics_addr("0.0.0.0:9100"),
            Ok("0.0.0.0:9100".parse().unwrap())
        );
        assert!(parse_metrics_addr("localhost").is_err());
    }

    #[test]
    fn pool_flags_reach_the_pool_config() {
        let args = node_with(
            "genesis = \"g\"\ndatadir = \"d\"\ntxpool-accountslots = 16\ntxpool-pricebump = 25\n",
            &["--txpool-globalqueue", "7"],
        )
        .unwrap();
        let pool = args.pool.apply(koma_txpool::PoolConfig::default());
        assert_eq!(
            (
                pool.max_per_sender,
                pool.max_queued,
                pool.price_bump_percent
            ),
            (16, 7, 25)
        );
        assert_eq!(pool.max_pending, 200_000);
        assert_eq!(
            args.pool.to_args(),
            vec![
                "--txpool-accountslots=16",
                "--txpool-globalqueue=7",
                "--txpool-pricebump=25"
            ]
        );
    }
}
