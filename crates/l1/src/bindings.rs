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
            bytes32 consensusChain_,
            uint256 maxRange_,
            uint256 firstBlock,
            uint256 minStake_,
            uint256 maxStakers_,
            uint256 withdrawalDelay_,
            uint256 rewardPerCheckpoint_
        );

        function submitCheckpoint(Checkpoint calldata cp, bytes calldata aggregateKey, bytes calldata absent, bytes calldata signature) external;
        function checkpointDigest(Checkpoint calldata cp, uint256 setId) external view returns (bytes32);
        function verifyBlock(uint256 number, BlockLeaf calldata leaf, uint256 index, bytes32[] calldata proof) external view returns (bool);
        function checkpointRoot(uint256 number) external view returns (bytes32);
        function l2ChainId() external view returns (uint256);
        function consensusChain() external view returns (bytes32);
        function reportEquivocation(bytes calldata unitA, bytes calldata sigA, bytes calldata unitB, bytes calldata sigB, uint64 era, bytes32 keyBlock) external;
        function reportDoubleCheckpoint(Checkpoint calldata a, uint256 setIdA, bytes calldata sigA, Checkpoint calldata b, uint256 setIdB, bytes calldata sigB, address signer) external;
        function slashed(address signer) external view returns (bool);
        function slashedHeld() external view returns (uint256);
        function SLASH_BPS() external view returns (uint256);
        function REPORTER_BPS() external view returns (uint256);
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
        function stakers(address owner) external view returns (address signer, address blsKey, uint96 amount, uint32 slot, uint32 exitSetId, uint64 withdrawableAt, uint96 unbonding, uint32 unbondSetId);
        function decreaseStake(uint256 amount) external;

        function registerProducer(address producer) external;
        function leaveProducers(address producer) external;
        function withdrawBond(address producer) external;
        function vote(address producer) external;
        function producerRanking() external view returns (address[] memory producers, uint256[] memory votes);
        function candidates(address producer) external view returns (address owner, uint96 bond, uint32 index, uint64 withdrawableAt, uint32 registration);
        function registrations() external view returns (uint32);
        function voteOf(address owner) external view returns (address);
        function candidateCount() external view returns (uint256);
        function bonded() external view returns (uint256);
        function MAX_CANDIDATES() external view returns (uint256);
        function reportDoubleSeal(bytes calldata headerA, bytes calldata sealA, bytes calldata headerB, bytes calldata sealB) external;
        function producerSlashed(address producer) external view returns (bool);

        function fundRewards(uint256 amount) external;
        function claimRewards() external;
        function rewardsOf(address owner) external view returns (uint256);
        function rewardPool() external view returns (uint256);
        function rewardPerCheckpoint() external view returns (uint256);
        function REWARD_PRECISION() external view returns (uint256);

        event CheckpointSubmitted(uint256 indexed number, uint256 start, uint256 end, bytes32 root);
        event StakerJoined(address indexed owner, address indexed signer, uint256 slot, address blsKey, uint256 amount);
        event StakeIncreased(address indexed owner, uint256 amount, uint256 total);
        event StakeDecreased(address indexed owner, uint256 amount, uint256 total, uint256 unbonding, uint256 unbondSetId, uint256 withdrawableAt);
        event StakerLeft(address indexed owner, uint256 slot, uint256 exitSetId, uint256 withdrawableAt);
        event StakeWithdrawn(address indexed owner, uint256 amount);
        event PendingSetChanged(uint256 indexed setId, bytes32 commit, uint256 totalWeight, bytes aggregateKey);
        event SetActivated(uint256 indexed setId, bytes32 commit, uint256 totalWeight);
        event Slashed(address indexed owner, address indexed signer, uint256 amount, address reporter, uint256 reward);
        event CandidateRegistered(address indexed producer, address indexed owner, uint256 bond);
        event CandidateLeft(address indexed producer, uint256 withdrawableAt);
        event BondWithdrawn(address indexed producer, address indexed owner, uint256 amount);
        event Voted(address indexed owner, address indexed producer);
        event ProducerSlashed(address indexed producer, address indexed owner, uint256 amount, address reporter, uint256 reward);
        event RewardsFunded(address indexed from, uint256 amount);
        event RewardsClaimed(address indexed owner, uint256 amount);
        event RewardsReturned(address indexed owner, uint256 amount);

        error NoRewards();
        error RewardsForfeit(address owner);
        error PoolFull(uint256 pool, uint256 amount);

        error ZeroProducer();
        error CandidateExists(address producer);
        error NotCandidate(address producer);
        error NotCandidateOwner(address producer);
        error TooManyCandidates(uint256 maxCandidates);
        error CandidateRunning(address producer);
        error ProducerBanned(address producer);
        error BadHeader();
        error NotADoubleSeal();
        error SealersDiffer(address a, address b);
        error BadSeal();

        error WrongInstance(bytes32 instanceId, bytes32 expected);
        error NotConflicting();
        error SignerSlashed(address signer);
        error UnknownSigner(address signer);
        error NotAUnit(uint256 length);
        error NotAnEquivocation();
        error BadUnitSignature();
        error SignersDiffer(address a, address b);
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
        error UnbondingNotActive(uint256 unbondSetId, uint256 activeSetId);
        error WithdrawalDelayNotOver(uint256 withdrawableAt);
        error SetNotEmpty();
        error NothingPending();
        error KeyDeployFailed();
        error BadProofIndex(uint256 index, uint256 depth);
        error SafeERC20FailedOperation(address token);
    }

    /// The bridge on L1: deposits (state messages to L2) and exits (docs/bridge.md).
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    contract Bridge {
        struct Withdrawal { uint256 nonce; address sender; address recipient; address token; uint256 amount; }
        struct BlockLeaf {
            uint256 number;
            uint256 timestamp;
            bytes32 blockHash;
            bytes32 receiptsRoot;
            bytes32 withdrawalsRoot;
        }
        struct ExitProof {
            Withdrawal withdrawal;
            uint256 withdrawalIndex;
            bytes32[] withdrawalProof;
            uint256 checkpoint;
            BlockLeaf blockLeaf;
            uint256 blockIndex;
            bytes32[] blockProof;
        }

        constructor(address kmc_, address rootChain_, address l2Bridge_);

        function depositEtherFor(address to) external payable;
        function depositERC20For(address token, address to, uint256 amount) external;
        function exit(ExitProof calldata p) external;
        function isExited(uint256 nonce) external view returns (bool);
        function lockGenesisSupply(uint256 amount) external;
        function locked(address token) external view returns (uint256);
        function mapped(address token) external view returns (bool);
        function genesisLocked() external view returns (bool);
        function stateCounter() external view returns (uint256);
        function stateHash() external view returns (bytes32);
        function kmc() external view returns (address);
        function deployer() external view returns (address);
        function rootChain() external view returns (address);
        function l2Bridge() external view returns (address);

        event StateSynced(uint256 indexed id, address indexed receiver, bytes data);
        event Deposited(uint256 indexed id, address indexed token, address indexed from, address to, uint256 amount);
        event Exited(uint256 indexed nonce, address indexed recipient, address indexed token, uint256 amount);
        event GenesisSupplyLocked(uint256 amount);

        error ZeroAmount();
        error ZeroRecipient();
        error NotDeployer();
        error GenesisAlreadyLocked();
        error PayoutFailed(address recipient, address token, uint256 amount);
        error AlreadyExited(uint256 nonce);
        error UnknownCheckpoint(uint256 number);
        error BadWithdrawalProof();
        error BadBlockProof();
        error BadProofIndex(uint256 index, uint256 depth);
        error SafeERC20FailedOperation(address token);
    }

    /// The bridge predeploy on L2 (at `koma_primitives::bridge::L2_BRIDGE_ADDRESS`).
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    contract L2Bridge {
        function SYSTEM() external view returns (address);
        function RECIPIENT_GAS() external view returns (uint256);
        function lastStateId() external view returns (uint256);
        function lastStateHash() external view returns (bytes32);
        function withdrawalCount() external view returns (uint256);
        function childOf(address rootToken) external view returns (address);
        function rootOf(address child) external view returns (address);
        function claimable(address account) external view returns (uint256);
        function childAddress(address rootToken) external view returns (address);
        function onStateReceive(uint256 id, bytes calldata data) external;
        function withdraw(address recipient) external payable;
        function withdrawToken(address child, address recipient, uint256 amount) external;
        function claim(address to) external;

        event DepositApplied(uint256 indexed id, address indexed token, address indexed to, uint256 amount, bool credited);
        event ChildTokenCreated(address indexed rootToken, address indexed child, string name, string symbol, uint8 decimals);
        event WithdrawalInitiated(uint256 indexed nonce, address indexed sender, address indexed recipient, address token, uint256 amount);
        event Claimed(address indexed account, address to, uint256 amount);
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
    /// `contracts/artifacts/Bridge.json`.
    pub const BRIDGE: &str = include_str!("../../../contracts/artifacts/Bridge.json");
    /// `contracts/artifacts/L2Bridge.json` (the L2 predeploy; its code is in the genesis).
    pub const L2_BRIDGE: &str = include_str!("../../../contracts/artifacts/L2Bridge.json");
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

        let bridge = abi(artifacts::BRIDGE);
        let functions: BTreeSet<[u8; 4]> = bridge.functions().map(|f| f.selector().0).collect();
        let ours: BTreeSet<[u8; 4]> = Bridge::BridgeCalls::SELECTORS.iter().copied().collect();
        assert_eq!(
            ours, functions,
            "Bridge functions differ from the artifact's ABI"
        );
        let events: BTreeSet<[u8; 32]> = bridge.events().map(|e| e.selector().0).collect();
        let ours: BTreeSet<[u8; 32]> = Bridge::BridgeEvents::SELECTORS.iter().copied().collect();
        assert_eq!(ours, events, "Bridge events differ from the artifact's ABI");
        let errors: BTreeSet<[u8; 4]> = bridge.errors().map(|e| e.selector().0).collect();
        let ours: BTreeSet<[u8; 4]> = Bridge::BridgeErrors::SELECTORS.iter().copied().collect();
        assert_eq!(ours, errors, "Bridge errors differ from the artifact's ABI");

        let l2 = abi(artifacts::L2_BRIDGE);
        let functions: BTreeSet<[u8; 4]> = l2.functions().map(|f| f.selector().0).collect();
        let ours: BTreeSet<[u8; 4]> = L2Bridge::L2BridgeCalls::SELECTORS.iter().copied().collect();
        assert_eq!(
            ours, functions,
            "L2Bridge functions differ from the artifact's ABI"
        );
        let events: BTreeSet<[u8; 32]> = l2.events().map(|e| e.selector().0).collect();
        let ours: BTreeSet<[u8; 32]> = L2Bridge::L2BridgeEvents::SELECTORS
            .iter()
            .copied()
            .collect();
        assert_eq!(
            ours, events,
            "L2Bridge events differ from the artifact's ABI"
        );
        assert!(events.contains(&koma_primitives::bridge::WithdrawalInitiated::SIGNATURE_HASH.0));

        let token = abi(artifacts::STAKING_TOKEN);
        let functions: BTreeSet<[u8; 4]> = token.functions().map(|f| f.selector().0).collect();
        for ours in StakingToken::StakingTokenCalls::SELECTORS {
            assert!(
                functions.contains(ours),
                "token function {ours:?} not in the artifact"
            );
        }
    }

    /// The devnet genesis carries the L2 bridge's code as compiled (contracts/build.js
    /// writes it there; this catches a hand edit or a stale genesis).
    #[test]
    fn the_devnet_genesis_holds_the_compiled_l2_bridge() {
        let json: serde_json::Value = serde_json::from_str(artifacts::L2_BRIDGE).unwrap();
        let code: Bytes = json["deployedBytecode"].as_str().unwrap().parse().unwrap();
        let spec = koma_primitives::ChainSpec::devnet();
        let account = &spec.alloc[&koma_primitives::bridge::L2_BRIDGE_ADDRESS];
        assert_eq!(account.code.as_ref(), Some(&code));
        assert!(
            account.balance > alloy_primitives::U256::ZERO,
            "the native reserve"
        );
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
        assert!(creation_code("Bridge", artifacts::BRIDGE).unwrap().len() > 1_000);
        assert!(creation_code("x", "{}").is_err());
        assert!(creation_code("x", r#"{"bytecode":"0xzz"}"#).is_err());
    }
}
