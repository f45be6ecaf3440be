// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {BLS} from "../src/lib/BLS.sol";
import {RootChain} from "../src/RootChain.sol";
import {StakeManager} from "../src/StakeManager.sol";
import {StakeRewards} from "../src/StakeRewards.sol";
import {StakingToken} from "../src/StakingToken.sol";
import {BlsKeys} from "./utils/BlsKeys.sol";
import {Fixture} from "./utils/Fixture.sol";
import {vm} from "./utils/Vm.sol";

/// Checkpoint rewards: each accepted checkpoint pays REWARD from the pool to its signers
/// in proportion to their weight; absent stakers earn nothing for it.
contract RewardsTest is Fixture {
    uint256 internal constant P = 1e18; // REWARD_PRECISION
    uint256 internal next = 1; // the next checkpoint number

    function setUp() public {
        deploy(16);
        // weights 1, 2, 3, 4 (in ether): shares of tenths
        for (uint256 i; i < 4; ++i) {
            join(i, (i + 1) * 1 ether);
        }
        root.activateGenesisSet();
        fundPool(1000 ether);
    }

    /// Submits the next checkpoint (8 blocks) signed by all but `absentSlots`.
    function nextCheckpoint(uint256[] memory absentSlots) internal {
        submit(checkpoint(next, (next - 1) * 8, next * 8 - 1), absentSlots);
        ++next;
    }

    function rewardOf(uint256 i) internal view returns (uint256) {
        return root.rewardsOf(ownerOf(i));
    }

    /// What a staker of weight `w` earns from one checkpoint signed by weight `signed`
    /// when the pool pays `reward` (the contract's arithmetic, before the final floor).
    function share(uint256 reward, uint256 w, uint256 signed) internal pure returns (uint256) {
        return w * (reward * P / signed);
    }

    function test_signersShareTheRewardInProportionToStake() public {
        nextCheckpoint(none());
        uint256 total;
        for (uint256 i; i < 4; ++i) {
            uint256 w = (i + 1) * 1e9;
            assertEq(rewardOf(i), share(REWARD, w, 10e9) / P, "proportional share");
            total += rewardOf(i);
        }
        assertEq(total, REWARD, "the whole reward, shared");
        assertEq(root.rewardPool(), 1000 ether - REWARD, "the pool paid it");
    }

    function test_absentStakersEarnNothing() public {
        nextCheckpoint(one(1)); // weight 2 absent: 8 signed
        assertEq(rewardOf(1), 0, "absent: nothing");
        assertEq(rewardOf(0), share(REWARD, 1e9, 8e9) / P, "signer 0");
        assertEq(rewardOf(3), share(REWARD, 4e9, 8e9) / P, "signer 3");
        assertEq(rewardOf(0) + rewardOf(2) + rewardOf(3), REWARD, "the signers share all of it");
        nextCheckpoint(none());
        assertEq(rewardOf(1), share(REWARD, 2e9, 10e9) / P, "earns for the one it signed");
    }

    function test_claimPaysOnceAndKeepsEarning() public {
        nextCheckpoint(none());
        uint256 earned = rewardOf(3);
        uint256 before = token.balanceOf(ownerOf(3));
        vm.expectEmit(address(root));
        emit StakeRewards.RewardsClaimed(ownerOf(3), earned);
        vm.prank(ownerOf(3));
        root.claimRewards();
        assertEq(token.balanceOf(ownerOf(3)) - before, earned, "paid");
        assertEq(rewardOf(3), 0, "nothing left");
        vm.prank(ownerOf(3));
        vm.expectRevert(StakeRewards.NoRewards.selector);
        root.claimRewards();
        nextCheckpoint(none());
        assertEq(rewardOf(3), share(REWARD, 4e9, 10e9) / P, "earns again");
    }

    function test_claimByNonStakerRefused() public {
        vm.prank(address(0xCAFE));
        vm.expectRevert(abi.encodeWithSelector(StakeManager.NotStaker.selector, address(0xCAFE)));
        root.claimRewards();
    }

    function test_emptyPoolPaysNothingAndAPartialPoolItsRest() public {
        deploy(16);
        genesis(2, 1 ether);
        nextCheckpointFrom(1);
        assertEq(rewardOf(0), 0, "unfunded: no reward");
        assertEq(root.rewardPool(), 0, "pool");
        fundPool(REWARD / 2);
        nextCheckpointFrom(2);
        assertEq(rewardOf(0) + rewardOf(1), REWARD / 2, "what was left");
        assertEq(root.rewardPool(), 0, "emptied");
    }

    function nextCheckpointFrom(uint256 number) internal {
        submit(checkpoint(number, (number - 1) * 8, number * 8 - 1), none());
    }

    function test_fundingNeedsAnAmount() public {
        vm.expectRevert(StakeManager.ZeroAmount.selector);
        root.fundRewards(0);
        uint256 pool = root.rewardPool();
        token.approve(address(root), 5 ether);
        vm.expectEmit(address(root));
        emit StakeRewards.RewardsFunded(address(this), 5 ether);
        root.fundRewards(5 ether);
        assertEq(root.rewardPool(), pool + 5 ether, "pool grew");
    }

    function test_noRewardsWhenDisabled() public {
        token = new StakingToken(address(this), SUPPLY);
        root = new RootChain(token, L2_CHAIN_ID, CONSENSUS_CHAIN, MAX_RANGE, 0, MIN_STAKE, 16, DELAY, 0);
        genesis(2, 1 ether);
        fundPool(10 ether);
        nextCheckpointFrom(1);
        assertEq(rewardOf(0), 0, "no reward");
        assertEq(root.rewardPool(), 10 ether, "pool untouched");
    }

    /// A joiner earns from the first checkpoint its set signs; the checkpoint that
    /// activates its set is the old set's.
    function test_joinerEarnsFromItsFirstSet() public {
        join(4, 5 ether);
        nextCheckpoint(none()); // signed by set 1, activates set 2
        assertEq(rewardOf(4), 0, "not yet a signer");
        nextCheckpoint(none());
        assertEq(rewardOf(4), share(REWARD, 5e9, 15e9) / P, "its share in set 2");
        assertEq(rewardOf(0), (share(REWARD, 1e9, 10e9) + share(REWARD, 1e9, 15e9)) / P, "old staker");
    }

    /// A top-up counts from the set that activates it; earlier checkpoints pay the old weight.
    function test_restakeCountsFromTheNextSet() public {
        fund(ownerOf(0), 3 ether);
        vm.prank(ownerOf(0));
        root.restake(3 ether);
        nextCheckpoint(none()); // weight 1 of 10
        assertEq(rewardOf(0), share(REWARD, 1e9, 10e9) / P, "old weight");
        nextCheckpoint(none()); // weight 4 of 13
        assertEq(rewardOf(0), (share(REWARD, 1e9, 10e9) + share(REWARD, 4e9, 13e9)) / P, "new weight");
        // a decrease after that, and an absence in between
        vm.prank(ownerOf(0));
        root.decreaseStake(2 ether);
        nextCheckpoint(one(0)); // absent, weight 4 of 13
        nextCheckpoint(none()); // weight 2 of 11
        assertEq(
            rewardOf(0),
            (share(REWARD, 1e9, 10e9) + share(REWARD, 4e9, 13e9) + share(REWARD, 2e9, 11e9)) / P,
            "absent once, then the decreased weight"
        );
    }

    /// A leaver earns until its exit is active, and its withdrawal pays stake and rewards.
    function test_leaverIsPaidWithItsStake() public {
        vm.prank(ownerOf(2));
        root.unstake();
        nextCheckpoint(none()); // set 1 signs (with it), activates set 2 (without)
        nextCheckpoint(none());
        uint256 earned = share(REWARD, 3e9, 10e9) / P;
        assertEq(rewardOf(2), earned, "the checkpoint it signed");
        vm.warp(block.timestamp + DELAY);
        uint256 before = token.balanceOf(ownerOf(2));
        vm.prank(ownerOf(2));
        root.withdraw();
        assertEq(token.balanceOf(ownerOf(2)) - before, 3 ether + earned, "stake and rewards");
        assertEq(rewardOf(2), 0, "account closed");
        // staking again (the key contract is reused) starts from nothing
        join(2, 3 ether);
        nextCheckpoint(none());
        assertEq(rewardOf(2), 0, "not active yet");
        nextCheckpoint(one(0));
        assertEq(rewardOf(2), share(REWARD, 3e9, 9e9) / P, "a new account");
    }

    /// A slashed staker's rewards are forfeit: no claim, and they return to the pool.
    function test_slashedStakerForfeitsItsRewards() public {
        nextCheckpoint(none());
        uint256 earned = rewardOf(1);
        assertTrue(earned != 0, "earned something");
        RootChain.Checkpoint memory a = checkpoint(7, 0, 7);
        RootChain.Checkpoint memory b = checkpoint(7, 0, 8);
        vm.prank(address(0xBEEF));
        root.reportDoubleCheckpoint(
            a,
            1,
            BlsKeys.sign(skOf[1], root.checkpointDigest(a, 1), BLS.SIG_DST),
            b,
            1,
            BlsKeys.sign(skOf[1], root.checkpointDigest(b, 1), BLS.SIG_DST),
            signerOf(1)
        );
        vm.prank(ownerOf(1));
        vm.expectRevert(abi.encodeWithSelector(StakeRewards.RewardsForfeit.selector, ownerOf(1)));
        root.claimRewards();
        nextCheckpoint(none()); // still in the active set: it signs, and earns for the pool
        earned = rewardOf(1);
        nextCheckpoint(none());
        vm.warp(block.timestamp + DELAY);
        uint256 pool = root.rewardPool();
        uint256 before = token.balanceOf(ownerOf(1));
        vm.prank(ownerOf(1));
        root.withdraw();
        assertEq(token.balanceOf(ownerOf(1)) - before, 1 ether, "what is left of the stake, no rewards");
        assertEq(root.rewardPool(), pool + earned, "the rewards went back to the pool");
    }

    /// A forfeit that no longer fits the pool (its 96 bits are full) is held like slashed
    /// tokens: the withdrawal never reverts.
    function test_forfeitThatOverflowsThePoolIsHeld() public {
        token = new StakingToken(address(this), 1 << 100);
        root = new RootChain(token, L2_CHAIN_ID, CONSENSUS_CHAIN, MAX_RANGE, 0, MIN_STAKE, 16, DELAY, REWARD);
        genesis(4, 1 ether);
        fundPool(10 ether);
        submit(checkpoint(1, 0, 7), none());
        uint256 earned = rewardOf(1);
        assertEq(earned, REWARD / 4, "a quarter");
        fundPool(type(uint96).max - root.rewardPool()); // full
        assertEq(root.rewardPool(), type(uint96).max, "full");
        vm.expectRevert(abi.encodeWithSelector(StakeRewards.PoolFull.selector, type(uint96).max, 1));
        root.fundRewards(1);
        RootChain.Checkpoint memory a = checkpoint(9, 0, 7);
        RootChain.Checkpoint memory b = checkpoint(9, 0, 8);
        root.reportDoubleCheckpoint(
            a,
            1,
            BlsKeys.sign(skOf[1], root.checkpointDigest(a, 1), BLS.SIG_DST),
            b,
            1,
            BlsKeys.sign(skOf[1], root.checkpointDigest(b, 1), BLS.SIG_DST),
            signerOf(1)
        );
        uint256 held = root.slashedHeld();
        submit(checkpoint(2, 8, 15), none()); // it signs once more, then its exit is active
        earned = rewardOf(1);
        assertEq(earned, REWARD / 2, "two quarters");
        fundPool(type(uint96).max - root.rewardPool() - REWARD / 4); // room for half of it
        vm.warp(block.timestamp + DELAY);
        vm.prank(ownerOf(1));
        root.withdraw();
        assertEq(root.rewardPool(), type(uint96).max, "the pool took what fits");
        assertEq(root.slashedHeld() - held, REWARD / 4, "the rest is held");
    }

    /// Random weights, absences and top-ups over several checkpoints: every staker has
    /// exactly the sum of its shares of the checkpoints it signed, nothing for the others,
    /// and the pool paid what the shares add up to (rounded up per checkpoint).
    function testFuzz_rewardsAreTheSignedShares(uint256 seed) public {
        deploy(16);
        uint256 n = 2 + seed % 7;
        uint256[] memory active = new uint256[](n); // weights in the active set, in ether
        uint256[] memory pending = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            active[i] = 1 + uint256(keccak256(abi.encode(seed, i))) % 1000;
            pending[i] = active[i];
            join(i, active[i] * 1 ether);
        }
        root.activateGenesisSet();
        fundPool(100 ether);
        uint256[] memory expected = new uint256[](n); // scaled by P
        uint256 paid;
        bool changed;
        for (uint256 c = 1; c <= 6; ++c) {
            uint256 r = uint256(keccak256(abi.encode(seed, c)));
            // a random absent set that leaves more than 2/3 of the weight
            uint256 total;
            for (uint256 i; i < n; ++i) {
                total += active[i];
            }
            uint256[] memory absentSlots = new uint256[](n);
            uint256 k;
            uint256 signed = total;
            for (uint256 i; i < n; ++i) {
                if ((r >> i) & 1 == 1 && 3 * (signed - active[i]) > 2 * total) {
                    absentSlots[k++] = i;
                    signed -= active[i];
                }
            }
            assembly ("memory-safe") {
                mstore(absentSlots, k)
            }
            submit(checkpoint(c, (c - 1) * 8, c * 8 - 1), absentSlots);
            uint256 perWeight = REWARD * P / (signed * 1e9);
            paid += (perWeight * signed * 1e9 + P - 1) / P;
            for (uint256 i; i < n; ++i) {
                if (!contains(absentSlots, i)) expected[i] += active[i] * 1e9 * perWeight;
            }
            // the checkpoint activated what was pending
            if (changed) {
                for (uint256 i; i < n; ++i) {
                    active[i] = pending[i];
                }
                changed = false;
            }
            // a random top-up, in the pending set until the next checkpoint activates it
            if ((r >> 200) & 1 == 1) {
                uint256 j = (r >> 201) % n;
                uint256 extra = 1 + (r >> 210) % 100;
                fund(ownerOf(j), extra * 1 ether);
                vm.prank(ownerOf(j));
                root.restake(extra * 1 ether);
                pending[j] += extra;
                changed = true;
            }
        }
        uint256 sum;
        for (uint256 i; i < n; ++i) {
            assertEq(rewardOf(i), expected[i] / P, "the sum of its signed shares");
            sum += rewardOf(i);
        }
        assertTrue(sum <= paid, "never more than the pool paid");
        assertTrue(paid - sum <= 6 + n, "no more than rounding lost");
        assertEq(root.rewardPool(), 100 ether - paid, "pool");
    }

    function contains(uint256[] memory list, uint256 x) internal pure returns (bool) {
        for (uint256 i; i < list.length; ++i) {
            if (list[i] == x) return true;
        }
        return false;
    }
}
