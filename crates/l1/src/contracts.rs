//! `l1-contracts.json`: where a deployment lives and how it was made. `koma l1 deploy`
//! writes it; `koma node --l1-contracts FILE` reads it.

use alloy_primitives::{Address, U256};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A deployment of the root contracts on one L1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct L1Contracts {
    /// The L1's chain id (signed into every checkpoint).
    pub l1_chain_id: u64,
    /// The L2 chain the checkpoints cover.
    pub l2_chain_id: u64,
    /// `RootChain` (checkpoints and the staker set).
    #[serde(serialize_with = "checksummed")]
    pub root_chain: Address,
    /// `StakingToken` (KMC on L1).
    #[serde(serialize_with = "checksummed")]
    pub staking_token: Address,
    /// The bridge (absent in a file written before the bridge existed).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "checksummed_opt"
    )]
    pub bridge: Option<Address>,
    /// The L1 block of the deployment: watchers start reading events here.
    pub deploy_block: u64,
    /// The first L2 block of checkpoint 1.
    pub first_block: u64,
    /// The most blocks one checkpoint covers.
    pub max_range: u64,
    pub min_stake: U256,
    pub max_stakers: u64,
    /// Seconds between leaving and withdrawing.
    pub withdrawal_delay: u64,
}

/// Addresses are written with their EIP-55 checksum, which clients such as web3.py insist on.
fn checksummed<S: serde::Serializer>(address: &Address, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&address.to_checksum(None))
}

fn checksummed_opt<S: serde::Serializer>(
    address: &Option<Address>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match address {
        Some(a) => checksummed(a, s),
        None => s.serialize_none(),
    }
}

/// Why the contracts file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ContractsFileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a contracts file: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

impl L1Contracts {
    pub fn from_file(path: &Path) -> Result<Self, ContractsFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ContractsFileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| ContractsFileError::Parse {
            path: path.display().to_string(),
            source,
        })
    }

    /// Writes the file (through a temporary file and a rename, so a reader never sees
    /// half of it).
    pub fn write(&self, path: &Path) -> Result<(), ContractsFileError> {
        let fail = |source| ContractsFileError::Write {
            path: path.display().to_string(),
            source,
        };
        let mut json = serde_json::to_string_pretty(self).map_err(|e| fail(e.into()))?;
        json.push('\n');
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json).map_err(fail)?;
        std::fs::rename(&tmp, path).map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_unknown_fields() {
        let c = L1Contracts {
            l1_chain_id: 1337,
            l2_chain_id: 42424,
            root_chain: Address::repeat_byte(1),
            staking_token: alloy_primitives::address!("5FbDB2315678afecb367f032d93F642f64180aa3"),
            bridge: Some(Address::repeat_byte(2)),
            deploy_block: 7,
            first_block: 0,
            max_range: 1024,
            min_stake: U256::from(10).pow(U256::from(18)),
            max_stakers: 128,
            withdrawal_delay: 3600,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l1-contracts.json");
        c.write(&path).unwrap();
        assert_eq!(L1Contracts::from_file(&path).unwrap(), c);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"rootChain\""), "{text}");
        assert!(
            text.contains("0x5FbDB2315678afecb367f032d93F642f64180aa3"),
            "checksummed: {text}"
        );
        // a file from before the bridge: no `bridge` field
        let old: String = text
            .lines()
            .filter(|l| !l.contains("\"bridge\""))
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&path, &old).unwrap();
        let read = L1Contracts::from_file(&path).unwrap();
        assert_eq!(read.bridge, None);
        assert_eq!(read.root_chain, c.root_chain);
        std::fs::write(&path, text.replace("\"maxRange\"", "\"maxRang\"")).unwrap();
        let err = L1Contracts::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("not a contracts file"), "{err}");
    }
}
