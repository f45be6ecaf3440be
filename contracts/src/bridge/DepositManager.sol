// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {BridgeMessages} from "./BridgeMessages.sol";
import {BridgeVault} from "./BridgeVault.sol";
import {StateSender} from "./StateSender.sol";

/// @title Deposits: lock ETH, KMC or an ERC-20 on L1 for a recipient on L2.
/// @notice Each deposit locks the tokens here and sends one numbered state message to the
/// L2 bridge. On L2, KMC arrives as native balance; ETH and every ERC-20 arrive as a child
/// ERC-20 at a deterministic address, created on the token's first deposit with the name,
/// symbol and decimals read here. What is credited is what arrived: for a token that takes
/// a fee on transfer, the balance increase.
abstract contract DepositManager is BridgeVault, StateSender {
    using SafeERC20 for IERC20;

    /// The L2 bridge (the predeploy that receives the state messages).
    address public immutable l2Bridge;

    /// True once a deposit of the token id carried its metadata to L2.
    mapping(address token => bool) public mapped;

    event Deposited(uint256 indexed id, address indexed token, address indexed from, address to, uint256 amount);

    error ZeroAmount();
    error ZeroRecipient();

    constructor(address l2Bridge_) {
        l2Bridge = l2Bridge_;
    }

    /// Deposits the ether sent for `msg.sender` on L2.
    receive() external payable {
        _deposit(BridgeMessages.ETH, msg.sender, msg.value);
    }

    /// Deposits the ether sent for `to` on L2.
    function depositEtherFor(address to) external payable {
        _deposit(BridgeMessages.ETH, to, msg.value);
    }

    /// Deposits `amount` of ERC-20 `token` (KMC included) for `to` on L2. The bridge must
    /// be approved for `amount`.
    function depositERC20For(address token, address to, uint256 amount) external {
        IERC20 t = IERC20(token);
        uint256 before = t.balanceOf(address(this));
        t.safeTransferFrom(msg.sender, address(this), amount);
        _deposit(_tokenId(token), to, t.balanceOf(address(this)) - before);
    }

    function _deposit(address token, address to, uint256 amount) private {
        if (amount == 0) revert ZeroAmount();
        if (to == address(0)) revert ZeroRecipient();
        locked[token] += amount;
        bytes memory metadata;
        if (token != BridgeMessages.KMC && !mapped[token]) {
            mapped[token] = true;
            metadata = token == BridgeMessages.ETH ? abi.encode("Ether", "ETH", uint8(18)) : _metadata(token);
        }
        uint256 id = _syncState(l2Bridge, BridgeMessages.depositData(token, msg.sender, to, amount, metadata));
        emit Deposited(id, token, msg.sender, to, amount);
    }

    /// abi.encode(name, symbol, decimals) of an ERC-20, read without trusting it: a name
    /// or symbol returned as bytes32 (older tokens) is taken up to its first zero byte, one
    /// that is missing or malformed is empty, and decimals default to 18.
    function _metadata(address token) private view returns (bytes memory) {
        return abi.encode(
            _text(token, abi.encodeWithSignature("name()")),
            _text(token, abi.encodeWithSignature("symbol()")),
            _decimals(token)
        );
    }

    function _text(address token, bytes memory call) private view returns (string memory) {
        (bool ok, bytes memory ret) = token.staticcall{gas: 100_000}(call);
        if (!ok) return "";
        if (ret.length == 32) {
            bytes32 word = bytes32(ret);
            uint256 n;
            while (n < 32 && word[n] != 0) ++n;
            bytes memory out = new bytes(n);
            for (uint256 i; i < n; ++i) {
                out[i] = word[i];
            }
            return string(out);
        }
        if (ret.length < 64) return "";
        uint256 offset = uint256(bytes32(ret));
        if (offset > ret.length - 32) return "";
        uint256 len;
        assembly ("memory-safe") {
            len := mload(add(add(ret, 0x20), offset))
        }
        if (len > 256 || len > ret.length - 32 - offset) return "";
        bytes memory text = new bytes(len);
        for (uint256 i; i < len; ++i) {
            text[i] = ret[offset + 32 + i];
        }
        return string(text);
    }

    function _decimals(address token) private view returns (uint8) {
        (bool ok, bytes memory ret) = token.staticcall{gas: 100_000}(abi.encodeWithSignature("decimals()"));
        if (!ok || ret.length != 32) return 18;
        uint256 d = uint256(bytes32(ret));
        return d > 255 ? 18 : uint8(d);
    }
}
