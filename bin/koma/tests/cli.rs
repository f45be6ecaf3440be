//! The `koma` binary as an operator meets it: help, version, and refusals of bad input
//! with one clear line and a non-zero exit code (never a panic or a backtrace).
//!
//! Being an integration test, this also makes `cargo test` / `cargo nextest` build the
//! `koma` binary itself, with the features the test run has; the test command's
//! end-to-end step runs that binary (see scripts/test).

use std::process::{Command, Output};

fn koma(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_koma"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the koma binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn help_lists_the_operator_commands() {
    let out = koma(&["--help"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let help = String::from_utf8_lossy(&out.stdout);
    for command in ["devnet", "node", "keys", "l1", "db", "bridge", "bench"] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{command} "))),
            "`{command}` missing from --help:\n{help}"
        );
    }
}

#[test]
fn version_is_the_crate_version() {
    let out = koma(&["--version"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
}

#[test]
fn an_unknown_flag_is_a_usage_error() {
    let out = koma(&["node", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--no-such-flag"), "{}", stderr(&out));
}

#[test]
fn a_missing_chain_spec_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("absent.json");
    let out = koma(&[
        "node",
        "--genesis",
        spec.to_str().unwrap(),
        "--datadir",
        dir.path().join("data").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("absent.json"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_malformed_chain_spec_is_refused_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("bad.json");
    std::fs::write(&spec, "{ \"chainId\": \"not a number\" }").unwrap();
    let out = koma(&[
        "node",
        "--genesis",
        spec.to_str().unwrap(),
        "--datadir",
        dir.path().join("data").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
