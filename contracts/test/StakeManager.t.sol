// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {BLS} from "../src/lib/BLS.sol";
import {RootChain} from "../src/RootChain.sol";
import {StakeManager} from "../src/StakeManager.sol";
import {BlsKeys} from "./utils/BlsKeys.sol";
import {Fixture} from "./utils/Fixture.sol";
import {vm} from "./utils/Vm.sol";

/// Staking: joining with a proven BLS key, topping up, leaving, withdrawing, and how set
/// changes wait for the next checkpoint.
contract StakeManagerTest is Fixture {
    function setUp() public {
        deploy(8);
    }

    // ---- joining ----

    function test_join_recordsStakerAndPendingSet() public {
        join(0, 5 ether);
        (address signer, address keyContract, uint96 amount, uint32 slot, uint32 exitSetId,,,) =
            root.stakers(ownerOf(0));
        assertEq(signer, signerOf(0), "signer");
        assertEq(uint256(amount), 5 ether, "amount");
        assertEq(slot, 1, "slot 0 (stored + 1)");
        assertEq(exitSetId, 0, "not leaving");
        assertEq(root.keyOwner(keyContract), ownerOf(0), "key owner");
        assertEq(root.signerOwner(signerOf(0)), ownerOf(0), "signer owner");
        assertEq(token.balanceOf(address(root)), 5 ether, "tokens locked");
        assertEq(uint256(root.pendingTotalWeight()), 5 ether / 1 gwei, "pending weight");
        assertEq(root.pendingAggregateKey(), keyOf(0), "pending key is the only key");
        (uint256 pendingId, address[] memory signers, bytes[] memory keys, uint256[] memory weights) = root.pendingSet();
        assertEq(pendingId, 1, "pending set id");
        assertEq(signers[0], signerOf(0), "pending signer");
        assertEq(keys[0], keyOf(0), "pending key (read back from its key contract)");
        assertEq(weights[0], 5 ether / 1 gwei, "pending weight of slot 0");
        // nothing active yet
        (uint256 activeId,,,) = root.activeSet();
        assertEq(activeId, 0, "no active set");
    }

    function test_join_refusesInvalidProofOfPossession() public {
        bytes memory pk = keyOf(0);
        bytes memory pop = popOf(1); // another key's proof
        fund(ownerOf(0), 5 ether);
        vm.prank(ownerOf(0));
        vm.expectRevert(StakeManager.InvalidProofOfPossession.selector);
        root.stake(5 ether, signerOf(0), pk, pop);
    }

    function test_join_refusesProofMadeForAnotherOwner() public {
        // a key and proof copied from someone else's registration
        bytes memory pk = keyOf(0);
        bytes memory pop = popOf(0); // bound to ownerOf(0)
        fund(ownerOf(5), 5 ether);
        vm.prank(ownerOf(5));
        vm.expectRevert(StakeManager.InvalidProofOfPossession.selector);
        root.stake(5 ether, signerOf(0), pk, pop);
    }

    function test_join_refusesZeroProofAndZeroKey() public {
        bytes memory pk = keyOf(0);
        bytes memory pop = popOf(0);
        fund(ownerOf(0), 5 ether);
        vm.prank(ownerOf(0));
        vm.expectRevert(StakeManager.InvalidProofOfPossession.selector);
        root.stake(5 ether, signerOf(0), pk, new bytes(128));
        vm.prank(ownerOf(0));
        vm.expectRevert(StakeManager.ZeroKey.selector);
        root.stake(5 ether, signerOf(0), new bytes(256), pop);
    }

    function test_join_refusesKeyNotInSubgroupOrMalformed() public {
        bytes memory pk = keyOf(0);
        pk[255] = bytes1(uint8(pk[255]) ^ 1); // off the curve
        bytes memory pop = popOf(0);
        fund(ownerOf(0), 5 ether);
        vm.prank(ownerOf(0));
        vm.expectRevert(BLS.MalformedPoint.selector);
        root.stake(5 ether, signerOf(0), pk, pop);
        vm.prank(ownerOf(0));
        vm.expectRevert(abi.encodeWithSelector(BLS.BadPointLength.selector, 255, 256));
        root.stake(5 ether, signerOf(0), new bytes(255), pop);
    }

    function test_join_refusesDuplicates() public {
        join(0, 5 ether);
        // the same owner again
        bytes memory pk1 = keyOf(1);
        bytes memory pop1 = popOf(1);
        vm.prank(ownerOf(0));
        vm.expectRevert(abi.encodeWithSelector(StakeManager.AlreadyStaker.selector, ownerOf(0)));
        root.stake(5 ether, signerOf(1), pk1, pop1);
        // another owner with staker 0's signer
        bytes memory pop = BlsKeys.sign(skOf[1], root.popMessage(ownerOf(1), signerOf(0), pk1), BLS.POP_DST);
        fund(ownerOf(1), 5 ether);
        vm.prank(ownerOf(1));
        vm.expectRevert(abi.encodeWithSelector(StakeManager.SignerTaken.selector, signerOf(0)));
        root.stake(5 ether, signerOf(0), pk1, pop);
        // another owner with staker 0's BLS key (and a valid proof: it knows the secret)
        bytes memory pk0 = keyOf(0);
        pop = BlsKeys.sign(skOf[0], root.popMessage(ownerOf(1), signerOf(1), pk0), BLS.POP_DST);
        (, address keyContract,,,,,,) = root.stakers(ownerOf(0));
        vm.prank(ownerOf(1));
        vm.expectRevert(abi.encodeWithSelector(StakeManager.KeyTaken.selector, keyContract));
        root.stake(5 ether, signerOf(1), pk0, pop);
    }

    function test_join_refusesBelowMinimumAndZeroSigner() public {
        bytes memory pk = keyOf(0);
        bytes memory pop = popOf(0);
        fund(ownerOf(0), 5 ether);
        vm.prank(ownerOf(0));
        vm.expectRevert(abi.encodeWithSelector(StakeManager.StakeTooLow.selector, MIN_STAKE - 1, MIN_STAKE));
        root.stake(MIN_STAKE - 1, signerOf(0), pk, pop);
        vm.prank(ownerOf(0));
        vm.expectRevert(StakeManager.ZeroSigner.selector);
        root.stake(5 ether, address(0), pk, pop);
    }

    function test_join_refusesBeyondMaximumSetSize() public {
        for (uint256 i; i < 8; ++i) {
            join(i, 1 ether);
        }
        bytes memory pk = keyOf(8);
        bytes memory pop = popOf(8);
        fund(ownerOf(8), 1 ether);
        vm.prank(ownerOf(8));
        vm.expectRevert(abi.encodeWithSelector(StakeManager.SetFull.selector, 8));
        root.stake(1 ether, signerOf(8), pk, pop);
    }

    function test_join_refusesWithoutAllowance() public {
        bytes memory pk = keyOf(0);
        bytes memory pop = popOf(0);
        token.transfer(ownerOf(0), 5 ether); // funded, not approved
        vm.prank(ownerOf(0));
        vm.expectRevert();
        root.stake(5 ether, signerOf(0), pk, pop);
        assertEq(token.balanceOf(address(root)), 0, "nothing locked");
        (, address keyContract,,,,,,) = root.stakers(ownerOf(0));
        assertEq(keyContract, address(0), "nothing recorded");
    }

    // ---- set activation ----

    function test_genesisActivation_onlyWhileTheActiveSetIsEmpty() public {
        vm.expectRevert(StakeManager.NothingPending.selector);
        root.activateGenesisSet();
        genesis(4, 10 ether);
        (uint256 id,,,, bool pending) = root.head();
        assertEq(id, 1, "set 1 active");
        assertTrue(!pending, "nothing pending");
        join(4, 10 ether);
        vm.expectRevert(StakeManager.SetNotEmpty.selector);
        root.activateGenesisSet();
    }

    function test_changesTakeEffectWithTheNextCheckpoint() public {
        genesis(4, 10 ether);
        join(4, 10 ether); // pending: 5 stakers
        (uint256 id, uint256 total,,, bool pending) = root.head();
        assertEq(id, 1, "still set 1");
        assertEq(total, 40 ether / 1 gwei, "active weight unchanged");
        assertTrue(pending, "a change is pending");
        // the checkpoint is signed by set 1 (the newcomer does not sign)
        submit(checkpoint(1, 0, 31), none());
        (id, total,,, pending) = root.head();
        assertEq(id, 2, "set 2 active");
        assertEq(total, 50 ether / 1 gwei, "newcomer counted");
        assertTrue(!pending, "nothing pending");
        assertEq(root.setCommit(), root.pendingCommit(), "active commitment is the former pending one");
        // the next checkpoint needs set 2's signatures, including the newcomer's
        submit(checkpoint(2, 32, 63), none());
        assertEq(root.checkpointRoot(2), checkpoint(2, 32, 63).root, "set 2 signs");
    }

    function test_oldSetCannotSignAfterActivation() public {
        genesis(4, 10 ether);
        join(4, 10 ether);
        submit(checkpoint(1, 0, 31), none()); // activates set 2
        RootChain.Checkpoint memory cp = checkpoint(2, 32, 63);
        // the four old stakers sign under set id 1: refused
        bytes32 digest = root.checkpointDigest(cp, 1);
        bytes[] memory sigs = new bytes[](4);
        for (uint256 i; i < 4; ++i) {
            sigs[i] = BlsKeys.sign(skOf[i], digest, BLS.SIG_DST);
        }
        bytes memory apk = activeKey();
        bytes memory sig = BlsKeys.aggregateSignatures(sigs);
        vm.expectRevert(RootChain.InvalidSignature.selector);
        root.submitCheckpoint(cp, apk, hex"0004", sig);
    }

    // ---- restaking ----

    function test_restake_raisesWeightForTheNextSet() public {
        genesis(4, 10 ether);
        fund(ownerOf(0), 30 ether);
        vm.prank(ownerOf(0));
        root.restake(30 ether);
        (,, uint96 amount,,,,,) = root.stakers(ownerOf(0));
        assertEq(uint256(amount), 40 ether, "amount");
        (, uint256 total,,,) = root.head();
        assertEq(total, 40 ether / 1 gwei, "active weight unchanged until the checkpoint");
        submit(checkpoint(1, 0, 31), none());
        (, total,,,) = root.head();
        assertEq(total, 70 ether / 1 gwei, "new weight active");
        // staker 0 now holds 40 of 70: with it absent, 30/70 is not enough
        RootChain.Checkpoint memory cp = checkpoint(2, 32, 63);
        (bytes memory sig, bytes memory absent) = signCheckpoint(cp, 2, one(0));
        bytes memory apk = activeKey();
        vm.expectRevert(
            abi.encodeWithSelector(RootChain.InsufficientStake.selector, 30 ether / 1 gwei, 70 ether / 1 gwei)
        );
        root.submitCheckpoint(cp, apk, absent, sig);
    }

    function test_restake_refusesNonStakerAndZero() public {
        vm.prank(ownerOf(0));
        vm.expectRevert(abi.encodeWithSelector(StakeManager.NotStaker.selector, ownerOf(0)));
        root.restake(1 ether);
        join(0, 5 ether);
        vm.prank(ownerOf(0));
        vm.expectRevert(StakeManager.ZeroAmount.selector);
        root.restake(0);
    }

    // ---- decreasing ----

    function test_decrease_lowersWeightForTheNextSetAndPaysOutAfterTheDelay() public {
        genesis(4, 10 ether);
        vm.prank(ownerOf(0));
        root.decreaseStake(4 ether);
        (,, uint96 amount, uint32 slot,, uint64 withdrawableAt, uint96 unbonding, uint32 unbondSetId) =
            root.stakers(ownerOf(0));
        assertEq(uint256(amount), 6 ether, "stake left");
        assertEq(slot, 1, "still in the set");
        assertEq(uint256(unbonding), 4 ether, "unbonding");
        assertEq(unbondSetId, 2, "holds from set 2");
        assertEq(withdrawableAt, block.timestamp + DELAY, "delay");
        assertEq(uint256(root.pendingTotalWeight()), 36 ether / 1 gwei, "pending weight");
        (, uint256 total,,,) = root.head();
        assertEq(total, 40 ether / 1 gwei, "active weight unchanged until the checkpoint");
        // the old weight still signs: no withdrawal before the set without it is active
        vm.prank(ownerOf(0));
        vm.expectRevert(abi.encodeWithSelector(StakeManager.UnbondingNotActive.selector, 2, 1));
        root.withdraw();
        submit(checkpoint(1, 0, 31), none());
        (, total,,,) = root.head();
        assertEq(total, 36 ether / 1 gwei, "new weight active");
        vm.prank(ownerOf(0));
        vm.expectRevert(abi.encodeWithSelector(StakeManager.WithdrawalDelayNotOver.selector, withdrawableAt));
        root.withdraw();
        vm.warp(withdrawableAt);
        uint256 before = token.balanceOf(ownerOf(0));
        vm.prank(ownerOf(0));
        root.withdraw();
        assertEq(token.balanceOf(ownerOf(0)) - before, 4 ether, "the unbonded part paid out");
        (,, amount, slot,,, unbonding,) = root.stakers(ownerOf(0));
        assertEq(uint256(amount), 6 ether, "the rest stays staked");
        assertEq(slot, 1, "and in the set");
        assertEq(uint256(unbonding), 0, "nothing left unbonding");
        vm.prank(ownerOf(0));
        vm.expectRevert(abi.encodeWithSelector(StakeManager.NotLeaving.selector, ownerOf(0)));
        root.withdraw(); // once
        submit(checkpoint(2, 32, 63), none());
    }

    function test_decrease_refusesBelowMinimumNonStakerZeroAndLeaver() public {
        join(0, 5 ether); // minimum 1 ether
        vm.startPrank(ownerOf(0));
        vm.expectRevert(abi.encodeWithSelector(StakeManager.StakeTooLow.selector, 0.5 ether, 1 ether));
        root.decreaseStake(4.5 ether);
        vm.expectRevert(abi.encodeWithSelector(StakeManager.StakeTooLow.selector, 0, 1 ether));
        root.decreaseStake(6 ether); // more than staked
        vm.expectRevert(StakeManager.ZeroAmount.selector);
        root.decreaseStake(0);
        root.decreaseStake(4 ether); // exactly the minimum stays
        root.unstake();
        vm.expectRevert(abi.encodeWithSelector(StakeManager.NotStaker.selector, ownerOf(0)));
        root.decreaseStake(1 ether); // left already
        vm.stopPrank();
        vm.prank(ownerOf(1));
        vm.expectRevert(abi.encodeWithSelector(StakeManager.NotStaker.selector, ownerOf(1)));
        root.decreaseStake(1 ether);
    }

    function test_decreaseThenLeave_paysBothAtTheExit() public {
        genesis(4, 10 ether);
        vm.prank(ownerOf(2));
        root.decreaseStake(3 ether);
        vm.warp(block.timestamp + 100);
        vm.prank(ownerOf(2));
        root.unstake();
        submit(checkpoint(1, 0, 31), none());
        (,,,,, uint64 withdrawableAt,,) = root.stakers(ownerOf(2));
        vm.warp(withdrawableAt);
        uint256 before = token.balanceOf(ownerOf(2));
        vm.prank(ownerOf(2));
        root.withdraw();
        assertEq(token.balanceOf(ownerOf(2)) - before, 10 ether, "stake and unbonding, once");
        (, address keyContract,,,,,,) = root.stakers(ownerOf(2));
        assertEq(keyContract, address(0), "record gone");
    }

    function test_secondDecrease_addsAndRestartsTheWait() public {
        genesis(4, 10 ether);
        vm.prank(ownerOf(1));
        root.decreaseStake(2 ether);
        submit(checkpoint(1, 0, 31), none());
        vm.warp(block.timestamp + DELAY / 2);
        vm.prank(ownerOf(1));
        root.decreaseStake(3 ether);
        (,,,,, uint64 withdrawableAt, uint96 unbonding, uint32 unbondSetId) = root.stakers(ownerOf(1));
        assertEq(uint256(unbonding), 5 ether, "both decreases");
        assertEq(unbondSetId, 3, "from the set after the second");
        assertEq(withdrawableAt, block.timestamp + DELAY, "the wait restarts");
        submit(checkpoint(2, 32, 63), none());
        vm.warp(withdrawableAt);
        uint256 before = token.balanceOf(ownerOf(1));
        vm.prank(ownerOf(1));
        root.withdraw();
        assertEq(token.balanceOf(ownerOf(1)) - before, 5 ether, "paid out");
    }

    // ---- leaving ----

    function test_unstakeThenWithdraw_afterActivationAndDelay() public {
        genesis(4, 10 ether);
        vm.prank(ownerOf(1));
        root.unstake();
        (,,, uint32 slot, uint32 exitSetId, uint64 withdrawableAt,,) = root.stakers(ownerOf(1));
        assertEq(slot, 0, "out of the pending set");
        assertEq(exitSetId, 2, "exit holds from set 2");
        assertEq(withdrawableAt, block.timestamp + DELAY, "delay");
        // still in the active set: it must keep signing until the checkpoint removes it
        vm.prank(ownerOf(1));
        vm.expectRevert(abi.encodeWithSelector(StakeManager.ExitNotActive.selector, 2, 1));
        root.withdraw();
        submit(checkpoint(1, 0, 31), none()); // set 2: without staker 1
        vm.prank(ownerOf(1));
        vm.expectRevert(abi.encodeWithSelector(StakeManager.WithdrawalDelayNotOver.selector, withdrawableAt));
        root.withdraw();
        vm.warp(withdrawableAt);
        uint256 before = token.balanceOf(ownerOf(1));
        vm.prank(ownerOf(1));
        root.withdraw();
        assertEq(token.balanceOf(ownerOf(1)) - before, 10 ether, "paid out");
        vm.prank(ownerOf(1));
        vm.expectRevert(abi.encodeWithSelector(StakeManager.NotLeaving.selector, ownerOf(1)));
        root.withdraw(); // once
        // set 2 (3 stakers) signs the next checkpoint without it
        submit(checkpoint(2, 32, 63), none());
    }

    function test_unstake_refusesTwiceAndNonStaker() public {
        join(0, 5 ether);
        vm.prank(ownerOf(0));
        root.unstake();
        vm.prank(ownerOf(0));
        vm.expectRevert(abi.encodeWithSelector(StakeManager.AlreadyLeaving.selector, ownerOf(0)));
        root.unstake();
        vm.prank(ownerOf(1));
        vm.expectRevert(abi.encodeWithSelector(StakeManager.NotStaker.selector, ownerOf(1)));
        root.unstake();
    }

    function test_leaverSlotIsReusedWithoutDisturbingTheActiveSet() public {
        genesis(4, 10 ether);
        vm.prank(ownerOf(2));
        root.unstake();
        join(4, 20 ether); // takes slot 2 in the pending set
        (,,, uint32 slot,,,,) = root.stakers(ownerOf(4));
        assertEq(slot, 3, "slot 2 reused");
        // the active set still has staker 2 in slot 2: a checkpoint without it is signed
        // by the other three and names slot 2 absent
        (, address[] memory activeSigners,,) = root.activeSet();
        assertEq(activeSigners[2], signerOf(2), "active slot 2 unchanged");
        submit(checkpoint(1, 0, 31), one(2));
        (, address[] memory signers,, uint256[] memory weights) = root.activeSet();
        assertEq(signers[2], signerOf(4), "slot 2 now the newcomer");
        assertEq(weights[2], 20 ether / 1 gwei, "its weight");
        submit(checkpoint(2, 32, 63), none());
    }

    function test_rejoinAfterWithdrawalWithTheSameKey() public {
        genesis(4, 10 ether);
        vm.prank(ownerOf(3));
        root.unstake();
        submit(checkpoint(1, 0, 31), none());
        vm.warp(block.timestamp + DELAY);
        vm.prank(ownerOf(3));
        root.withdraw();
        join(3, 10 ether); // the same owner, signer and key: the key contract is reused
        submit(checkpoint(2, 32, 63), none());
        (uint256 id, uint256 total,,,) = root.head();
        assertEq(id, 3, "set 3");
        assertEq(total, 40 ether / 1 gwei, "back to four");
    }

    function test_everyoneLeaves_genesisActivationRestarts() public {
        genesis(2, 10 ether);
        vm.prank(ownerOf(0));
        root.unstake();
        vm.prank(ownerOf(1));
        root.unstake();
        submit(checkpoint(1, 0, 31), none()); // set 2 is empty
        (, uint256 total,,,) = root.head();
        assertEq(total, 0, "empty set");
        join(5, 10 ether);
        root.activateGenesisSet();
        submit(checkpoint(2, 32, 63), none());
    }

    // ---- fuzz ----

    /// Any sequence of joins and top-ups keeps the pending weight and aggregate key equal to
    /// the sums over the pending members.
    function testFuzz_pendingTotalsFollowTheMembers(uint64[6] memory amounts, uint8 topUps) public {
        bytes[] memory keys = new bytes[](6);
        uint256 total;
        for (uint256 i; i < 6; ++i) {
            uint256 amount = bound(amounts[i], MIN_STAKE, 1e6 ether);
            join(i, amount);
            keys[i] = keyOf(i);
            total += amount / 1 gwei;
            if (topUps & (1 << i) != 0) {
                fund(ownerOf(i), 3 ether);
                vm.prank(ownerOf(i));
                root.restake(3 ether);
                total = total - amount / 1 gwei + (amount + 3 ether) / 1 gwei;
            }
        }
        assertEq(uint256(root.pendingTotalWeight()), total, "pending weight");
        assertEq(root.pendingAggregateKey(), BlsKeys.aggregateKeys(keys), "pending aggregate key");
    }
}
