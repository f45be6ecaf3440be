// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {CheckpointTree} from "../lib/CheckpointTree.sol";
import {BridgeMessages} from "./BridgeMessages.sol";
import {BridgeVault} from "./BridgeVault.sol";

/// The part of the root contract the bridge reads.
interface ICheckpointRoots {
    function checkpointRoot(uint256 number) external view returns (bytes32);
}

/// @title Exits: pay out a withdrawal made on L2, once, against a checkpoint.
/// @notice The proof runs withdrawal message -> the block's withdrawalsRoot (a binary
/// Merkle tree over the block's withdrawal leaves, in order) -> the block's leaf -> the
/// root of an accepted checkpoint. Anyone may submit it; the tokens go to the recipient
/// named on L2. Each withdrawal nonce pays at most once (a bitmap: 256 nonces per slot).
abstract contract WithdrawManager is BridgeVault {
    /// An exit: the withdrawal, its place in its block's withdrawals tree, and the block's
    /// place in checkpoint `checkpoint`.
    struct ExitProof {
        BridgeMessages.Withdrawal withdrawal;
        uint256 withdrawalIndex;
        bytes32[] withdrawalProof;
        uint256 checkpoint;
        CheckpointTree.BlockLeaf blockLeaf;
        uint256 blockIndex;
        bytes32[] blockProof;
    }

    /// Where accepted checkpoint roots are read.
    ICheckpointRoots public immutable rootChain;

    mapping(uint256 word => uint256 bits) internal _exited;

    event Exited(uint256 indexed nonce, address indexed recipient, address indexed token, uint256 amount);

    error AlreadyExited(uint256 nonce);
    error UnknownCheckpoint(uint256 number);
    error BadWithdrawalProof();
    error BadBlockProof();

    constructor(ICheckpointRoots rootChain_) {
        rootChain = rootChain_;
    }

    /// Pays out the withdrawal in `p` to its recipient, once.
    function exit(ExitProof calldata p) external {
        BridgeMessages.Withdrawal calldata w = p.withdrawal;
        uint256 word = w.nonce >> 8;
        uint256 bit = 1 << (w.nonce & 0xff);
        uint256 bits = _exited[word];
        if (bits & bit != 0) revert AlreadyExited(w.nonce);

        bytes32 leaf = BridgeMessages.withdrawalLeaf(w);
        if (CheckpointTree.processProof(leaf, p.withdrawalIndex, p.withdrawalProof) != p.blockLeaf.withdrawalsRoot) {
            revert BadWithdrawalProof();
        }
        bytes32 root = rootChain.checkpointRoot(p.checkpoint);
        if (root == bytes32(0)) revert UnknownCheckpoint(p.checkpoint);
        if (CheckpointTree.processProof(CheckpointTree.leafHash(p.blockLeaf), p.blockIndex, p.blockProof) != root) {
            revert BadBlockProof();
        }

        _exited[word] = bits | bit;
        _pay(w.token, w.recipient, w.amount);
        emit Exited(w.nonce, w.recipient, w.token, w.amount);
    }

    /// True once withdrawal `nonce` has been paid out.
    function isExited(uint256 nonce) external view returns (bool) {
        return _exited[nonce >> 8] & (1 << (nonce & 0xff)) != 0;
    }
}
