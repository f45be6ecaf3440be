// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title KMC on L1: the staking token, and the currency that backs KOMA's native gas
/// token on L2. Its whole supply is minted once, at deployment.
contract StakingToken is ERC20, ERC20Permit {
    constructor(address holder, uint256 supply) ERC20("KOMA", "KMC") ERC20Permit("KOMA") {
        _mint(holder, supply);
    }
}
