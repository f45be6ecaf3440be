// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {BridgeMessages} from "../../src/bridge/BridgeMessages.sol";
import {ICheckpointRoots} from "../../src/bridge/WithdrawManager.sol";

/// Checkpoint roots set by the test (the bridge only reads them).
contract MockRoots is ICheckpointRoots {
    mapping(uint256 => bytes32) public checkpointRoot;

    function set(uint256 number, bytes32 root) external {
        checkpointRoot[number] = root;
    }
}

/// A plain ERC-20 anyone can mint.
contract TestToken is ERC20 {
    uint8 private immutable _dec;

    constructor(string memory n, string memory s, uint8 d) ERC20(n, s) {
        _dec = d;
    }

    function decimals() public view override returns (uint8) {
        return _dec;
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}

/// An ERC-20 that keeps 1 % of every transfer.
contract FeeToken is ERC20 {
    constructor() ERC20("Fee", "FEE") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override {
        if (from != address(0) && to != address(0)) {
            uint256 fee = value / 100;
            super._update(from, address(0xFEE), fee);
            value -= fee;
        }
        super._update(from, to, value);
    }
}

/// A token whose name and symbol are bytes32 (as some older tokens) and that has no
/// decimals().
contract Bytes32Token {
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    function name() external pure returns (bytes32) {
        return "Maker";
    }

    function symbol() external pure returns (bytes32) {
        return "MKR";
    }

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        return true;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        balanceOf[msg.sender] -= amount;
        balanceOf[to] += amount;
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        allowance[from][msg.sender] -= amount;
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
        return true;
    }
}

/// A contract that refuses ether.
contract Refuser {
    receive() external payable {
        revert("no thanks");
    }
}

/// Binary Merkle trees as the checkpoint format builds them: leaves padded with zero
/// leaves to the next power of two, parent = keccak256(left ‖ right).
library Merkle {
    function root(bytes32[] memory leaves) internal pure returns (bytes32) {
        bytes32[] memory level = _padded(leaves);
        while (level.length > 1) level = _up(level);
        return level[0];
    }

    function proof(bytes32[] memory leaves, uint256 index) internal pure returns (bytes32[] memory path) {
        bytes32[] memory level = _padded(leaves);
        uint256 depth;
        for (uint256 n = level.length; n > 1; n >>= 1) {
            ++depth;
        }
        path = new bytes32[](depth);
        for (uint256 d; d < depth; ++d) {
            path[d] = level[index ^ 1];
            level = _up(level);
            index >>= 1;
        }
    }

    function _padded(bytes32[] memory leaves) private pure returns (bytes32[] memory out) {
        uint256 n = 1;
        while (n < leaves.length) n <<= 1;
        out = new bytes32[](n);
        for (uint256 i; i < leaves.length; ++i) {
            out[i] = leaves[i];
        }
    }

    function _up(bytes32[] memory level) private pure returns (bytes32[] memory next) {
        next = new bytes32[](level.length / 2);
        for (uint256 i; i < next.length; ++i) {
            next[i] = keccak256(abi.encodePacked(level[2 * i], level[2 * i + 1]));
        }
    }
}

/// Withdrawal leaves.
library Withdrawals {
    function leaves(BridgeMessages.Withdrawal[] memory ws) internal pure returns (bytes32[] memory out) {
        out = new bytes32[](ws.length);
        for (uint256 i; i < ws.length; ++i) {
            out[i] = BridgeMessages.withdrawalLeaf(ws[i]);
        }
    }
}
