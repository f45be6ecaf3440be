// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {BridgeMessages} from "./BridgeMessages.sol";

/// @title Numbered state messages from L1 to L2.
/// @notice Every message gets the next id (from 1) and extends a hash chain, so the L2's
/// stakers can agree on "messages through id N, hash H" and every L2 node can check a
/// block's messages against that agreement. `stateHash` is readable at any L1 block, so a
/// node can check its own reading of the events against the contract.
abstract contract StateSender {
    /// The id of the last message sent (0: none yet).
    uint256 public stateCounter;
    /// The hash chain through message `stateCounter` (BridgeMessages.nextStateHash).
    bytes32 public stateHash;

    event StateSynced(uint256 indexed id, address indexed receiver, bytes data);

    function _syncState(address receiver, bytes memory data) internal returns (uint256 id) {
        id = stateCounter + 1;
        stateCounter = id;
        stateHash = BridgeMessages.nextStateHash(stateHash, id, receiver, data);
        emit StateSynced(id, receiver, data);
    }
}
