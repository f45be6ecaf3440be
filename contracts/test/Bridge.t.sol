// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {Bridge} from "../src/Bridge.sol";
import {BridgeMessages} from "../src/bridge/BridgeMessages.sol";
import {BridgeVault} from "../src/bridge/BridgeVault.sol";
import {DepositManager} from "../src/bridge/DepositManager.sol";
import {WithdrawManager} from "../src/bridge/WithdrawManager.sol";
import {CheckpointTree} from "../src/lib/CheckpointTree.sol";
import {StakingToken} from "../src/StakingToken.sol";
import {Bytes32Token, FeeToken, Merkle, MockRoots, Refuser, TestToken, Withdrawals} from "./utils/BridgeKit.sol";
import {Test} from "./utils/Test.sol";
import {Vm, vm} from "./utils/Vm.sol";

/// The L1 bridge alone: deposits and their state messages, exits and every refusal.
/// Checkpoint roots come from a mock here; BridgeE2E.t.sol runs exits against a real
/// RootChain with BLS-signed checkpoints.
contract BridgeTest is Test {
    address internal constant L2_BRIDGE = address(0x1001);
    address internal constant ALICE = address(0xA11CE);
    address internal constant BOB = address(0xB0B);

    StakingToken internal kmc;
    MockRoots internal roots;
    Bridge internal bridge;
    TestToken internal usd;

    function setUp() public {
        kmc = new StakingToken(address(this), 1e9 ether);
        roots = new MockRoots();
        bridge = new Bridge(kmc, roots, L2_BRIDGE);
        usd = new TestToken("USD Coin", "USDC", 6);
        vm.deal(ALICE, 100 ether);
        usd.mint(ALICE, 1e12);
        kmc.transfer(ALICE, 1000 ether);
    }

    // ---- deposits ----

    function test_depositEtherSendsANumberedMessageWithMetadataOnce() public {
        vm.recordLogs();
        vm.prank(ALICE);
        bridge.depositEtherFor{value: 1 ether}(BOB);
        vm.prank(ALICE);
        bridge.depositEtherFor{value: 2 ether}(BOB);

        assertEq(bridge.stateCounter(), 2, "counter");
        assertEq(bridge.locked(BridgeMessages.ETH), 3 ether, "locked");
        assertEq(address(bridge).balance, 3 ether, "held");
        bytes memory first =
            BridgeMessages.depositData(BridgeMessages.ETH, ALICE, BOB, 1 ether, abi.encode("Ether", "ETH", uint8(18)));
        bytes memory second = BridgeMessages.depositData(BridgeMessages.ETH, ALICE, BOB, 2 ether, "");
        bytes32 h = BridgeMessages.nextStateHash(bytes32(0), 1, L2_BRIDGE, first);
        h = BridgeMessages.nextStateHash(h, 2, L2_BRIDGE, second);
        assertEq(bridge.stateHash(), h, "hash chain");

        Vm_Log[] memory logs = _stateSynced();
        assertEq(logs.length, 2, "messages");
        assertEq(logs[0].data, abi.encode(first), "first data");
        assertEq(logs[1].data, abi.encode(second), "second data");
        assertEq(uint256(logs[1].topics[1]), 2, "second id");
        assertEq(address(uint160(uint256(logs[1].topics[2]))), L2_BRIDGE, "receiver");
    }

    function test_plainEtherIsADepositForTheSender() public {
        vm.prank(ALICE);
        (bool ok,) = address(bridge).call{value: 1 ether}("");
        assertTrue(ok, "sent");
        assertEq(bridge.stateCounter(), 1, "counter");
        bytes memory data = BridgeMessages.depositData(
            BridgeMessages.ETH, ALICE, ALICE, 1 ether, abi.encode("Ether", "ETH", uint8(18))
        );
        assertEq(bridge.stateHash(), BridgeMessages.nextStateHash(0, 1, L2_BRIDGE, data), "message");
    }

    function test_kmcIsTheNativeTokenAndCarriesNoMetadata() public {
        vm.startPrank(ALICE);
        kmc.approve(address(bridge), 5 ether);
        bridge.depositERC20For(address(kmc), BOB, 5 ether);
        vm.stopPrank();
        assertEq(bridge.locked(BridgeMessages.KMC), 5 ether, "locked as KMC");
        assertEq(bridge.locked(address(kmc)), 0, "not as an ERC-20");
        bytes memory data = BridgeMessages.depositData(BridgeMessages.KMC, ALICE, BOB, 5 ether, "");
        assertEq(bridge.stateHash(), BridgeMessages.nextStateHash(0, 1, L2_BRIDGE, data), "message");
    }

    function test_erc20CarriesItsMetadataOnTheFirstDeposit() public {
        vm.startPrank(ALICE);
        usd.approve(address(bridge), 300);
        bridge.depositERC20For(address(usd), BOB, 100);
        bytes32 h = BridgeMessages.nextStateHash(
            0,
            1,
            L2_BRIDGE,
            BridgeMessages.depositData(address(usd), ALICE, BOB, 100, abi.encode("USD Coin", "USDC", uint8(6)))
        );
        assertEq(bridge.stateHash(), h, "first");
        bridge.depositERC20For(address(usd), BOB, 200);
        vm.stopPrank();
        h = BridgeMessages.nextStateHash(h, 2, L2_BRIDGE, BridgeMessages.depositData(address(usd), ALICE, BOB, 200, ""));
        assertEq(bridge.stateHash(), h, "second");
        assertEq(bridge.locked(address(usd)), 300, "locked");
        assertTrue(bridge.mapped(address(usd)), "mapped");
    }

    function test_aFeeOnTransferTokenCreditsWhatArrived() public {
        FeeToken fee = new FeeToken();
        fee.mint(ALICE, 1000);
        vm.startPrank(ALICE);
        fee.approve(address(bridge), 1000);
        bridge.depositERC20For(address(fee), BOB, 1000);
        vm.stopPrank();
        assertEq(bridge.locked(address(fee)), 990, "locked what arrived");
        assertEq(fee.balanceOf(address(bridge)), 990, "held");
    }

    function test_bytes32MetadataIsRead() public {
        Bytes32Token mkr = new Bytes32Token();
        mkr.mint(ALICE, 10);
        vm.startPrank(ALICE);
        mkr.approve(address(bridge), 10);
        bridge.depositERC20For(address(mkr), BOB, 10);
        vm.stopPrank();
        bytes memory data =
            BridgeMessages.depositData(address(mkr), ALICE, BOB, 10, abi.encode("Maker", "MKR", uint8(18)));
        assertEq(bridge.stateHash(), BridgeMessages.nextStateHash(0, 1, L2_BRIDGE, data), "metadata");
    }

    function test_zeroAmountAndZeroRecipientAreRefused() public {
        vm.prank(ALICE);
        vm.expectRevert(DepositManager.ZeroAmount.selector);
        bridge.depositEtherFor{value: 0}(BOB);
        vm.prank(ALICE);
        vm.expectRevert(DepositManager.ZeroRecipient.selector);
        bridge.depositEtherFor{value: 1}(address(0));
        assertEq(bridge.stateCounter(), 0, "nothing sent");
    }

    function test_genesisSupplyIsLockedOnceByTheDeployer() public {
        kmc.approve(address(bridge), 200 ether);
        vm.prank(ALICE);
        vm.expectRevert(BridgeVault.NotDeployer.selector);
        bridge.lockGenesisSupply(1);
        bridge.lockGenesisSupply(100 ether);
        assertEq(bridge.locked(BridgeMessages.KMC), 100 ether, "locked");
        assertEq(bridge.stateCounter(), 0, "no message");
        vm.expectRevert(BridgeVault.GenesisAlreadyLocked.selector);
        bridge.lockGenesisSupply(100 ether);
    }

    // ---- exits ----

    function test_exitPaysEachTokenOnceAndRefusesAReplay() public {
        _fund();
        BridgeMessages.Withdrawal[] memory ws = new BridgeMessages.Withdrawal[](3);
        ws[0] = BridgeMessages.Withdrawal(0, ALICE, BOB, BridgeMessages.ETH, 1 ether);
        ws[1] = BridgeMessages.Withdrawal(1, ALICE, BOB, BridgeMessages.KMC, 2 ether);
        ws[2] = BridgeMessages.Withdrawal(2, ALICE, BOB, address(usd), 300);
        WithdrawManager.ExitProof[] memory proofs = _checkpointed(7, 100, ws, 5);
        for (uint256 i; i < 3; ++i) {
            bridge.exit(proofs[i]);
        }
        assertEq(BOB.balance, 1 ether, "ether");
        assertEq(kmc.balanceOf(BOB), 2 ether, "kmc");
        assertEq(usd.balanceOf(BOB), 300, "usd");
        assertEq(bridge.locked(BridgeMessages.ETH), 9 ether, "eth left");
        assertTrue(bridge.isExited(1) && !bridge.isExited(3), "bitmap");
        vm.expectRevert(abi.encodeWithSelector(WithdrawManager.AlreadyExited.selector, 1));
        bridge.exit(proofs[1]);
    }

    function test_exitForAnUncheckpointedBlockIsRefused() public {
        _fund();
        BridgeMessages.Withdrawal[] memory ws = new BridgeMessages.Withdrawal[](1);
        ws[0] = BridgeMessages.Withdrawal(0, ALICE, BOB, BridgeMessages.ETH, 1 ether);
        WithdrawManager.ExitProof memory p = _checkpointed(7, 100, ws, 0)[0];
        p.checkpoint = 8;
        vm.expectRevert(abi.encodeWithSelector(WithdrawManager.UnknownCheckpoint.selector, 8));
        bridge.exit(p);
    }

    function test_aChangedWithdrawalIsRefused() public {
        _fund();
        BridgeMessages.Withdrawal[] memory ws = new BridgeMessages.Withdrawal[](2);
        ws[0] = BridgeMessages.Withdrawal(0, ALICE, BOB, BridgeMessages.ETH, 1 ether);
        ws[1] = BridgeMessages.Withdrawal(1, ALICE, BOB, BridgeMessages.KMC, 1 ether);
        WithdrawManager.ExitProof memory p = _checkpointed(1, 0, ws, 3)[0];

        p.withdrawal.amount = 2 ether;
        _refused(p, WithdrawManager.BadWithdrawalProof.selector);
        p.withdrawal.amount = 1 ether;
        p.withdrawal.recipient = ALICE;
        _refused(p, WithdrawManager.BadWithdrawalProof.selector);
        p.withdrawal.recipient = BOB;
        p.withdrawal.token = BridgeMessages.KMC;
        _refused(p, WithdrawManager.BadWithdrawalProof.selector);
        p.withdrawal.token = BridgeMessages.ETH;
        p.withdrawal.nonce = 5;
        _refused(p, WithdrawManager.BadWithdrawalProof.selector);
        p.withdrawal.nonce = 0;
        bridge.exit(p);
    }

    function test_aForgedOrTruncatedProofIsRefused() public {
        _fund();
        BridgeMessages.Withdrawal[] memory ws = new BridgeMessages.Withdrawal[](2);
        ws[0] = BridgeMessages.Withdrawal(0, ALICE, BOB, BridgeMessages.ETH, 1 ether);
        ws[1] = BridgeMessages.Withdrawal(1, ALICE, BOB, BridgeMessages.ETH, 1 ether);
        WithdrawManager.ExitProof memory p = _checkpointed(1, 0, ws, 6)[1];

        // the block tree: a truncated path, a wrong sibling, a wrong position
        bytes32[] memory full = p.blockProof;
        bytes32[] memory short = new bytes32[](full.length - 1);
        for (uint256 i; i < short.length; ++i) {
            short[i] = full[i];
        }
        p.blockProof = short; // too short for its position
        vm.expectRevert(abi.encodeWithSelector(CheckpointTree.BadProofIndex.selector, 6, short.length));
        bridge.exit(p);
        p.blockProof = full;
        p.blockIndex = 2; // a truncated path that fits its position: leads elsewhere
        p.blockProof = short;
        _refused(p, WithdrawManager.BadBlockProof.selector);
        p.blockIndex = 6;
        p.blockProof = full;
        full[0] = keccak256("forged");
        _refused(p, WithdrawManager.BadBlockProof.selector);
        p.blockProof = Merkle.proof(_blockLeaves(0, 8, p.blockLeaf), 6);
        p.blockIndex = 5;
        _refused(p, WithdrawManager.BadBlockProof.selector);
        p.blockIndex = 6;

        // the withdrawals tree: a wrong position, an empty path, a block leaf changed
        p.withdrawalIndex = 0;
        _refused(p, WithdrawManager.BadWithdrawalProof.selector);
        p.withdrawalIndex = 1;
        bytes32[] memory wp = p.withdrawalProof;
        p.withdrawalProof = new bytes32[](0);
        vm.expectRevert(abi.encodeWithSelector(CheckpointTree.BadProofIndex.selector, 1, 0));
        bridge.exit(p);
        p.withdrawalIndex = 0;
        _refused(p, WithdrawManager.BadWithdrawalProof.selector);
        p.withdrawalIndex = 1;
        p.withdrawalProof = wp;
        p.blockLeaf.timestamp += 1;
        _refused(p, WithdrawManager.BadBlockProof.selector);
        p.blockLeaf.timestamp -= 1;
        bridge.exit(p);
    }

    function test_anExitBeyondWhatIsLockedIsRefused() public {
        _fund();
        BridgeMessages.Withdrawal[] memory ws = new BridgeMessages.Withdrawal[](1);
        ws[0] = BridgeMessages.Withdrawal(0, ALICE, BOB, BridgeMessages.ETH, 11 ether);
        WithdrawManager.ExitProof memory p = _checkpointed(1, 0, ws, 0)[0];
        vm.expectRevert(); // arithmetic underflow of locked
        bridge.exit(p);
        assertTrue(!bridge.isExited(0), "not spent");
    }

    function test_anExitToARefusingContractRevertsAndStaysRetryable() public {
        _fund();
        Refuser refuser = new Refuser();
        BridgeMessages.Withdrawal[] memory ws = new BridgeMessages.Withdrawal[](1);
        ws[0] = BridgeMessages.Withdrawal(0, ALICE, address(refuser), BridgeMessages.ETH, 1 ether);
        WithdrawManager.ExitProof memory p = _checkpointed(1, 0, ws, 0)[0];
        vm.expectRevert(
            abi.encodeWithSelector(BridgeVault.PayoutFailed.selector, address(refuser), BridgeMessages.ETH, 1 ether)
        );
        bridge.exit(p);
        assertTrue(!bridge.isExited(0), "still exitable");
        assertEq(bridge.locked(BridgeMessages.ETH), 10 ether, "still locked");
    }

    /// Any withdrawal among up to 40 in a block at any position of a checkpoint of up to
    /// 64 blocks exits exactly once; the same proof with any one field changed does not.
    function testFuzz_anyWithdrawalExitsOnceAndNoChangedOne(
        uint256 count,
        uint256 pick,
        uint256 position,
        uint256 field
    ) public {
        _fund();
        count = bound(count, 1, 40);
        pick = bound(pick, 0, count - 1);
        BridgeMessages.Withdrawal[] memory ws = new BridgeMessages.Withdrawal[](count);
        for (uint256 i; i < count; ++i) {
            ws[i] = BridgeMessages.Withdrawal(1000 + i, ALICE, address(uint160(0x5000 + i)), BridgeMessages.ETH, 1 + i);
        }
        WithdrawManager.ExitProof memory p = _checkpointed(3, 64, ws, bound(position, 0, 63))[pick];
        WithdrawManager.ExitProof memory bad = _copy(p);
        uint256 f = field % 4;
        if (f == 0) bad.withdrawal.amount += 1;
        else if (f == 1) bad.withdrawal.recipient = address(uint160(bad.withdrawal.recipient) + 1);
        else if (f == 2) bad.withdrawal.token = BridgeMessages.KMC;
        else bad.withdrawal.nonce += 1;
        _refused(bad, WithdrawManager.BadWithdrawalProof.selector);

        bridge.exit(p);
        assertEq(p.withdrawal.recipient.balance, p.withdrawal.amount, "paid");
        vm.expectRevert(abi.encodeWithSelector(WithdrawManager.AlreadyExited.selector, p.withdrawal.nonce));
        bridge.exit(p);
    }

    // ---- helpers ----

    struct Vm_Log {
        bytes32[] topics;
        bytes data;
    }

    function _stateSynced() internal returns (Vm_Log[] memory out) {
        bytes32 topic = keccak256("StateSynced(uint256,address,bytes)");
        Vm.Log[] memory logs = vm.getRecordedLogs();
        uint256 n;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] == topic) ++n;
        }
        out = new Vm_Log[](n);
        n = 0;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] == topic) out[n++] = Vm_Log(logs[i].topics, logs[i].data);
        }
    }

    /// 10 ETH, 10 KMC and 1000 USD deposited.
    function _fund() internal {
        vm.startPrank(ALICE);
        bridge.depositEtherFor{value: 10 ether}(ALICE);
        kmc.approve(address(bridge), 10 ether);
        bridge.depositERC20For(address(kmc), ALICE, 10 ether);
        usd.approve(address(bridge), 1000);
        bridge.depositERC20For(address(usd), ALICE, 1000);
        vm.stopPrank();
    }

    /// The withdrawals `ws` in one block at position `position` of checkpoint `number`
    /// (8 blocks from `start`, or 64 when position > 7), accepted; one exit proof per
    /// withdrawal.
    function _checkpointed(uint256 number, uint256 start, BridgeMessages.Withdrawal[] memory ws, uint256 position)
        internal
        returns (WithdrawManager.ExitProof[] memory proofs)
    {
        bytes32[] memory wLeaves = Withdrawals.leaves(ws);
        CheckpointTree.BlockLeaf memory leaf = CheckpointTree.BlockLeaf(
            start + position,
            1_700_000_000 + position,
            keccak256(abi.encode("block", position)),
            keccak256("receipts"),
            Merkle.root(wLeaves)
        );
        uint256 blocks = position > 7 ? 64 : 8;
        bytes32[] memory bLeaves = _blockLeaves(start, blocks, leaf);
        roots.set(number, Merkle.root(bLeaves));
        proofs = new WithdrawManager.ExitProof[](ws.length);
        for (uint256 i; i < ws.length; ++i) {
            proofs[i] = WithdrawManager.ExitProof(
                ws[i], i, Merkle.proof(wLeaves, i), number, leaf, position, Merkle.proof(bLeaves, position)
            );
        }
    }

    function _blockLeaves(uint256 start, uint256 blocks, CheckpointTree.BlockLeaf memory leaf)
        internal
        pure
        returns (bytes32[] memory out)
    {
        out = new bytes32[](blocks);
        for (uint256 i; i < blocks; ++i) {
            out[i] = keccak256(abi.encode("other block", start + i));
        }
        out[leaf.number - start] = CheckpointTree.leafHash(leaf);
    }

    function _copy(WithdrawManager.ExitProof memory p) internal pure returns (WithdrawManager.ExitProof memory) {
        return abi.decode(abi.encode(p), (WithdrawManager.ExitProof));
    }

    function _refused(WithdrawManager.ExitProof memory p, bytes4 selector) internal {
        vm.expectRevert(selector);
        bridge.exit(p);
    }
}
