// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {BLS} from "./lib/BLS.sol";
import {CheckpointTree} from "./lib/CheckpointTree.sol";
import {StakeManager} from "./StakeManager.sol";

/// @title The root contract of KOMA on Ethereum: it accepts a checkpoint (a Merkle root over
/// a contiguous range of L2 blocks) when stakers holding more than 2/3 of the active set's
/// weight have BLS-signed it, and keeps its root for proofs (exits, block proofs).
/// @notice The submitter passes the active set's aggregate key and the slots of the stakers
/// whose signatures are missing; the contract subtracts their keys from the aggregate,
/// checks the signed weight and verifies the aggregate signature with one 2-pair pairing.
/// Anyone may submit. An accepted checkpoint also activates the pending staker set.
contract RootChain is StakeManager {
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

    constructor(
        IERC20 token,
        uint256 l2ChainId_,
        uint256 maxRange_,
        uint256 firstBlock,
        uint256 minStake_,
        uint256 maxStakers_,
        uint256 withdrawalDelay_
    ) StakeManager(token, minStake_, maxStakers_, withdrawalDelay_, firstBlock) {
        l2ChainId = l2ChainId_;
        maxRange = maxRange_;
        require(maxRange_ > 0 && maxRange_ <= 1 << 20, "maxRange out of range");
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

        checkpointRoot[cp.number] = cp.root;
        h.number = uint64(cp.number);
        h.nextStart = uint64(cp.end + 1);
        emit CheckpointSubmitted(cp.number, cp.start, cp.end, cp.root);
        if (h.dirty) _activatePending(h);
        _storeHead(h);
    }

    /// The digest the stakers sign for `cp` under set `setId`: it binds the L1 chain, this
    /// contract, the L2 chain and the set, so a signature serves nowhere else.
    function checkpointDigest(Checkpoint calldata cp, uint256 setId) public view returns (bytes32) {
        return CheckpointTree.digest(block.chainid, address(this), l2ChainId, cp.number, cp.start, cp.end, cp.root, setId);
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
    function _withoutAbsent(bytes calldata aggregateKey, bytes calldata absent, uint256 setId)
        private
        view
        returns (bytes memory key, uint256 absentWeight)
    {
        key = aggregateKey;
        if (absent.length == 0) return (key, 0);
        if (absent.length % 2 != 0) revert BadAbsentList(absent.length);
        bytes memory buffer = new bytes(2 * BLS.G2_LENGTH);
        uint256 previous;
        for (uint256 i; i < absent.length; i += 2) {
            uint256 slot = uint16(bytes2(absent[i:i + 2]));
            if (i > 0 && slot <= previous) revert AbsentNotAscending(slot);
            previous = slot;
            uint256 entry = _entryAt(slot, setId);
            address keyContract = address(uint160(entry));
            if (keyContract == address(0)) revert AbsentNotInSet(slot);
            absentWeight += uint64(entry >> 160);
            BLS.accumulateFromCode(buffer, keyContract);
        }
        bytes memory absentKey = new bytes(BLS.G2_LENGTH);
        assembly ("memory-safe") {
            mcopy(add(absentKey, 32), add(buffer, 32), 256)
        }
        key = BLS.g2Add(key, BLS.g2Negate(absentKey));
    }
}
