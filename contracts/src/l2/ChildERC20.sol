// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title The L2 form of an L1 token (ETH or an ERC-20) bridged to KOMA.
/// @notice Created by the L2 bridge on the token's first deposit, at an address that
/// depends only on the L1 token (CREATE2 with the L1 address as salt and this contract's
/// fixed creation code), with the L1 token's name, symbol and decimals. Only the bridge
/// mints (deposits) and burns (withdrawals).
contract ChildERC20 is ERC20 {
    /// The L2 bridge that created this token.
    address public immutable bridge;
    /// The L1 token id this token stands for.
    address public rootToken;

    string private _name;
    string private _symbol;
    uint8 private _decimals;

    error OnlyBridge();
    error AlreadyInitialized();

    constructor() ERC20("", "") {
        bridge = msg.sender;
    }

    modifier onlyBridge() {
        if (msg.sender != bridge) revert OnlyBridge();
        _;
    }

    function initialize(address rootToken_, string calldata name_, string calldata symbol_, uint8 decimals_)
        external
        onlyBridge
    {
        if (rootToken != address(0)) revert AlreadyInitialized();
        rootToken = rootToken_;
        _name = name_;
        _symbol = symbol_;
        _decimals = decimals_;
    }

    function name() public view override returns (string memory) {
        return _name;
    }

    function symbol() public view override returns (string memory) {
        return _symbol;
    }

    function decimals() public view override returns (uint8) {
        return _decimals;
    }

    function mint(address to, uint256 amount) external onlyBridge {
        _mint(to, amount);
    }

    function burn(address from, uint256 amount) external onlyBridge {
        _burn(from, amount);
    }
}
