//! The contracts' interfaces (as deployed from `contracts/artifacts`).

use alloy::sol;
use alloy_primitives::Bytes;

sol! {
    /// The root contract: checkpoints, and (inherited) the staker set.
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    contract RootChain {
        struct Checkpoint { uint256 number; uint256 start; uint256 end; bytes32 root; }
        struct BlockLeaf {
            uint256 number;
            uint256 timestamp;
            bytes32 blockHash;
            bytes32 receiptsRoot;
            bytes32 withdrawalsRoot;
        }

        constructor(
            address token,
            uint256 l2ChainId_,
            uint256 maxRange_,
            uint256 firstBlock,
            uint256 minStake_,
            uint256 maxStakers_,
            uint256 withdrawalDelay_
        );

        function submitCheckpoint(Checkpoint calldata cp, bytes calldata aggregateKey, bytes calldata absent, bytes calldata signature) external;
        function checkpointDigest(Checkpoint calldata cp, uint256 setId) external view returns (bytes32);
        function verifyBlock(uint256 number, BlockLeaf calldata leaf, uint256 index, bytes32[] calldata proof) external view returns (bool);
        function checkpointRoot(uint256 number) external view returns (bytes32);
        function l2ChainId() external view returns (uint256);
        function maxRange() external view returns (uint256);

        function stake(uint256 amount, address signer, bytes calldata blsKey, bytes calldata proofOfPossession) external;
        function restake(uint256 amount) external;
        function unstake() external;
        function withdraw() external;
        function activateGenesisSet() external;
        function popMessage(address owner, address signer, bytes calldata blsKey) external view returns (bytes32);
        function head() external view returns (uint256 setId, uint256 totalWeight, uint256 checkpointNumber, uint256 nextStart, bool changesPending);
        function activeSet() external view returns (uint256 setId, address[] memory signers, bytes[] memory keys, uint256[] memory weights);
        function pendingSet() external view returns (uint256 setId, address[] memory signers, bytes[] memory keys, uint256[] memory weights);
        function pendingAggregateKey() external view returns (bytes memory);
        function setCommit() external view returns (bytes32);
        function pendingCommit() external view returns (bytes32);
        function stakingToken() external view returns (address);
        function minStake() external view returns (uint256);
        function maxStakers() external view returns (uint256);
        function withdrawalDelay() external view returns (uint256);
        function POP_TAG() external view returns (bytes32);
        function WEIGHT_UNIT() external view returns (uint256);
        function keyOwner(address keyContract) external view returns (address);
        function signerOwner(address signer) external view returns (address);
        function pendingStakerCount() external view returns (uint32);
        function pendingTotalWeight() external view returns (uint64);
        function slotCount() external view returns (uint32);
        function stakers(address owner) external view returns (address signer, address blsKey, uint96 amount, uint32 slot, uint32 exitSetId, uint64 withdrawableAt);

        event CheckpointSubmitted(uint256 indexed number, uint256 start, uint256 end, bytes32 root);
        event StakerJoined(address indexed owner, address indexed signer, uint256 slot, address blsKey, uint256 amount);
        event StakeIncreased(address indexed owner, uint256 amount, uint256 total);
        event StakerLeft(address indexed owner, uint256 slot, uint256 exitSetId, uint256 withdrawableAt);
        event StakeWithdrawn(address indexed owner, uint256 amount);
        event PendingSetChanged(uint256 indexed setId, bytes32 commit, uint256 totalWeight, bytes aggregateKey);
        event SetActivated(uint256 indexed setId, bytes32 commit, uint256 totalWeight);

        error NotNextCheckpoint(uint256 expected, uint256 number);
        error RangeNotContiguous(uint256 expectedStart, uint256 start);
        error EndBeforeStart(uint256 start, uint256 end);
        error RangeTooLong(uint256 blocks, uint256 maxRange);
        error ZeroRoot();
        error NoActiveSet();
        error SetMismatch();
        error BadAbsentList(uint256 length);
        error AbsentNotAscending(uint256 slot);
        error AbsentNotInSet(uint256 slot);
        error InsufficientStake(uint256 signedWeight, uint256 totalWeight);
        error BadSignatureLength(uint256 length);
        error ZeroSignature();
        error InvalidSignature();
        error MalformedPoint();
        error BadPointLength(uint256 length, uint256 expected);
        error DstTooLong(uint256 length);
        error AlreadyStaker(address owner);
        error NotStaker(address owner);
        error StakeTooLow(uint256 amount, uint256 minimum);
        error StakeTooHigh(uint256 amount);
        error ZeroAmount();
        error ZeroSigner();
        error SignerTaken(address signer);
        error KeyTaken(address keyContract);
        error ZeroKey();
        error InvalidProofOfPossession();
        error SetFull(uint256 maxStakers);
        error AlreadyLeaving(address owner);
        error NotLeaving(address owner);
        error ExitNotActive(uint256 exitSetId, uint256 activeSetId);
        error WithdrawalDelayNotOver(uint256 withdrawableAt);
        error SetNotEmpty();
        error NothingPending();
        error KeyDeployFailed();
        error BadProofIndex(uint256 index, uint256 depth);
        error SafeERC20FailedOperation(address token);
    }

    /// KMC on L1 (an OpenZeppelin ERC-20 with permit).
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    contract StakingToken {
        constructor(address holder, uint256 supply);
        function name() external view returns (string memory);
        function symbol() external view returns (string memory);
        function decimals() external view returns (uint8);
        function totalSupply() external view returns (uint256);
        function balanceOf(address account) external view returns (uint256);
        function allowance(address owner, address spender) external view returns (uint256);
        function transfer(address to, uint256 value) external returns (bool);
        function approve(address spender, uint256 value) external returns (bool);
        function transferFrom(address from, address to, uint256 value) external returns (bool);
        event Transfer(address indexed from, address indexed to, uint256 value);
        event Approval(address indexed owner, address indexed spender, uint256 value);
    }
}

/// The committed artifacts (abi, bytecode, deployedBytecode) of `contracts/`.
pub mod artifacts {
    /// `contracts/artifacts/RootChain.json`.
    pub const ROOT_CHAIN: &str = include_str!("../../../contracts/artifacts/RootChain.json");
    /// `contracts/artifacts/StakingToken.json`.
    pub const STAKING_TOKEN: &str = include_str!("../../../contracts/artifacts/StakingToken.json");
}

/// Why an artifact cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("artifact {name}: {reason}")]
pub struct ArtifactError {
    name: &'static str,
    reason: String,
}

/// The creation bytecode of an artifact.
pub fn creation_code(name: &'static str, artifact: &str) -> Result<Bytes, ArtifactError> {
    let fail = |reason: String| ArtifactError { name, reason };
    let json: serde_json::Value =
        serde_json::from_str(artifact).map_err(|e| fail(format!("not JSON: {e}")))?;
    let hex = json
        .get("bytecode")
        .and_then(|b| b.as_str())
        .ok_or_else(|| fail("no bytecode".into()))?;
    hex.parse::<Bytes>()
        .map_err(|e| fail(format!("bytecode is not hex: {e}")))
        .and_then(|b| {
            if b.is_empty() {
                Err(fail("empty bytecode".into()))
            } else {
                Ok(b)
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::json_abi::JsonAbi;
    use alloy::sol_types::{SolError, SolEvent};
    use std::collections::BTreeSet;

    fn abi(artifact: &str) -> JsonAbi {
        let json: serde_json::Value = serde_json::from_str(artifact).unwrap();
        serde_json::from_value(json["abi"].clone()).unwrap()
    }

    /// Every function, event and error declared in the bindings has the selector the
    /// compiled contract's ABI gives it, and the bindings miss no function of the ABI.
    #[test]
    fn bindings_match_the_committed_artifacts() {
        let root = abi(artifacts::ROOT_CHAIN);
        let functions: BTreeSet<[u8; 4]> = root.functions().map(|f| f.selector().0).collect();
        let ours: BTreeSet<[u8; 4]> = RootChain::RootChainCalls::SELECTORS
            .iter()
            .copied()
            .collect();
        assert_eq!(
            ours, functions,
            "RootChain functions differ from the artifact's ABI"
        );

        let events: BTreeSet<[u8; 32]> = root.events().map(|e| e.selector().0).collect();
        for ours in RootChain::RootChainEvents::SELECTORS {
            assert!(events.contains(ours), "event {ours:?} not in the artifact");
        }
        assert!(events.contains(&RootChain::CheckpointSubmitted::SIGNATURE_HASH.0));

        let errors: BTreeSet<[u8; 4]> = root.errors().map(|e| e.selector().0).collect();
        let ours: BTreeSet<[u8; 4]> = RootChain::RootChainErrors::SELECTORS
            .iter()
            .copied()
            .collect();
        assert_eq!(
            ours, errors,
            "RootChain errors differ from the artifact's ABI"
        );
        assert!(errors.contains(&RootChain::InvalidSignature::SELECTOR));

        let token = abi(artifacts::STAKING_TOKEN);
        let functions: BTreeSet<[u8; 4]> = token.functions().map(|f| f.selector().0).collect();
        for ours in StakingToken::StakingTokenCalls::SELECTORS {
            assert!(
                functions.contains(ours),
                "token function {ours:?} not in the artifact"
            );
        }
    }

    #[test]
    fn creation_code_is_read_from_the_artifacts() {
        assert!(
            creation_code("RootChain", artifacts::ROOT_CHAIN)
                .unwrap()
                .len()
                > 10_000
        );
        assert!(
            creation_code("StakingToken", artifacts::STAKING_TOKEN)
                .unwrap()
                .len()
                > 1_000
        );
        assert!(creation_code("x", "{}").is_err());
        assert!(creation_code("x", r#"{"bytecode":"0xzz"}"#).is_err());
    }
}
