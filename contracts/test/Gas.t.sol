// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {Bridge} from "../src/Bridge.sol";
import {BLS} from "../src/lib/BLS.sol";
import {BridgeMessages} from "../src/bridge/BridgeMessages.sol";
import {WithdrawManager} from "../src/bridge/WithdrawManager.sol";
import {CheckpointTree} from "../src/lib/CheckpointTree.sol";
import {RootChain} from "../src/RootChain.sol";
import {StakingToken} from "../src/StakingToken.sol";
import {Merkle, MockRoots, TestToken, Withdrawals} from "./utils/BridgeKit.sol";
import {Test} from "./utils/Test.sol";
import {BlsKeys} from "./utils/BlsKeys.sol";
import {Fixture} from "./utils/Fixture.sol";
import {Units} from "./utils/Units.sol";
import {vm} from "./utils/Vm.sol";

/// The gas benchmark: what a transaction pays for a checkpoint at several set sizes, with
/// every staker signing and with a tenth absent, and for the staking operations. Figures
/// are written to contracts/snapshots/*.json (forge's gas snapshots; the test command
/// checks them, so a change in gas shows up in review).
///
/// A figure is the transaction's gasUsed: the call's execution gas (measured by forge)
/// plus the intrinsic 21,000 and the calldata (4 gas per zero byte, 16 per other byte),
/// or the EIP-7623 calldata floor when that is higher. Everything a submitter prepares
/// (keys, signatures) is made in setUp, a separate transaction, so the measured call finds
/// the contract's storage cold, as a real submission does.
abstract contract CheckpointGas is Fixture {
    uint256 internal n;
    bytes internal allSign;
    bytes internal someAbsent;

    function stakers() internal pure virtual returns (uint256);

    /// The figures' suffix: what differs from a funded reward pool.
    function variant() internal pure virtual returns (string memory) {
        return "";
    }

    function setUp() public {
        n = stakers();
        deploy(n);
        for (uint256 i; i < n; ++i) {
            join(i, 1000 ether + (37 * i % 500) * 1 ether);
        }
        root.activateGenesisSet();
        // a funded pool: the checkpoint pays its signers (an unfunded one skips that)
        if (bytes(variant()).length == 0) fundPool(1_000_000 ether);
        RootChain.Checkpoint memory cp = checkpoint(1, 0, 31);
        bytes memory apk = activeKey();
        (bytes memory sig, bytes memory absent) = signCheckpoint(cp, 1, none());
        allSign = abi.encodeCall(RootChain.submitCheckpoint, (cp, apk, absent, sig));
        // a tenth absent, rounded up, spread evenly
        uint256 k = (n + 9) / 10;
        uint256[] memory slots = new uint256[](k);
        for (uint256 j; j < k; ++j) {
            slots[j] = j * n / k;
        }
        (sig, absent) = signCheckpoint(cp, 1, slots);
        someAbsent = abi.encodeCall(RootChain.submitCheckpoint, (cp, apk, absent, sig));
    }

    function test_gas_allSign() public {
        record(string.concat("submitCheckpoint_", vm.toString(n), "_all_sign", variant()), allSign);
    }

    function test_gas_tenthAbsent() public {
        record(
            string.concat("submitCheckpoint_", vm.toString(n), "_", vm.toString((n + 9) / 10), "_absent", variant()),
            someAbsent
        );
    }

    function record(string memory name, bytes memory data) internal {
        (bool ok,) = address(root).call(data);
        assertTrue(ok, "the submission is accepted");
        uint256 execution = vm.snapshotGasLastCall("checkpoint_execution", name);
        vm.snapshotValue("checkpoint", name, txGas(execution, data));
    }
}

contract CheckpointGas4 is CheckpointGas {
    function stakers() internal pure override returns (uint256) {
        return 4;
    }
}

contract CheckpointGas32 is CheckpointGas {
    function stakers() internal pure override returns (uint256) {
        return 32;
    }
}

contract CheckpointGas128 is CheckpointGas {
    function stakers() internal pure override returns (uint256) {
        return 128;
    }
}

/// 128 stakers with an empty reward pool: what the rewards cost, by difference.
contract CheckpointGas128Unfunded is CheckpointGas {
    function stakers() internal pure override returns (uint256) {
        return 128;
    }

    function variant() internal pure override returns (string memory) {
        return "_unfunded_pool";
    }
}

contract CheckpointGas512 is CheckpointGas {
    function stakers() internal pure override returns (uint256) {
        return 512;
    }
}

/// Staking operations on a set of 16 (stake: the 17th joins).
contract StakingGas is Fixture {
    bytes internal joinData;
    bytes internal activationData;

    function setUp() public {
        deploy(64);
        genesis(16, 100 ether);
        fundPool(1_000_000 ether);
        bytes memory pk = keyOf(16);
        bytes memory pop = popOf(16);
        fund(ownerOf(16), 100 ether);
        joinData = abi.encodeCall(root.stake, (100 ether, signerOf(16), pk, pop));
        fund(ownerOf(0), 100 ether);
    }

    function test_gas_stake() public {
        measureAs(ownerOf(16), joinData, "stake");
    }

    function test_gas_restake() public {
        measureAs(ownerOf(0), abi.encodeCall(root.restake, (50 ether)), "restake");
    }

    function test_gas_unstake() public {
        measureAs(ownerOf(3), abi.encodeCall(root.unstake, ()), "unstake");
    }

    function test_gas_decreaseStake() public {
        measureAs(ownerOf(3), abi.encodeCall(root.decreaseStake, (40 ether)), "decreaseStake");
    }

    /// Withdrawing what a decrease took out, for a staker that stays.
    function test_gas_withdrawUnbonded() public {
        vm.prank(ownerOf(3));
        root.decreaseStake(40 ether);
        submit(checkpoint(1, 0, 31), none());
        vm.warp(block.timestamp + DELAY);
        measureColdAs(ownerOf(3), abi.encodeCall(root.withdraw, ()), "withdraw_unbonded");
    }

    /// A checkpoint that also activates a pending set change, against one that does not.
    function test_gas_checkpointActivatingASetChange() public {
        vm.prank(ownerOf(3));
        root.unstake();
        RootChain.Checkpoint memory cp = checkpoint(1, 0, 31);
        (bytes memory sig, bytes memory absent) = signCheckpoint(cp, 1, none());
        bytes memory data = abi.encodeCall(RootChain.submitCheckpoint, (cp, activeKey(), absent, sig));
        vm.cool(address(root));
        (bool ok,) = address(root).call(data);
        assertTrue(ok, "checkpoint");
        recordLast("submitCheckpoint_16_all_sign_with_set_change", data);
    }

    function test_gas_withdraw() public {
        vm.prank(ownerOf(3));
        root.unstake();
        submit(checkpoint(1, 0, 31), none());
        vm.warp(block.timestamp + DELAY);
        measureColdAs(ownerOf(3), abi.encodeCall(root.withdraw, ()), "withdraw");
    }

    /// Evidence against an active staker of 17 (units citing 16 validators).
    function test_gas_reportEquivocation() public {
        uint256 key = 0xE0;
        joinAs(16, 100 ether, vm.addr(key));
        submit(checkpoint(1, 0, 31), none()); // the equivocator is active
        bytes32 keyBlock = keccak256("key block");
        bytes32 instance = Units.instanceId(CONSENSUS_CHAIN, 3, keyBlock);
        bytes memory a = Units.encode(instance, 15, 9, 1_767_225_600_000, keccak256("a"), 16);
        bytes memory b = Units.encode(instance, 15, 9, 1_767_225_600_000, keccak256("b"), 16);
        bytes memory data =
            abi.encodeCall(RootChain.reportEquivocation, (a, Units.sign(key, a), b, Units.sign(key, b), 3, keyBlock));
        vm.cool(address(root));
        vm.cool(address(token));
        (bool ok,) = address(root).call(data);
        assertTrue(ok, "reportEquivocation");
        recordLast("reportEquivocation_16_validators", data);
    }

    /// Two conflicting checkpoint signatures of an active staker of 17.
    function test_gas_reportDoubleCheckpoint() public {
        join(16, 100 ether);
        submit(checkpoint(1, 0, 31), none()); // set 2, with staker 16, is active
        RootChain.Checkpoint memory a = checkpoint(2, 32, 63);
        RootChain.Checkpoint memory b = checkpoint(2, 32, 63);
        b.root = keccak256("another root");
        bytes memory data = abi.encodeCall(
            RootChain.reportDoubleCheckpoint,
            (
                a,
                2,
                BlsKeys.sign(skOf[16], root.checkpointDigest(a, 2), BLS.SIG_DST),
                b,
                2,
                BlsKeys.sign(skOf[16], root.checkpointDigest(b, 2), BLS.SIG_DST),
                signerOf(16)
            )
        );
        measureColdAs(address(0xBEEF), data, "reportDoubleCheckpoint");
    }

    /// A producer candidate's registration (bond transfer included), with 16 others.
    function test_gas_registerProducer() public {
        for (uint256 i; i < 16; ++i) {
            fund(address(uint160(0x7000 + i)), 1 ether);
            vm.prank(address(uint160(0x7000 + i)));
            root.registerProducer(address(uint160(0x9000 + i)));
        }
        fund(address(0x7777), 1 ether);
        measureColdAs(address(0x7777), abi.encodeCall(root.registerProducer, (address(0x9999))), "registerProducer");
    }

    /// A staker's vote (its first).
    function test_gas_vote() public {
        fund(address(0x7777), 1 ether);
        vm.prank(address(0x7777));
        root.registerProducer(address(0x9999));
        measureColdAs(ownerOf(3), abi.encodeCall(root.vote, (address(0x9999))), "vote");
    }

    /// A staker of 16 claims the rewards of two checkpoints (one of them missed by
    /// another staker, so its key's debit is settled too).
    function test_gas_claimRewards() public {
        submit(checkpoint(1, 0, 31), one(5));
        submit(checkpoint(2, 32, 63), none());
        measureColdAs(ownerOf(3), abi.encodeCall(root.claimRewards, ()), "claimRewards");
    }

    function test_gas_fundRewards() public {
        token.approve(address(root), 100 ether);
        measureColdAs(address(this), abi.encodeCall(root.fundRewards, (100 ether)), "fundRewards");
    }

    /// A double seal of one of 17 candidates (two 600-byte headers).
    function test_gas_reportDoubleSeal() public {
        uint256 key = 0xB10C;
        for (uint256 i; i < 16; ++i) {
            fund(address(uint160(0x7000 + i)), 1 ether);
            vm.prank(address(uint160(0x7000 + i)));
            root.registerProducer(address(uint160(0x9000 + i)));
        }
        fund(address(0x7777), 1 ether);
        vm.prank(address(0x7777));
        root.registerProducer(vm.addr(key));
        bytes memory a = abi.encodePacked(bytes1(0xf9), uint16(597), bytes1(0xa0), keccak256("parent"), new bytes(564));
        bytes memory b = abi.encodePacked(
            bytes1(0xf9), uint16(597), bytes1(0xa0), keccak256("parent"), bytes32("b"), new bytes(532)
        );
        bytes memory data = abi.encodeCall(root.reportDoubleSeal, (a, sealBy(key, a), b, sealBy(key, b)));
        measureColdAs(address(0xBEEF), data, "reportDoubleSeal");
    }

    function sealBy(uint256 key, bytes memory h) internal pure returns (bytes memory) {
        bytes32 digest = keccak256(abi.encodePacked(bytes18("KOMA block seal v1"), uint64(L2_CHAIN_ID), keccak256(h)));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    /// Calls the root contract as `who` with `data`, which must succeed, and records its
    /// gas as `name`.
    function measureAs(address who, bytes memory data, string memory name) internal {
        vm.prank(who);
        (bool ok,) = address(root).call(data);
        assertTrue(ok, name);
        recordLast(name, data);
    }

    /// The same with the root contract and the token cold, as a later transaction finds
    /// them.
    function measureColdAs(address who, bytes memory data, string memory name) internal {
        vm.cool(address(root));
        vm.cool(address(token));
        measureAs(who, data, name);
    }

    function recordLast(string memory name, bytes memory data) internal {
        uint256 execution = vm.snapshotGasLastCall("staking_execution", name);
        vm.snapshotValue("staking", name, txGas(execution, data));
    }
}

/// The gasUsed of a transaction whose call executed `execution` gas with `data` as
/// calldata: intrinsic and calldata cost (EIP-2028), or the EIP-7623 floor if higher.
function txGas(uint256 execution, bytes memory data) pure returns (uint256) {
    uint256 tokens;
    for (uint256 i; i < data.length; ++i) {
        tokens += data[i] == 0 ? 1 : 4;
    }
    uint256 standard = 21_000 + 4 * tokens + execution;
    uint256 floor = 21_000 + 10 * tokens;
    return standard > floor ? standard : floor;
}

/// The bridge: deposits, and exits from a 32-block checkpoint whose block holds 16
/// withdrawals (the proof depths of the devnet's checkpoints), to an account that exists
/// and to a new one. The checkpoint root is read from another contract, as the bridge
/// reads it from the root contract.
contract BridgeGas is Test {
    address internal constant ALICE = address(0xA11CE);

    StakingToken internal kmc;
    TestToken internal usd;
    MockRoots internal roots;
    Bridge internal bridge;
    WithdrawManager.ExitProof[] internal proofs;

    function setUp() public {
        kmc = new StakingToken(address(this), 1e9 ether);
        usd = new TestToken("USD Coin", "USDC", 6);
        roots = new MockRoots();
        bridge = new Bridge(kmc, roots, address(0x1001));
        vm.deal(ALICE, 1000 ether);
        kmc.transfer(ALICE, 1000 ether);
        usd.mint(ALICE, 1e12);
        vm.startPrank(ALICE);
        kmc.approve(address(bridge), type(uint256).max);
        usd.approve(address(bridge), type(uint256).max);
        bridge.depositEtherFor{value: 100 ether}(ALICE);
        bridge.depositERC20For(address(kmc), ALICE, 100 ether);
        bridge.depositERC20For(address(usd), ALICE, 1e9);
        vm.stopPrank();

        BridgeMessages.Withdrawal[] memory ws = new BridgeMessages.Withdrawal[](16);
        for (uint256 i; i < 16; ++i) {
            address token = i % 4 == 2 ? BridgeMessages.KMC : i % 4 == 3 ? address(usd) : BridgeMessages.ETH;
            // recipients 0x7000.. exist (funded below); 0x8000.. are new
            address to = address(uint160((i == 1 ? 0x8000 : 0x7000) + i));
            ws[i] = BridgeMessages.Withdrawal(i, ALICE, to, token, 1 ether / 1e12);
            if (i != 1) vm.deal(to, 1);
        }
        bytes32[] memory wLeaves = Withdrawals.leaves(ws);
        CheckpointTree.BlockLeaf memory leaf = CheckpointTree.BlockLeaf(
            45, 1_700_000_000, keccak256("block"), keccak256("receipts"), Merkle.root(wLeaves)
        );
        bytes32[] memory bLeaves = new bytes32[](32);
        for (uint256 i; i < 32; ++i) {
            bLeaves[i] = keccak256(abi.encode(i));
        }
        bLeaves[13] = CheckpointTree.leafHash(leaf);
        roots.set(2, Merkle.root(bLeaves));
        for (uint256 i; i < 16; ++i) {
            proofs.push(
                WithdrawManager.ExitProof(ws[i], i, Merkle.proof(wLeaves, i), 2, leaf, 13, Merkle.proof(bLeaves, 13))
            );
        }
    }

    function _cool() internal {
        vm.cool(address(bridge));
        vm.cool(address(kmc));
        vm.cool(address(usd));
        vm.cool(address(roots));
    }

    function _exit(uint256 i, string memory name) internal {
        bytes memory data = abi.encodeCall(bridge.exit, (proofs[i]));
        _cool();
        (bool ok,) = address(bridge).call(data);
        assertTrue(ok, name);
        _record(name, data);
    }

    function test_gas_exitEtherToAnExistingAccount() public {
        _exit(0, "exit_eth_existing_account");
    }

    function test_gas_exitEtherToANewAccount() public {
        _exit(1, "exit_eth_new_account");
    }

    function test_gas_exitKmc() public {
        _exit(2, "exit_kmc");
    }

    function test_gas_exitErc20() public {
        _exit(3, "exit_erc20");
    }

    function test_gas_secondExitInABitmapWord() public {
        bridge.exit(proofs[0]);
        _exit(4, "exit_eth_second_in_bitmap_word");
    }

    function test_gas_deposits() public {
        bytes memory data = abi.encodeCall(bridge.depositEtherFor, (ALICE));
        _cool();
        vm.prank(ALICE);
        (bool ok,) = address(bridge).call{value: 1 ether}(data);
        assertTrue(ok, "ether");
        _record("deposit_eth", data);

        data = abi.encodeCall(bridge.depositERC20For, (address(kmc), ALICE, 1 ether));
        _cool();
        vm.prank(ALICE);
        (ok,) = address(bridge).call(data);
        assertTrue(ok, "kmc");
        _record("deposit_kmc", data);

        data = abi.encodeCall(bridge.depositERC20For, (address(usd), ALICE, 1e6));
        _cool();
        vm.prank(ALICE);
        (ok,) = address(bridge).call(data);
        assertTrue(ok, "erc20");
        _record("deposit_erc20", data);

        TestToken fresh = new TestToken("Fresh", "FRSH", 18);
        fresh.mint(ALICE, 1 ether);
        vm.prank(ALICE);
        fresh.approve(address(bridge), 1 ether);
        data = abi.encodeCall(bridge.depositERC20For, (address(fresh), ALICE, 1 ether));
        _cool();
        vm.cool(address(fresh));
        vm.prank(ALICE);
        (ok,) = address(bridge).call(data);
        assertTrue(ok, "first erc20");
        _record("deposit_erc20_first_with_metadata", data);
    }

    function _record(string memory name, bytes memory data) internal {
        uint256 execution = vm.snapshotGasLastCall("bridge_execution", name);
        vm.snapshotValue("bridge", name, txGas(execution, data));
    }
}
