// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {BridgeVault} from "./bridge/BridgeVault.sol";
import {DepositManager} from "./bridge/DepositManager.sol";
import {ICheckpointRoots, WithdrawManager} from "./bridge/WithdrawManager.sol";

/// @title KOMA's bridge on Ethereum: deposits to L2 (DepositManager, StateSender) and
/// exits from L2 (WithdrawManager), with one vault holding what backs the L2's tokens.
/// @notice Kept apart from the root contract, so KMC that backs the L2's currency never
/// mixes with KMC that is staked; an exit reads the checkpoint root from the root contract
/// (one external call).
contract Bridge is DepositManager, WithdrawManager {
    constructor(IERC20 kmc_, ICheckpointRoots rootChain_, address l2Bridge_)
        BridgeVault(kmc_, msg.sender)
        DepositManager(l2Bridge_)
        WithdrawManager(rootChain_)
    {}
}
