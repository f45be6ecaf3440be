// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {BridgeMessages} from "../bridge/BridgeMessages.sol";
import {ChildERC20} from "./ChildERC20.sol";

/// @title KOMA's bridge on L2, a predeploy: it applies deposits from L1 and starts
/// withdrawals to L1.
/// @notice Deposits arrive as system calls (`onStateReceive`, from SYSTEM, in id order,
/// made by the block producer from the deposit list the stakers agreed on). Native KMC is
/// paid out of this contract's reserve, which the genesis allocation fills with the part
/// of KMC's supply that is not circulating on L2; withdrawals of native KMC return to it.
/// So the L2's circulating native supply is always `total - reserve`, and KMC locked in the
/// L1 bridge backs it. ETH and ERC-20s are minted and burned as child tokens.
///
/// A withdrawal emits `WithdrawalInitiated` with a global nonce; the node commits each
/// block's withdrawals (the events of this contract only, in order) in the header's
/// `withdrawalsRoot`, from which an exit on L1 is proven.
contract L2Bridge {
    /// The caller of system calls (as in EIP-4788).
    address public constant SYSTEM = 0xffffFFFfFFffffffffffffffFfFFFfffFFFfFFfE;
    /// Gas a native deposit may spend in a contract recipient; if it reverts or runs out,
    /// the amount stays claimable by the recipient (`claim`).
    uint256 public constant RECIPIENT_GAS = 100_000;

    /// The id of the last state message applied.
    uint256 public lastStateId;
    /// The hash chain through message `lastStateId`, as L1's `StateSender.stateHash`
    /// computes it: L2's state commits to exactly which deposits it applied.
    bytes32 public lastStateHash;
    /// The nonce the next withdrawal gets.
    uint256 public withdrawalCount;
    /// The child token of each L1 token id, and back.
    mapping(address rootToken => address) public childOf;
    mapping(address child => address) public rootOf;
    /// Native KMC deposited to a recipient that refused it, claimable by the recipient.
    mapping(address account => uint256) public claimable;

    event DepositApplied(uint256 indexed id, address indexed token, address indexed to, uint256 amount, bool credited);
    event ChildTokenCreated(
        address indexed rootToken, address indexed child, string name, string symbol, uint8 decimals
    );
    event WithdrawalInitiated(
        uint256 indexed nonce, address indexed sender, address indexed recipient, address token, uint256 amount
    );
    event Claimed(address indexed account, address to, uint256 amount);

    error OnlySystem();
    error StateOutOfOrder(uint256 expected, uint256 id);
    error ZeroAmount();
    error ZeroRecipient();
    error NotAChildToken(address token);
    error NothingToClaim();
    error ClaimFailed();

    /// Applies deposit `id` (its data as the L1 bridge encoded it).
    function onStateReceive(uint256 id, bytes calldata data) external {
        if (msg.sender != SYSTEM) revert OnlySystem();
        if (id != lastStateId + 1) revert StateOutOfOrder(lastStateId + 1, id);
        lastStateId = id;
        lastStateHash = BridgeMessages.nextStateHash(lastStateHash, id, address(this), data);
        (address token,, address to, uint256 amount, bytes memory metadata) =
            abi.decode(data, (address, address, address, uint256, bytes));
        bool credited = true;
        if (token == BridgeMessages.KMC) {
            (credited,) = to.call{value: amount, gas: RECIPIENT_GAS}("");
            if (!credited) claimable[to] += amount;
        } else {
            address child = childOf[token];
            if (child == address(0)) child = _createChild(token, metadata);
            ChildERC20(child).mint(to, amount);
        }
        emit DepositApplied(id, token, to, amount, credited);
    }

    /// Withdraws the native KMC sent to `recipient` on L1.
    function withdraw(address recipient) external payable {
        _withdraw(recipient, BridgeMessages.KMC, msg.value);
    }

    /// Burns `amount` of child token `child` from the caller and withdraws it to
    /// `recipient` on L1.
    function withdrawToken(address child, address recipient, uint256 amount) external {
        address root = rootOf[child];
        if (root == address(0)) revert NotAChildToken(child);
        ChildERC20(child).burn(msg.sender, amount);
        _withdraw(recipient, root, amount);
    }

    /// Pays the caller's claimable native KMC to `to`.
    function claim(address to) external {
        uint256 amount = claimable[msg.sender];
        if (amount == 0) revert NothingToClaim();
        claimable[msg.sender] = 0;
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert ClaimFailed();
        emit Claimed(msg.sender, to, amount);
    }

    /// The address of the child token of L1 token id `rootToken`, created or not.
    function childAddress(address rootToken) public view returns (address) {
        bytes32 hash = keccak256(
            abi.encodePacked(
                bytes1(0xff),
                address(this),
                bytes32(uint256(uint160(rootToken))),
                keccak256(type(ChildERC20).creationCode)
            )
        );
        return address(uint160(uint256(hash)));
    }

    function _withdraw(address recipient, address token, uint256 amount) private {
        if (amount == 0) revert ZeroAmount();
        if (recipient == address(0)) revert ZeroRecipient();
        uint256 nonce = withdrawalCount++;
        emit WithdrawalInitiated(nonce, msg.sender, recipient, token, amount);
    }

    function _createChild(address rootToken, bytes memory metadata) private returns (address child) {
        // the L1 bridge sends the metadata with a token's first deposit; without it the
        // child is still created (unnamed, 18 decimals) so that no deposit is stuck
        string memory name;
        string memory symbol;
        uint8 decimals = 18;
        if (metadata.length != 0) (name, symbol, decimals) = abi.decode(metadata, (string, string, uint8));
        child = address(new ChildERC20{salt: bytes32(uint256(uint160(rootToken)))}());
        ChildERC20(child).initialize(rootToken, name, symbol, decimals);
        childOf[rootToken] = child;
        rootOf[child] = rootToken;
        emit ChildTokenCreated(rootToken, child, name, symbol, decimals);
    }
}
