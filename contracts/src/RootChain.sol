// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {BLS} from "./lib/BLS.sol";
import {CheckpointTree} from "./lib/CheckpointTree.sol";
import {Equivocation} from "./lib/Equivocation.sol";
import {ProducerElection} from "./ProducerElection.sol";
import {StakeManager} from "./StakeManager.sol";

/// @title The root contract of KOMA on Ethereum: it accepts a checkpoint (a Merkle root over
/// a contiguous range of L2 blocks) when stakers holding more than 2/3 of the active set's
/// weight have BLS-signed it, and keeps its root for proofs (exits, block proofs).
/// @notice The submitter passes the active set's aggregate key and the slots of the stakers
/// whose signatures are missing; the contract subtracts their keys from the aggregate,
/// checks the signed weight and verifies the aggregate signature with one 2-pair pairing.
/// Anyone may submit. An accepted checkpoint pays its signers' reward (StakeRewards) and
/// activates the pending staker set.
contract RootChain is ProducerElection {
    /// The header of a checkpoint: its number, the L2 block range [start, end] and the
    /// Merkle root over the range's block leaves.
    struct Checkpoint {
        uint256 number;
        uint256 start;
        uint256 end;
        bytes32 root;
    }

    /// The chain id of the L2 whose blocks the checkpoints cover.
    uint256 public immutable l2ChainId;
    /// The most blocks one checkpoint may cover.
    uint256 public immutable maxRange;
    /// The L2's KoMaBFT chain digest: every era's instance id commits to it, so units
    /// signed for another chain are no evidence here.
    bytes32 public immutable consensusChain;

    /// Root of each accepted checkpoint, by number (zero: none).
    mapping(uint256 number => bytes32 root) public checkpointRoot;

    event CheckpointSubmitted(uint256 indexed number, uint256 start, uint256 end, bytes32 root);

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
    error WrongInstance(bytes32 instanceId, bytes32 expected);
    error NotConflicting();

    constructor(
        IERC20 token,
        uint256 l2ChainId_,
        bytes32 consensusChain_,
        uint256 maxRange_,
        uint256 firstBlock,
        uint256 minStake_,
        uint256 maxStakers_,
        uint256 withdrawalDelay_,
        uint256 rewardPerCheckpoint_
    ) StakeManager(token, minStake_, maxStakers_, withdrawalDelay_, firstBlock, rewardPerCheckpoint_) {
        l2ChainId = l2ChainId_;
        consensusChain = consensusChain_;
        maxRange = maxRange_;
        require(maxRange_ > 0 && maxRange_ <= 1 << 20, "maxRange out of range");
    }

    function _l2ChainId() internal view override returns (uint256) {
        return l2ChainId;
    }

    /// Accepts checkpoint `cp` signed by the active set less the stakers at the slots in
    /// `absent` (2-byte big-endian slot numbers, strictly ascending). `aggregateKey` is the
    /// active set's aggregate BLS key (EIP-2537, 256 bytes) and `signature` the aggregate
    /// of the present stakers' signatures over checkpointDigest(cp) (EIP-2537 G1, 128 bytes).
    function submitCheckpoint(
        Checkpoint calldata cp,
        bytes calldata aggregateKey,
        bytes calldata absent,
        bytes calldata signature
    ) external {
        Head memory h = _loadHead();
        if (cp.number != uint256(h.number) + 1) revert NotNextCheckpoint(uint256(h.number) + 1, cp.number);
        if (cp.start != h.nextStart) revert RangeNotContiguous(h.nextStart, cp.start);
        if (cp.end < cp.start) revert EndBeforeStart(cp.start, cp.end);
        if (cp.end - cp.start >= maxRange) revert RangeTooLong(cp.end - cp.start + 1, maxRange);
        if (cp.root == bytes32(0)) revert ZeroRoot();
        if (h.totalWeight == 0) revert NoActiveSet();
        if (keccak256(abi.encodePacked(uint256(h.setId), uint256(h.totalWeight), aggregateKey)) != setCommit) {
            revert SetMismatch();
        }
        if (signature.length != BLS.G1_LENGTH) revert BadSignatureLength(signature.length);
        if (BLS.isZero(signature)) revert ZeroSignature();

        (bytes memory signersKey, uint256 absentWeight) = _withoutAbsent(aggregateKey, absent, h.setId);
        uint256 signedWeight = h.totalWeight - absentWeight;
        if (3 * signedWeight <= 2 * uint256(h.totalWeight)) revert InsufficientStake(signedWeight, h.totalWeight);
        bytes32 message = checkpointDigest(cp, h.setId);
        if (!BLS.verify(signature, message, signersKey, BLS.SIG_DST)) revert InvalidSignature();

        _payCheckpoint(h.setId, signedWeight, absent);
        checkpointRoot[cp.number] = cp.root;
        h.number = uint64(cp.number);
        h.nextStart = uint64(cp.end + 1);
        emit CheckpointSubmitted(cp.number, cp.start, cp.end, cp.root);
        if (h.dirty) _activatePending(h);
        _storeHead(h);
    }

    /// Slashes a staker that equivocated in KoMaBFT, on the evidence of two different units
    /// it signed with the same sequence number in one era (`Equivocation`): `unitA` and
    /// `unitB` are the units' canonical encodings, `sigA` and `sigB` their signatures, and
    /// `era` and `keyBlock` the era whose instance id both units name. The caller gets
    /// the reporter's share; the staker leaves the pending set. Each key is slashed once.
    function reportEquivocation(
        bytes calldata unitA,
        bytes calldata sigA,
        bytes calldata unitB,
        bytes calldata sigB,
        uint64 era,
        bytes32 keyBlock
    ) external {
        (address signer, bytes32 instance) = Equivocation.verify(unitA, sigA, unitB, sigB);
        bytes32 expected = Equivocation.instanceId(consensusChain, era, keyBlock);
        if (instance != expected) revert WrongInstance(instance, expected);
        _slash(signer, msg.sender);
    }

    /// Slashes a staker that signed two different checkpoints with the same number: `a`
    /// under set `setIdA` with BLS signature `sigA`, and `b` under `setIdB` with `sigB`,
    /// both by the BLS key the staker whose KoMaBFT key is `signer` registered. Honest
    /// stakers compute one range and root per number from the final chain and never sign
    /// another (docs/staking.md), so two such signatures are proof of misbehaviour
    /// whichever set they name. The caller gets the reporter's share; the staker leaves
    /// the pending set. Each key is slashed once.
    function reportDoubleCheckpoint(
        Checkpoint calldata a,
        uint256 setIdA,
        bytes calldata sigA,
        Checkpoint calldata b,
        uint256 setIdB,
        bytes calldata sigB,
        address signer
    ) external {
        if (a.number != b.number || (a.start == b.start && a.end == b.end && a.root == b.root)) {
            revert NotConflicting();
        }
        if (slashed[signer]) revert SignerSlashed(signer);
        address owner = signerOwner[signer];
        if (owner == address(0)) revert UnknownSigner(signer);
        if (sigA.length != BLS.G1_LENGTH) revert BadSignatureLength(sigA.length);
        if (sigB.length != BLS.G1_LENGTH) revert BadSignatureLength(sigB.length);
        if (BLS.isZero(sigA) || BLS.isZero(sigB)) revert ZeroSignature();
        bytes memory key = _keyOf(stakers[owner].blsKey);
        if (!BLS.verify(sigA, checkpointDigest(a, setIdA), key, BLS.SIG_DST)) revert InvalidSignature();
        if (!BLS.verify(sigB, checkpointDigest(b, setIdB), key, BLS.SIG_DST)) revert InvalidSignature();
        _slash(signer, msg.sender);
    }

    /// The digest the stakers sign for `cp` under set `setId`: it binds the L1 chain, this
    /// contract, the L2 chain and the set, so a signature serves nowhere else.
    function checkpointDigest(Checkpoint calldata cp, uint256 setId) public view returns (bytes32) {
        return
            CheckpointTree.digest(block.chainid, address(this), l2ChainId, cp.number, cp.start, cp.end, cp.root, setId);
    }

    /// True if `leaf` sits at position `index` (its number minus the checkpoint's start) of
    /// accepted checkpoint `number`, by the sibling path `proof`.
    function verifyBlock(
        uint256 number,
        CheckpointTree.BlockLeaf calldata leaf,
        uint256 index,
        bytes32[] calldata proof
    ) external view returns (bool) {
        bytes32 root = checkpointRoot[number];
        return root != bytes32(0) && CheckpointTree.processProof(CheckpointTree.leafHash(leaf), index, proof) == root;
    }

    /// The aggregate key of the active set less the keys at the `absent` slots, and the
    /// absent weight.
    /// @dev Per absent staker: one storage read (its slot entry) and one code copy (its key)
    /// into a G2ADD accumulator. The loop is assembly because it is the part of a checkpoint's
    /// cost that grows with absence.
    function _withoutAbsent(bytes calldata aggregateKey, bytes calldata absent, uint256 setId)
        private
        view
        returns (bytes memory key, uint256 absentWeight)
    {
        key = aggregateKey;
        if (absent.length == 0) return (key, 0);
        if (absent.length % 2 != 0) revert BadAbsentList(absent.length);
        bytes memory absentKey = new bytes(BLS.G2_LENGTH);
        uint256 latestSlot;
        uint256 previousSlot;
        assembly ("memory-safe") {
            latestSlot := _slotLatest.slot
            previousSlot := _slotPrevious.slot
        }
        uint256 failedSlot = type(uint256).max;
        uint256 failure; // 1: not ascending, 2: not in the set, 3: G2ADD refused
        assembly ("memory-safe") {
            // accumulator ‖ next key, as G2ADD's input; the sum is written over the accumulator
            let acc := mload(0x40)
            mstore(0x40, add(acc, 512))
            calldatacopy(acc, calldatasize(), 256) // zero: the point at infinity
            let end := add(absent.offset, absent.length)
            let last := 0
            for { let p := absent.offset } lt(p, end) { p := add(p, 2) } {
                let slot := shr(240, calldataload(p))
                if and(gt(p, absent.offset), iszero(gt(slot, last))) {
                    failure := 1
                    failedSlot := slot
                    break
                }
                last := slot
                // the entry holding for setId: the latest version unless it is newer
                mstore(0x00, slot)
                mstore(0x20, latestSlot)
                let entry := sload(keccak256(0x00, 0x40))
                if gt(shr(224, entry), setId) {
                    mstore(0x20, previousSlot)
                    entry := sload(keccak256(0x00, 0x40))
                }
                let keyContract := and(entry, 0xffffffffffffffffffffffffffffffffffffffff)
                if iszero(keyContract) {
                    failure := 2
                    failedSlot := slot
                    break
                }
                absentWeight := add(absentWeight, and(shr(160, entry), 0xffffffffffffffff))
                extcodecopy(keyContract, add(acc, 256), 1, 256)
                if iszero(staticcall(3000, 0x0d, acc, 512, acc, 256)) {
                    failure := 3
                    break
                }
            }
            mcopy(add(absentKey, 32), acc, 256)
        }
        if (failure == 1) revert AbsentNotAscending(failedSlot);
        if (failure == 2) revert AbsentNotInSet(failedSlot);
        if (failure == 3) revert BLS.MalformedPoint();
        key = BLS.g2Add(key, BLS.g2Negate(absentKey));
    }
}
