// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

/// @title The checkpoint format: block leaves, the binary Merkle tree over them, and the
/// digest the stakers sign. The node computes the same bytes (crates/checkpoint); the
/// shared vectors in tests/vectors/checkpoint.json hold both sides to it.
library CheckpointTree {
    /// Domain tag of the signed checkpoint digest.
    bytes32 internal constant CHECKPOINT_TAG = keccak256("KOMA_CHECKPOINT_V1");

    /// The fields of one L2 block that a checkpoint commits to.
    struct BlockLeaf {
        uint256 number;
        uint256 timestamp;
        bytes32 blockHash;
        bytes32 receiptsRoot;
        bytes32 withdrawalsRoot;
    }

    /// A proof was longer than 256 levels or its index did not fit its depth.
    error BadProofIndex(uint256 index, uint256 depth);

    /// keccak256 of the leaf fields packed (5 × 32 bytes). A leaf preimage is 160 bytes
    /// and an inner node's 64, so an inner node can never pass for a leaf.
    function leafHash(BlockLeaf memory leaf) internal pure returns (bytes32) {
        return keccak256(
            abi.encodePacked(leaf.number, leaf.timestamp, leaf.blockHash, leaf.receiptsRoot, leaf.withdrawalsRoot)
        );
    }

    /// The root reached from `leaf` at position `index` through `proof` (siblings from the
    /// leaf level up; parent = keccak256(left ‖ right)).
    function processProof(bytes32 leaf, uint256 index, bytes32[] calldata proof) internal pure returns (bytes32 node) {
        uint256 depth = proof.length;
        if (depth > 255 || index >> depth != 0) revert BadProofIndex(index, depth);
        node = leaf;
        for (uint256 i; i < depth; ++i) {
            bytes32 sibling = proof[i];
            node = (index >> i) & 1 == 0 ? _parent(node, sibling) : _parent(sibling, node);
        }
    }

    /// The 32-byte message the stakers BLS-sign for a checkpoint.
    function digest(
        uint256 l1ChainId,
        address rootContract,
        uint256 l2ChainId,
        uint256 number,
        uint256 start,
        uint256 end,
        bytes32 root,
        uint256 setId
    ) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(CHECKPOINT_TAG, l1ChainId, rootContract, l2ChainId, number, start, end, root, setId)
        );
    }

    function _parent(bytes32 left, bytes32 right) private pure returns (bytes32 parent) {
        assembly ("memory-safe") {
            mstore(0x00, left)
            mstore(0x20, right)
            parent := keccak256(0x00, 0x40)
        }
    }
}
