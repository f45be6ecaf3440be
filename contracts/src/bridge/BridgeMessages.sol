// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

/// @title The bridge's messages as both chains encode them: a deposit's data, the hash
/// chain over the deposit list, and a withdrawal's leaf. The node computes the same bytes
/// (crates/primitives/src/bridge.rs); tests/vectors/bridge.json holds both sides to them.
library BridgeMessages {
    /// The token id of KMC, the L2's native currency: the reserved address of the L2's
    /// transfer log, where the native token "lives" on L2.
    address internal constant KMC = 0x0000000000000000000000000000000000001010;
    /// The token id of ether.
    address internal constant ETH = 0xEeeeeEeeeEeEeeEeEeEeeEEEeeeeEeeeeeeeEEeE;

    /// A withdrawal message emitted by the L2 bridge. `token` is the L1 token id (KMC, ETH
    /// or the L1 address of an ERC-20); `nonce` is global and counts from 0.
    struct Withdrawal {
        uint256 nonce;
        address sender;
        address recipient;
        address token;
        uint256 amount;
    }

    /// The data of the state message for one deposit. `metadata` is
    /// abi.encode(name, symbol, decimals) on the first deposit of a token that becomes a
    /// child token on L2 (ETH and ERC-20s), and empty otherwise.
    function depositData(address token, address from, address to, uint256 amount, bytes memory metadata)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encode(token, from, to, amount, metadata);
    }

    /// The hash chain over the state messages: the hash after message `id` given the hash
    /// after `id - 1` (zero before the first).
    function nextStateHash(bytes32 previous, uint256 id, address receiver, bytes memory data)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(previous, id, receiver, keccak256(data)));
    }

    /// The leaf of a withdrawal in its block's withdrawals tree: keccak256 of the five
    /// fields ABI-encoded (160 bytes, never the 64 of an inner node).
    function withdrawalLeaf(Withdrawal memory w) internal pure returns (bytes32) {
        return keccak256(abi.encode(w.nonce, w.sender, w.recipient, w.token, w.amount));
    }
}
