//! Chain specification and genesis.

use alloy_primitives::{Address, B256, Bytes, U256};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// EIP-7825's per-transaction gas cap (2^24): the default of [`ChainSpec::max_tx_gas`].
pub const DEFAULT_MAX_TX_GAS: u64 = 1 << 24;

/// The least gas any transaction needs (a plain transfer).
const MIN_TX_GAS: u64 = 21_000;

/// Hardforks KOMA can run. Only Prague and later are supported: the L1 bridge relies
/// on the EIP-2537 BLS12-381 precompiles and users expect EIP-7702.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hardfork {
    Prague,
    Osaka,
}

/// EIP-1559 parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FeeParams {
    /// Base fee of block 1 (wei).
    pub initial_base_fee: u64,
    /// The base fee never drops below this floor (wei); a transaction whose max fee is
    /// below it is refused, so nothing is ever included for free.
    pub min_base_fee: u64,
    /// Bound on the base fee change between blocks (Ethereum: 8).
    pub max_change_denominator: u64,
    /// Ratio of gas limit to gas target (Ethereum: 2).
    pub elasticity_multiplier: u64,
    /// Minimum priority fee the pool accepts (wei).
    pub min_priority_fee: u64,
}

impl Default for FeeParams {
    fn default() -> Self {
        Self {
            initial_base_fee: 1_000_000_000,
            min_base_fee: 100_000_000,
            max_change_denominator: 8,
            elasticity_multiplier: 2,
            min_priority_fee: 1_000_000_000,
        }
    }
}

/// An account in the genesis allocation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenesisAccount {
    pub balance: U256,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub nonce: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Bytes>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub storage: BTreeMap<B256, B256>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The producer schedule parameters (docs/protocol.md, "Producer schedule").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProducerParams {
    /// Producer addresses (secp256k1), in succession order.
    pub producers: Vec<Address>,
    /// Blocks per sprint: the in-turn producer changes every sprint.
    pub sprint: u64,
    /// Blocks per span: the producer set is fixed for a span (but for replacements).
    pub span: u64,
    /// How many producers each span elects from the candidates ranked on L1 (0: as many
    /// as `producers` lists). The list is the genesis set, kept while L1 names no
    /// candidate (docs/producers.md).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub elected: u64,
    /// A producer in turn that misses at least this share (percent) of its sprint's
    /// blocks is replaced for the rest of the span by the next reserve candidate
    /// (0: never).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replace_missed_percent: u64,
}

impl ProducerParams {
    /// How many producers a span has.
    pub fn elected_count(&self) -> usize {
        match self.elected {
            0 => self.producers.len(),
            n => usize::try_from(n).unwrap_or(usize::MAX),
        }
    }
}

/// A staker of the KoMaBFT validator set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Staker {
    pub address: Address,
    /// Stake weight (any unit; only ratios matter).
    pub stake: u64,
}

/// KoMaBFT parameters. Era 0 has the staker set listed here; each later era takes the
/// L1 root contract's active set at the L1 block its predecessor's last block names
/// (or keeps the set before when that block names none), less the stakers proven to
/// have equivocated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsensusParams {
    pub stakers: Vec<Staker>,
    /// Milestones (KoMaBFT blocks) per era; the next era starts once the last is final.
    #[serde(default = "default_era_blocks")]
    pub era_blocks: u64,
    /// Shortest round in ms (a power of two is customary: 512 on the devnet).
    pub min_round_ms: u64,
    /// Rounds last `minRoundMs << roundExp`.
    #[serde(default)]
    pub round_exp: u8,
    /// Largest accepted round exponent.
    #[serde(default = "default_max_round_exp")]
    pub max_round_exp: u8,
}

fn default_max_round_exp() -> u8 {
    6
}

fn default_era_blocks() -> u64 {
    1000
}

/// L2 blocks per L1 checkpoint when the spec does not say.
pub const DEFAULT_CHECKPOINT_INTERVAL: u64 = 32;

/// Everything that defines a KOMA chain. Nodes with the same spec agree on genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChainSpec {
    pub name: String,
    pub chain_id: u64,
    pub hardfork: Hardfork,
    /// Target block interval in milliseconds.
    pub block_time_ms: u64,
    /// Block gas limit.
    pub gas_limit: u64,
    /// Largest gas limit a transaction may have (EIP-7825's cap, on every hardfork):
    /// the pool refuses, producers never include and importers reject anything above
    /// it. Absent: [`DEFAULT_MAX_TX_GAS`]; read it with [`ChainSpec::max_tx_gas`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tx_gas: Option<u64>,
    /// Largest number of compute units a block may use (the compute meter, ADR 0011:
    /// gas weighted by its measured time, see [`crate::compute`]); producers stop
    /// filling a block at it and importers reject a block above it. Absent:
    /// [`crate::compute::default_compute_limit`] of the per-transaction cap; read it
    /// with [`ChainSpec::compute_limit`]. At least that much, so that any transaction
    /// at the cap fits a block alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_limit: Option<u64>,
    #[serde(default)]
    pub fees: FeeParams,
    pub producers: ProducerParams,
    /// KoMaBFT finality by the stakers; absent: no finality layer (head = final).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consensus: Option<ConsensusParams>,
    /// L2 blocks per L1 checkpoint: every staker signs the same ranges because they all
    /// read it here. Absent: [`DEFAULT_CHECKPOINT_INTERVAL`]; read it with
    /// [`ChainSpec::checkpoint_interval`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_interval: Option<u64>,
    /// Genesis timestamp (seconds).
    pub timestamp: u64,
    #[serde(default)]
    pub extra_data: Bytes,
    pub alloc: BTreeMap<Address, GenesisAccount>,
}

/// Why a chain spec cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ChainSpecError {
    #[error("cannot read chain spec {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid chain spec {path}: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("invalid chain spec: {0}")]
    Invalid(String),
}

impl ChainSpec {
    /// The devnet spec embedded in the binary (`genesis/devnet.json`).
    pub fn devnet() -> Self {
        // The embedded file is validated by a unit test, so this cannot fail at run time.
        #[allow(clippy::expect_used)]
        Self::from_json(include_str!("../../../genesis/devnet.json"))
            .expect("embedded devnet spec is valid")
    }

    /// The devnet spec with its producer set cut to the first `n` devnet producer keys
    /// (`koma devnet --nodes n`): a network of `n` nodes where every producer runs.
    pub fn devnet_with_producers(n: u32) -> Self {
        let mut spec = Self::devnet();
        spec.producers.producers = (0..n.max(1))
            .map(|i| crate::dev::dev_producer_key(i).address())
            .collect();
        spec.producers.elected = u64::from(n.max(1));
        // The same keys stake, equally.
        if let Some(c) = spec.consensus.as_mut() {
            c.stakers = spec
                .producers
                .producers
                .iter()
                .map(|a| Staker {
                    address: *a,
                    stake: 100,
                })
                .collect();
        }
        spec
    }

    pub fn from_json(json: &str) -> Result<Self, ChainSpecError> {
        let spec: Self = serde_json::from_str(json).map_err(|source| ChainSpecError::Parse {
            path: "<inline>".into(),
            source,
        })?;
        spec.validate()?;
        Ok(spec)
    }

    pub fn from_file(path: &Path) -> Result<Self, ChainSpecError> {
        let display = path.display().to_string();
        let json = std::fs::read_to_string(path).map_err(|source| ChainSpecError::Read {
            path: display.clone(),
            source,
        })?;
        let spec: Self = serde_json::from_str(&json).map_err(|source| ChainSpecError::Parse {
            path: display,
            source,
        })?;
        spec.validate()?;
        Ok(spec)
    }

    /// Checks the rules a spec must satisfy before a node can start with it.
    /// L2 blocks per L1 checkpoint.
    pub fn checkpoint_interval(&self) -> u64 {
        self.checkpoint_interval
            .unwrap_or(DEFAULT_CHECKPOINT_INTERVAL)
    }

    pub fn validate(&self) -> Result<(), ChainSpecError> {
        let bad = |m: &str| Err(ChainSpecError::Invalid(m.to_string()));
        if self.checkpoint_interval == Some(0) {
            return bad("checkpointInterval must be at least 1");
        }
        if self.chain_id == 0 {
            return bad("chainId must be non-zero");
        }
        if self.block_time_ms == 0 {
            return bad("blockTimeMs must be non-zero");
        }
        if self.gas_limit < 5_000 {
            return bad("gasLimit must be at least 5000");
        }
        if self.max_tx_gas() < MIN_TX_GAS {
            return bad("maxTxGas must be at least 21000");
        }
        if self.compute_limit() < crate::compute::max_tx_compute_units(self.max_tx_gas()) {
            return bad(
                "computeLimit must admit a transaction at maxTxGas spent in precompiles (36 units per gas)",
            );
        }
        if self.producers.producers.is_empty() {
            return bad("producers.producers must list at least one producer");
        }
        if self.producers.sprint == 0
            || self.producers.span == 0
            || !self.producers.span.is_multiple_of(self.producers.sprint)
        {
            return bad("producers.span must be a non-zero multiple of producers.sprint");
        }
        if self.producers.replace_missed_percent > 100 {
            return bad("producers.replaceMissedPercent must be at most 100");
        }
        let f = &self.fees;
        if f.max_change_denominator == 0 || f.elasticity_multiplier == 0 {
            return bad("fees.maxChangeDenominator and fees.elasticityMultiplier must be non-zero");
        }
        if f.min_base_fee == 0 || f.initial_base_fee < f.min_base_fee {
            return bad("fees.minBaseFee must be non-zero and not above fees.initialBaseFee");
        }
        if let Some(c) = &self.consensus {
            if c.stakers.is_empty() || c.stakers.iter().any(|s| s.stake == 0) {
                return bad("consensus.stakers must list stakers with non-zero stake");
            }
            if c.min_round_ms < 16 || c.round_exp > c.max_round_exp || c.max_round_exp > 20 {
                return bad("consensus: minRoundMs >= 16 and roundExp <= maxRoundExp <= 20");
            }
            if c.era_blocks < 2 {
                return bad("consensus.eraBlocks must be at least 2");
            }
        }
        if self.extra_data.len() > 32 {
            return bad("extraData is at most 32 bytes");
        }
        Ok(())
    }

    /// The per-transaction gas cap: no transaction with a larger gas limit is valid on
    /// this chain (pool, block building, import, execution). Calls and gas estimates
    /// should not default above it either.
    pub fn max_tx_gas(&self) -> u64 {
        self.max_tx_gas.unwrap_or(DEFAULT_MAX_TX_GAS)
    }

    /// The block compute limit (ADR 0011): the compute units of a block's
    /// transactions ([`crate::compute::tx_compute_units`]) add up to at most this.
    pub fn compute_limit(&self) -> u64 {
        self.compute_limit
            .unwrap_or_else(|| crate::compute::default_compute_limit(self.max_tx_gas()))
    }

    /// The revm spec id for this chain's rules.
    pub fn is_osaka(&self) -> bool {
        self.hardfork == Hardfork::Osaka
    }

    /// Base fee of the block after one with `gas_used` of `gas_limit` at `base_fee`
    /// (EIP-1559), never below the chain's floor.
    pub fn next_base_fee(&self, gas_used: u64, gas_limit: u64, base_fee: u64) -> u64 {
        let params = alloy::eips::eip1559::BaseFeeParams::new(
            u128::from(self.fees.max_change_denominator),
            u128::from(self.fees.elasticity_multiplier),
        );
        alloy::eips::eip1559::calc_next_block_base_fee(gas_used, gas_limit, base_fee, params)
            .max(self.fees.min_base_fee)
    }

    /// Base fee of the block that follows `parent`.
    pub fn base_fee_after(&self, parent: &alloy::consensus::Header) -> u64 {
        if parent.number == 0 {
            return self.fees.initial_base_fee;
        }
        let parent_base_fee = parent
            .base_fee_per_gas
            .unwrap_or(self.fees.initial_base_fee);
        self.next_base_fee(parent.gas_used, parent.gas_limit, parent_base_fee)
    }

    /// A stable digest of the spec, stored in the database so that a data directory
    /// is never opened with a different chain.
    pub fn digest(&self) -> B256 {
        // serde_json of a struct with BTreeMaps is deterministic.
        let json = serde_json::to_vec(self).unwrap_or_default();
        alloy_primitives::keccak256(json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devnet_spec_is_valid_and_funds_dev_accounts() {
        let spec = ChainSpec::devnet();
        assert_eq!(spec.chain_id, 42424);
        let dev = crate::dev::dev_accounts(10);
        for (addr, _) in &dev {
            let acc = spec
                .alloc
                .get(addr)
                .unwrap_or_else(|| panic!("{addr} not funded"));
            assert_eq!(
                acc.balance,
                U256::from(10_000u64) * U256::from(10u64).pow(U256::from(18u64))
            );
        }
        assert_eq!(spec.producers.producers.len(), 4);
        for (i, p) in spec.producers.producers.iter().enumerate() {
            assert_eq!(*p, crate::dev::dev_producer_key(i as u32).address());
        }
        let one = ChainSpec::devnet_with_producers(1);
        assert_eq!(one.producers.producers, spec.producers.producers[..1]);
        assert_eq!(ChainSpec::devnet_with_producers(4), spec);
    }

    #[test]
    fn rejects_bad_specs_with_a_reason() {
        let mut spec = ChainSpec::devnet();
        spec.producers.producers.clear();
        let err = spec.validate().unwrap_err().to_string();
        assert!(err.contains("at least one producer"), "{err}");
        let err = ChainSpec::from_json("{\"chainId\": 1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid chain spec"), "{err}");
    }

    #[test]
    fn checkpoint_interval_defaults_to_32_and_is_validated() {
        let mut spec = ChainSpec::devnet();
        assert_eq!(spec.checkpoint_interval, None);
        assert_eq!(spec.checkpoint_interval(), DEFAULT_CHECKPOINT_INTERVAL);
        spec.checkpoint_interval = Some(8);
        let json = serde_json::to_string(&spec).unwrap();
        assert!(json.contains("\"checkpointInterval\":8"), "{json}");
        assert_eq!(
            ChainSpec::from_json(&json).unwrap().checkpoint_interval(),
            8
        );
        spec.checkpoint_interval = Some(0);
        let err = spec.validate().unwrap_err().to_string();
        assert!(err.contains("checkpointInterval"), "{err}");
    }

    #[test]
    fn max_tx_gas_defaults_to_eip7825_and_is_validated() {
        let spec = ChainSpec::devnet();
        assert_eq!(spec.max_tx_gas, Some(DEFAULT_MAX_TX_GAS), "devnet sets it");
        assert_eq!(spec.max_tx_gas(), 16_777_216);

        let mut json: serde_json::Value =
            serde_json::from_str(include_str!("../../../genesis/devnet.json")).unwrap();
        let obj = json.as_object_mut().unwrap();
        obj.remove("maxTxGas");
        // The compute limit follows the cap when absent (the devnet's fits 2^24 only).
        obj.remove("computeLimit");
        let absent = ChainSpec::from_json(&json.to_string()).unwrap();
        assert_eq!(absent.max_tx_gas, None);
        assert_eq!(absent.max_tx_gas(), DEFAULT_MAX_TX_GAS);
        // An absent field stays absent, so the digest of such a spec is unchanged.
        assert!(!serde_json::to_string(&absent).unwrap().contains("maxTxGas"));

        json["maxTxGas"] = serde_json::json!(30_000_000u64);
        assert_eq!(
            ChainSpec::from_json(&json.to_string())
                .unwrap()
                .max_tx_gas(),
            30_000_000
        );
        json["maxTxGas"] = serde_json::json!(20_999u64);
        let err = ChainSpec::from_json(&json.to_string())
            .unwrap_err()
            .to_string();
        assert!(err.contains("maxTxGas"), "{err}");
    }

    #[test]
    fn compute_limit_defaults_from_the_cap_and_is_validated() {
        let spec = ChainSpec::devnet();
        assert_eq!(spec.compute_limit, Some(603_979_776), "devnet sets it");
        assert_eq!(spec.gas_limit, 600_000_000);
        assert_eq!(spec.compute_limit(), 36 << 24);

        let mut json: serde_json::Value =
            serde_json::from_str(include_str!("../../../genesis/devnet.json")).unwrap();
        json.as_object_mut().unwrap().remove("computeLimit");
        let absent = ChainSpec::from_json(&json.to_string()).unwrap();
        assert_eq!(absent.compute_limit, None);
        assert_eq!(absent.compute_limit(), 36 << 24);
        // An absent field stays absent, so the digest of such a spec is unchanged.
        assert!(
            !serde_json::to_string(&absent)
                .unwrap()
                .contains("computeLimit")
        );

        json["maxTxGas"] = serde_json::json!(30_000_000u64);
        assert_eq!(
            ChainSpec::from_json(&json.to_string())
                .unwrap()
                .compute_limit(),
            36 * 30_000_000
        );
        json["computeLimit"] =
            serde_json::json!(crate::compute::max_tx_compute_units(30_000_000) - 1);
        let err = ChainSpec::from_json(&json.to_string())
            .unwrap_err()
            .to_string();
        assert!(err.contains("computeLimit"), "{err}");
    }

    #[test]
    fn base_fee_follows_eip1559_with_floor() {
        let spec = ChainSpec::devnet();
        let limit = spec.gas_limit;
        let bf = 1_000_000_000;
        assert_eq!(spec.next_base_fee(limit / 2, limit, bf), bf);
        assert_eq!(spec.next_base_fee(limit, limit, bf), bf + bf / 8);
        assert_eq!(spec.next_base_fee(0, limit, bf), bf - bf / 8);
        assert_eq!(
            spec.next_base_fee(0, limit, spec.fees.min_base_fee),
            spec.fees.min_base_fee
        );
    }
}
