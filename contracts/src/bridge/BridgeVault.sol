// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {BridgeMessages} from "./BridgeMessages.sol";

/// @title What the bridge holds on L1, by token id, and how it pays out.
/// @notice `locked[token]` is what backs the token on L2: KMC locked here backs the L2's
/// native supply (its genesis allocation included, locked once by the deployer), ETH and
/// ERC-20s back their child tokens. Deposits add to it, exits take from it, and nothing
/// else moves it; `locked` can never go below zero, so the L2 can never take out more
/// than was put in.
abstract contract BridgeVault {
    using SafeERC20 for IERC20;

    /// KMC on L1 (the staking token).
    IERC20 public immutable kmc;
    /// The account allowed to lock the L2's genesis supply, once.
    address public immutable deployer;

    /// Locked on L1 by token id (BridgeMessages.KMC, BridgeMessages.ETH or an ERC-20).
    mapping(address token => uint256) public locked;
    /// True once the L2's genesis supply is locked.
    bool public genesisLocked;

    event GenesisSupplyLocked(uint256 amount);

    error NotDeployer();
    error GenesisAlreadyLocked();
    error PayoutFailed(address recipient, address token, uint256 amount);

    constructor(IERC20 kmc_, address deployer_) {
        kmc = kmc_;
        deployer = deployer_;
    }

    /// Locks `amount` KMC from the deployer as the backing of the native balances in the
    /// L2's genesis allocation (no state message: those balances exist from block 0).
    function lockGenesisSupply(uint256 amount) external {
        if (msg.sender != deployer) revert NotDeployer();
        if (genesisLocked) revert GenesisAlreadyLocked();
        genesisLocked = true;
        kmc.safeTransferFrom(msg.sender, address(this), amount);
        locked[BridgeMessages.KMC] += amount;
        emit GenesisSupplyLocked(amount);
    }

    /// The L1 token id of `token` (KMC's address maps to BridgeMessages.KMC).
    function _tokenId(address token) internal view returns (address) {
        return token == address(kmc) ? BridgeMessages.KMC : token;
    }

    /// Pays `amount` of token id `token` out to `to` and takes it from `locked`.
    function _pay(address token, address to, uint256 amount) internal {
        locked[token] -= amount; // reverts (underflow) rather than pay out more than is locked
        if (token == BridgeMessages.ETH) {
            (bool ok,) = to.call{value: amount}("");
            if (!ok) revert PayoutFailed(to, token, amount);
        } else if (token == BridgeMessages.KMC) {
            kmc.safeTransfer(to, amount);
        } else {
            IERC20(token).safeTransfer(to, amount);
        }
    }
}
