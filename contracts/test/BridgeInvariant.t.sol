// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {Bridge} from "../src/Bridge.sol";
import {BridgeMessages} from "../src/bridge/BridgeMessages.sol";
import {WithdrawManager} from "../src/bridge/WithdrawManager.sol";
import {CheckpointTree} from "../src/lib/CheckpointTree.sol";
import {ChildERC20} from "../src/l2/ChildERC20.sol";
import {L2Bridge} from "../src/l2/L2Bridge.sol";
import {StakingToken} from "../src/StakingToken.sol";
import {Merkle, MockRoots, Refuser, TestToken, Withdrawals} from "./utils/BridgeKit.sol";
import {Test} from "./utils/Test.sol";
import {Vm, vm} from "./utils/Vm.sol";

/// Both halves of the bridge in one EVM: deposits on L1 are relayed to the L2 bridge as
/// the node relays them (the StateSynced events, in id order, as system calls);
/// withdrawals on L2 are put in blocks, checkpointed and exited on L1. Random sequences of
/// deposits, L2 transfers, withdrawals, checkpoints and exits.
contract BridgeHandler is Test {
    address internal constant SYSTEM = 0xffffFFFfFFffffffffffffffFfFFFfffFFFfFFfE;
    uint256 public constant RESERVE = 1e9 ether;
    uint256 internal constant USERS = 4; // the last one refuses native KMC

    StakingToken public immutable kmc;
    TestToken public immutable usd;
    MockRoots public immutable roots;
    Bridge public immutable bridge;
    L2Bridge public immutable l2;
    Refuser public immutable refuser;

    /// Initiated on L2 and not yet exited, by token id.
    mapping(address token => uint256) public pendingExits;
    uint256 public exits;

    BridgeMessages.Withdrawal[] internal _unblocked;
    WithdrawManager.ExitProof[] internal _exitable;
    uint256 internal _checkpoints;
    uint256 internal _nextBlock;

    constructor(StakingToken kmc_, TestToken usd_, MockRoots roots_, Bridge bridge_, L2Bridge l2_) {
        kmc = kmc_;
        usd = usd_;
        roots = roots_;
        bridge = bridge_;
        l2 = l2_;
        refuser = new Refuser();
        vm.recordLogs();
    }

    function user(uint256 seed) public view returns (address) {
        uint256 i = seed % USERS;
        return i == USERS - 1 ? address(refuser) : address(uint160(0xC0000 + i));
    }

    function tokenId(uint256 seed) public view returns (address) {
        uint256 k = seed % 3;
        return k == 0 ? BridgeMessages.KMC : k == 1 ? BridgeMessages.ETH : address(usd);
    }

    // ---- L1 ----

    function deposit(uint256 seed, uint256 amount) external {
        address from = address(uint160(0xD0000 + seed % 3));
        address to = user(seed >> 8);
        address token = tokenId(seed >> 16);
        amount = bound(amount, 1, 1000 ether);
        vm.startPrank(from);
        if (token == BridgeMessages.ETH) {
            vm.deal(from, amount);
            bridge.depositEtherFor{value: amount}(to);
        } else {
            TestToken t = token == BridgeMessages.KMC ? TestToken(address(kmc)) : usd;
            vm.stopPrank();
            if (token == BridgeMessages.KMC) kmc.transfer(from, amount);
            else usd.mint(from, amount);
            vm.startPrank(from);
            t.approve(address(bridge), amount);
            bridge.depositERC20For(address(t), to, amount);
        }
        vm.stopPrank();
        _relay();
    }

    /// The node's part: every new StateSynced event, in order, as a system call.
    function _relay() internal {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        bytes32 topic = keccak256("StateSynced(uint256,address,bytes)");
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter != address(bridge) || logs[i].topics[0] != topic) continue;
            bytes memory data = abi.decode(logs[i].data, (bytes));
            vm.prank(SYSTEM);
            l2.onStateReceive(uint256(logs[i].topics[1]), data);
        }
    }

    // ---- L2 ----

    function transfer(uint256 seed, uint256 amount) external {
        address from = user(seed);
        address to = user(seed >> 8);
        address token = tokenId(seed >> 16);
        if (token == BridgeMessages.KMC) {
            amount = bound(amount, 0, from.balance);
            vm.prank(from);
            (bool ok,) = to.call{value: amount}("");
            ok; // the refusing user refuses
        } else {
            ChildERC20 child = ChildERC20(l2.childOf(token));
            if (address(child) == address(0)) return;
            amount = bound(amount, 0, child.balanceOf(from));
            vm.prank(from);
            child.transfer(to, amount);
        }
    }

    function claim(uint256 seed) external {
        if (l2.claimable(address(refuser)) == 0) return;
        vm.prank(address(refuser));
        l2.claim(user(seed % (USERS - 1)));
    }

    function withdraw(uint256 seed, uint256 amount) external {
        address from = user(seed);
        address to = address(uint160(0xE0000 + (seed >> 8) % 3));
        address token = tokenId(seed >> 16);
        uint256 nonce = l2.withdrawalCount();
        if (token == BridgeMessages.KMC) {
            amount = bound(amount, 0, from.balance);
            if (amount == 0) return;
            vm.prank(from);
            l2.withdraw{value: amount}(to);
        } else {
            address child = l2.childOf(token);
            if (child == address(0)) return;
            amount = bound(amount, 0, ChildERC20(child).balanceOf(from));
            if (amount == 0) return;
            vm.prank(from);
            l2.withdrawToken(child, to, amount);
        }
        _unblocked.push(BridgeMessages.Withdrawal(nonce, from, to, token, amount));
        pendingExits[token] += amount;
    }

    /// The withdrawals since the last checkpoint go into one block, among 4 blocks of a
    /// new accepted checkpoint.
    function checkpoint(uint256 position) external {
        if (_unblocked.length == 0) return;
        position = position % 4;
        bytes32[] memory wLeaves = Withdrawals.leaves(_unblocked);
        CheckpointTree.BlockLeaf memory leaf = CheckpointTree.BlockLeaf(
            _nextBlock + position, 1_700_000_000 + _nextBlock, bytes32(_nextBlock + 1), bytes32(0), Merkle.root(wLeaves)
        );
        bytes32[] memory bLeaves = new bytes32[](4);
        for (uint256 i; i < 4; ++i) {
            bLeaves[i] = keccak256(abi.encode(_nextBlock + i));
        }
        bLeaves[position] = CheckpointTree.leafHash(leaf);
        _checkpoints += 1;
        roots.set(_checkpoints, Merkle.root(bLeaves));
        for (uint256 i; i < _unblocked.length; ++i) {
            _exitable.push(
                WithdrawManager.ExitProof(
                    _unblocked[i],
                    i,
                    Merkle.proof(wLeaves, i),
                    _checkpoints,
                    leaf,
                    position,
                    Merkle.proof(bLeaves, position)
                )
            );
        }
        delete _unblocked;
        _nextBlock += 4;
    }

    function exit(uint256 seed) external {
        if (_exitable.length == 0) return;
        uint256 i = seed % _exitable.length;
        WithdrawManager.ExitProof memory p = _exitable[i];
        bridge.exit(p);
        pendingExits[p.withdrawal.token] -= p.withdrawal.amount;
        exits += 1;
        // a replay never pays
        (bool replayed,) = address(bridge).call(abi.encodeCall(bridge.exit, (p)));
        assertTrue(!replayed, "replay refused");
        _exitable[i] = _exitable[_exitable.length - 1];
        _exitable.pop();
    }
}

contract BridgeInvariantTest is Test {
    BridgeHandler internal handler;
    StakingToken internal kmc;
    TestToken internal usd;
    Bridge internal bridge;
    L2Bridge internal l2;

    function setUp() public {
        kmc = new StakingToken(address(this), 1e9 ether);
        usd = new TestToken("USD Coin", "USDC", 6);
        MockRoots roots = new MockRoots();
        l2 = new L2Bridge();
        bridge = new Bridge(kmc, roots, address(l2));
        handler = new BridgeHandler(kmc, usd, roots, bridge, l2);
        vm.deal(address(l2), handler.RESERVE());
        kmc.transfer(address(handler), 1e8 ether);
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    /// For every token, to the wei: locked on L1 = supply on L2 + initiated exits not yet
    /// paid, and the vault holds exactly what it counts as locked.
    function invariant_lockedEqualsSupplyPlusPendingExits() public view {
        // native KMC: what left the reserve (balances plus what is owed as claimable)
        uint256 nativeSupply = handler.RESERVE() - address(l2).balance + _claimable();
        assertEq(bridge.locked(BridgeMessages.KMC), nativeSupply + handler.pendingExits(BridgeMessages.KMC), "KMC");
        assertEq(kmc.balanceOf(address(bridge)), bridge.locked(BridgeMessages.KMC), "KMC held");
        _child(BridgeMessages.ETH);
        assertEq(address(bridge).balance, bridge.locked(BridgeMessages.ETH), "ETH held");
        _child(address(usd));
        assertEq(usd.balanceOf(address(bridge)), bridge.locked(address(usd)), "USD held");
    }

    /// Every deposit was applied on L2, once, in order.
    function invariant_everyDepositAppliedOnce() public view {
        assertEq(l2.lastStateId(), bridge.stateCounter(), "applied");
        assertEq(l2.lastStateHash(), bridge.stateHash(), "the same hash chain on both sides");
    }

    function _child(address token) internal view {
        address child = l2.childOf(token);
        uint256 supply = child == address(0) ? 0 : ChildERC20(child).totalSupply();
        assertEq(bridge.locked(token), supply + handler.pendingExits(token), "child supply");
    }

    function _claimable() internal view returns (uint256) {
        return l2.claimable(address(handler.refuser()));
    }
}
