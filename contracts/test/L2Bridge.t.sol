// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {BridgeMessages} from "../src/bridge/BridgeMessages.sol";
import {ChildERC20} from "../src/l2/ChildERC20.sol";
import {L2Bridge} from "../src/l2/L2Bridge.sol";
import {Refuser} from "./utils/BridgeKit.sol";
import {Test} from "./utils/Test.sol";
import {Vm, vm} from "./utils/Vm.sol";

/// The L2 bridge predeploy: deposits applied by system calls, child tokens, withdrawals.
contract L2BridgeTest is Test {
    address internal constant SYSTEM = 0xffffFFFfFFffffffffffffffFfFFFfffFFFfFFfE;
    address internal constant USD = address(0x05D);
    address internal constant ALICE = address(0xA11CE);
    address internal constant BOB = address(0xB0B);
    uint256 internal constant RESERVE = 1e9 ether;

    L2Bridge internal l2;

    function setUp() public {
        l2 = new L2Bridge();
        vm.deal(address(l2), RESERVE); // the genesis reserve
    }

    function _apply(uint256 id, address token, address to, uint256 amount, bytes memory metadata) internal {
        vm.prank(SYSTEM);
        l2.onStateReceive(id, BridgeMessages.depositData(token, ALICE, to, amount, metadata));
    }

    function test_onlyTheSystemAppliesDepositsAndOnlyInOrder() public {
        bytes memory data = BridgeMessages.depositData(BridgeMessages.KMC, ALICE, BOB, 1, "");
        vm.prank(ALICE);
        vm.expectRevert(L2Bridge.OnlySystem.selector);
        l2.onStateReceive(1, data);
        vm.prank(SYSTEM);
        vm.expectRevert(abi.encodeWithSelector(L2Bridge.StateOutOfOrder.selector, 1, 2));
        l2.onStateReceive(2, data);
        _apply(1, BridgeMessages.KMC, BOB, 1, "");
        vm.prank(SYSTEM);
        vm.expectRevert(abi.encodeWithSelector(L2Bridge.StateOutOfOrder.selector, 2, 1));
        l2.onStateReceive(1, data); // never twice
        assertEq(l2.lastStateId(), 1, "applied once");
        assertEq(l2.lastStateHash(), BridgeMessages.nextStateHash(0, 1, address(l2), data), "hash chain");
        assertEq(BOB.balance, 1, "credited once");
    }

    function test_nativeDepositIsPaidFromTheReserve() public {
        _apply(1, BridgeMessages.KMC, BOB, 5 ether, "");
        assertEq(BOB.balance, 5 ether, "credited");
        assertEq(address(l2).balance, RESERVE - 5 ether, "reserve");
    }

    function test_aRefusingRecipientKeepsItsDepositClaimable() public {
        Refuser refuser = new Refuser();
        _apply(1, BridgeMessages.KMC, address(refuser), 3 ether, "");
        assertEq(l2.claimable(address(refuser)), 3 ether, "claimable");
        assertEq(address(l2).balance, RESERVE, "still in the reserve");
        vm.prank(address(refuser));
        l2.claim(BOB);
        assertEq(BOB.balance, 3 ether, "claimed elsewhere");
        assertEq(l2.claimable(address(refuser)), 0, "spent");
        vm.prank(address(refuser));
        vm.expectRevert(L2Bridge.NothingToClaim.selector);
        l2.claim(BOB);
    }

    function test_theFirstDepositCreatesTheChildAtItsAddress() public {
        address expected = l2.childAddress(USD);
        _apply(1, USD, BOB, 100, abi.encode("USD Coin", "USDC", uint8(6)));
        ChildERC20 child = ChildERC20(l2.childOf(USD));
        assertEq(address(child), expected, "deterministic");
        assertEq(l2.rootOf(address(child)), USD, "mapped back");
        assertEq(child.rootToken(), USD, "root");
        assertEq(bytes(child.name()), bytes("USD Coin"), "name");
        assertEq(bytes(child.symbol()), bytes("USDC"), "symbol");
        assertEq(child.decimals(), 6, "decimals");
        _apply(2, USD, ALICE, 50, "");
        assertEq(child.balanceOf(BOB), 100, "bob");
        assertEq(child.balanceOf(ALICE), 50, "alice");
        assertEq(child.totalSupply(), 150, "supply");
    }

    function test_withdrawalsGetConsecutiveNoncesAndBurn() public {
        _apply(1, USD, ALICE, 100, abi.encode("USD Coin", "USDC", uint8(6)));
        ChildERC20 child = ChildERC20(l2.childOf(USD));
        vm.deal(ALICE, 10 ether);
        vm.recordLogs();
        vm.prank(ALICE);
        l2.withdraw{value: 4 ether}(BOB);
        vm.prank(ALICE);
        l2.withdrawToken(address(child), BOB, 60);
        assertEq(l2.withdrawalCount(), 2, "count");
        assertEq(address(l2).balance, RESERVE + 4 ether, "native back in the reserve");
        assertEq(child.totalSupply(), 40, "burned");

        Vm.Log[] memory logs = vm.getRecordedLogs();
        bytes32 topic = keccak256("WithdrawalInitiated(uint256,address,address,address,uint256)");
        uint256 seen;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] != topic) continue;
            assertEq(logs[i].emitter, address(l2), "emitter");
            assertEq(uint256(logs[i].topics[1]), seen, "nonce");
            (address token, uint256 amount) = abi.decode(logs[i].data, (address, uint256));
            assertEq(token, seen == 0 ? BridgeMessages.KMC : USD, "token");
            assertEq(amount, seen == 0 ? 4 ether : 60, "amount");
            ++seen;
        }
        assertEq(seen, 2, "events");
    }

    function test_withdrawalRefusals() public {
        vm.deal(ALICE, 1 ether);
        vm.startPrank(ALICE);
        vm.expectRevert(L2Bridge.ZeroAmount.selector);
        l2.withdraw{value: 0}(BOB);
        vm.expectRevert(L2Bridge.ZeroRecipient.selector);
        l2.withdraw{value: 1}(address(0));
        vm.expectRevert(abi.encodeWithSelector(L2Bridge.NotAChildToken.selector, USD));
        l2.withdrawToken(USD, BOB, 1);
        vm.stopPrank();
        _apply(1, USD, ALICE, 10, abi.encode("USD Coin", "USDC", uint8(6)));
        address child = l2.childOf(USD);
        vm.prank(BOB);
        vm.expectRevert(); // ERC20InsufficientBalance
        l2.withdrawToken(child, BOB, 1);
        vm.prank(ALICE);
        vm.expectRevert(ChildERC20.OnlyBridge.selector);
        ChildERC20(child).mint(ALICE, 1);
        assertEq(l2.withdrawalCount(), 0, "none");
    }
}
