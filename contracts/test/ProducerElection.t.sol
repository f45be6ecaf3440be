// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {BLS} from "../src/lib/BLS.sol";
import {ProducerElection} from "../src/ProducerElection.sol";
import {RootChain} from "../src/RootChain.sol";
import {StakeManager} from "../src/StakeManager.sol";
import {BlsKeys} from "./utils/BlsKeys.sol";
import {Fixture} from "./utils/Fixture.sol";
import {vm} from "./utils/Vm.sol";

/// Producer candidates: the bond, votes weighed by the active set, the ranking, leaving
/// and withdrawing the bond.
contract ProducerElectionTest is Fixture {
    function setUp() public {
        deploy(8);
    }

    function producer(uint256 i) internal pure returns (address) {
        return address(uint160(0x9000 + i));
    }

    function candidateOwner(uint256 i) internal pure returns (address) {
        return address(uint160(0x7000 + i));
    }

    function register(uint256 i) internal {
        fund(candidateOwner(i), MIN_STAKE);
        vm.prank(candidateOwner(i));
        root.registerProducer(producer(i));
    }

    function voteAs(uint256 staker, address p) internal {
        vm.prank(ownerOf(staker));
        root.vote(p);
    }

    function ranking() internal view returns (address[] memory producers, uint256[] memory votes) {
        return root.producerRanking();
    }

    // ---- registering ----

    function test_register_bondsMinStake() public {
        register(0);
        (address owner, uint96 bond, uint32 index, uint64 withdrawableAt, uint32 registration) =
            root.candidates(producer(0));
        assertEq(uint256(registration), 1, "first registration");
        assertEq(owner, candidateOwner(0), "owner");
        assertEq(uint256(bond), MIN_STAKE, "bond");
        assertEq(uint256(index), 1, "first in the list");
        assertEq(uint256(withdrawableAt), 0, "not leaving");
        assertEq(root.bonded(), MIN_STAKE, "bonded");
        assertEq(token.balanceOf(address(root)), MIN_STAKE, "tokens held");
        assertEq(root.candidateCount(), 1, "count");
    }

    function test_register_refusesZeroDuplicateAndUnfunded() public {
        register(0);
        fund(candidateOwner(1), MIN_STAKE);
        vm.prank(candidateOwner(1));
        vm.expectRevert(abi.encodeWithSelector(ProducerElection.CandidateExists.selector, producer(0)));
        root.registerProducer(producer(0));
        vm.prank(candidateOwner(1));
        vm.expectRevert(ProducerElection.ZeroProducer.selector);
        root.registerProducer(address(0));
        // no tokens approved
        vm.prank(address(0xDEAD));
        vm.expectRevert();
        root.registerProducer(producer(2));
        assertEq(root.candidateCount(), 1, "only the first");
    }

    function test_register_refusesBeyondTheCap() public {
        uint256 cap = root.MAX_CANDIDATES();
        for (uint256 i; i < cap; ++i) {
            register(i);
        }
        fund(candidateOwner(cap), MIN_STAKE);
        vm.prank(candidateOwner(cap));
        vm.expectRevert(abi.encodeWithSelector(ProducerElection.TooManyCandidates.selector, cap));
        root.registerProducer(producer(cap));
    }

    // ---- voting and the ranking ----

    function test_vote_onlyStakersForCandidates() public {
        register(0);
        vm.prank(address(0xDEAD));
        vm.expectRevert(abi.encodeWithSelector(StakeManager.NotStaker.selector, address(0xDEAD)));
        root.vote(producer(0));
        join(0, 5 ether);
        vm.prank(ownerOf(0));
        vm.expectRevert(abi.encodeWithSelector(ProducerElection.NotCandidate.selector, producer(9)));
        root.vote(producer(9));
        voteAs(0, producer(0));
        assertEq(root.voteOf(ownerOf(0)), producer(0), "recorded");
        voteAs(0, address(0));
        assertEq(root.voteOf(ownerOf(0)), address(0), "withdrawn");
    }

    function test_ranking_weighsVotesByTheActiveSet() public {
        for (uint256 i; i < 3; ++i) {
            register(i);
        }
        join(0, 5 ether);
        join(1, 3 ether);
        join(2, 3 ether);
        voteAs(0, producer(2));
        voteAs(1, producer(1));
        voteAs(2, producer(1));
        // pending stakers' votes do not count yet: registration order by address
        (address[] memory p, uint256[] memory v) = ranking();
        assertEq(p.length, 3, "every candidate");
        assertEq(p[0], producer(0), "ties: earlier registration first");
        assertEq(v[0] + v[1] + v[2], 0, "no active set yet");
        root.activateGenesisSet();
        (p, v) = ranking();
        assertEq(p[0], producer(1), "6 KMC of votes");
        assertEq(v[0], 6 ether / 1 gwei, "weight in gwei");
        assertEq(p[1], producer(2), "5 KMC");
        assertEq(v[1], 5 ether / 1 gwei, "staker 0's weight");
        assertEq(p[2], producer(0), "no votes: last");
        assertEq(v[2], 0, "none");
    }

    function test_ranking_followsTheActiveSetNotThePending() public {
        register(0);
        register(1);
        genesis(2, 2 ether);
        voteAs(0, producer(0));
        voteAs(1, producer(1));
        // a top-up counts only once active
        fund(ownerOf(1), 5 ether);
        vm.prank(ownerOf(1));
        root.restake(5 ether);
        (address[] memory p,) = ranking();
        assertEq(p[0], producer(0), "tie on active weight: earlier registration");
        submit(checkpoint(1, 0, 7), none());
        (p,) = ranking();
        assertEq(p[0], producer(1), "the top-up is active");
        // a leaver's vote counts until its exit is active
        vm.prank(ownerOf(1));
        root.unstake();
        (p,) = ranking();
        assertEq(p[0], producer(1), "still in the active set");
        submit(checkpoint(2, 8, 15), none());
        (address[] memory after_, uint256[] memory v) = ranking();
        assertEq(after_[0], producer(0), "the leaver's vote is gone");
        assertEq(v[1], 0, "nothing left for producer 1");
    }

    function test_ranking_dropsSlashedStakersVotes() public {
        register(0);
        register(1);
        genesis(4, 2 ether); // staker 3 does not vote
        voteAs(0, producer(1));
        voteAs(1, producer(1));
        voteAs(2, producer(0));
        slashStaker(0);
        submit(checkpoint(1, 0, 7), one(0)); // activates the set without staker 0
        (address[] memory p, uint256[] memory v) = ranking();
        assertEq(v[0], 2 ether / 1 gwei, "one vote each");
        assertEq(p[0], producer(0), "tie: earlier registration");
    }

    // ---- leaving ----

    function test_leave_stopsVotesAndReturnsTheBondAfterTheDelay() public {
        register(0);
        register(1);
        register(2);
        genesis(1, 2 ether);
        voteAs(0, producer(0));
        vm.prank(address(0xDEAD));
        vm.expectRevert(abi.encodeWithSelector(ProducerElection.NotCandidateOwner.selector, producer(0)));
        root.leaveProducers(producer(0));
        vm.prank(candidateOwner(0));
        root.leaveProducers(producer(0));
        (address[] memory p, uint256[] memory v) = ranking();
        assertEq(p.length, 2, "two left");
        assertEq(v[0] + v[1], 0, "the vote for the leaver counts for no one");
        (,, uint32 index,,) = root.candidates(producer(2));
        assertEq(uint256(index), 1, "the last moved into the gap");
        vm.prank(ownerOf(0));
        vm.expectRevert(abi.encodeWithSelector(ProducerElection.NotCandidate.selector, producer(0)));
        root.vote(producer(0));
        vm.prank(candidateOwner(0));
        vm.expectRevert(abi.encodeWithSelector(ProducerElection.NotCandidate.selector, producer(0)));
        root.leaveProducers(producer(0));
        vm.prank(candidateOwner(1));
        vm.expectRevert(abi.encodeWithSelector(ProducerElection.CandidateRunning.selector, producer(1)));
        root.withdrawBond(producer(1));
        vm.prank(candidateOwner(0));
        vm.expectRevert(abi.encodeWithSelector(StakeManager.WithdrawalDelayNotOver.selector, block.timestamp + DELAY));
        root.withdrawBond(producer(0));
        vm.warp(block.timestamp + DELAY);
        vm.prank(candidateOwner(0));
        root.withdrawBond(producer(0));
        assertEq(token.balanceOf(candidateOwner(0)), MIN_STAKE, "bond back");
        assertEq(root.bonded(), 2 * MIN_STAKE, "the others' bonds");
        // withdrawn once: the record is gone, the address may register again
        vm.prank(candidateOwner(0));
        vm.expectRevert(abi.encodeWithSelector(ProducerElection.NotCandidateOwner.selector, producer(0)));
        root.withdrawBond(producer(0));
        register(0);
        assertEq(root.candidateCount(), 3, "registered again");
        (,,,, uint32 registration) = root.candidates(producer(0));
        assertEq(uint256(registration), 4, "a new registration: it ranks after the others on a tie");
    }

    // ---- fuzz ----

    /// Whatever the stakes and votes: the ranking holds every candidate once, in order of
    /// votes (then registration), and each candidate's votes are the active weights voting
    /// for it.
    function testFuzz_rankingIsTheSortedTally(uint256 seed) public {
        uint256 candidatesN = seed % 7 + 1;
        uint256 stakersN = (seed >> 8) % 6 + 1;
        // registered in a seed-dependent order
        uint256 offset = (seed >> 200) % candidatesN;
        for (uint256 k; k < candidatesN; ++k) {
            register((k + offset) % candidatesN);
        }
        uint256[] memory expected = new uint256[](candidatesN);
        for (uint256 s; s < stakersN; ++s) {
            uint256 amount = 1 ether + ((seed >> (16 + s * 8)) % 8) * 1 ether;
            join(s, amount);
        }
        root.activateGenesisSet();
        for (uint256 s; s < stakersN; ++s) {
            uint256 choice = (seed >> (64 + s * 8)) % (candidatesN + 1);
            if (choice == candidatesN) continue; // abstains
            voteAs(s, producer(choice));
            (,, uint96 amount,,,,,) = root.stakers(ownerOf(s));
            expected[choice] += uint256(amount) / 1 gwei;
        }
        (address[] memory p, uint256[] memory v) = ranking();
        assertEq(p.length, candidatesN, "every candidate");
        for (uint256 k; k < p.length; ++k) {
            uint256 i = uint160(p[k]) - 0x9000;
            assertEq(v[k], expected[i], "tally");
            if (k > 0) {
                (,,,, uint32 before) = root.candidates(p[k - 1]);
                (,,,, uint32 here) = root.candidates(p[k]);
                assertTrue(v[k - 1] > v[k] || (v[k - 1] == v[k] && before < here), "order");
            }
        }
    }

    // ---- helpers ----

    /// Staker i signed two checkpoints with one number; someone proves it.
    function slashStaker(uint256 i) internal {
        RootChain.Checkpoint memory a = checkpoint(5, 0, 7);
        RootChain.Checkpoint memory b = checkpoint(5, 0, 8);
        uint256 id = setId();
        bytes memory sa = BlsKeys.sign(skOf[i], root.checkpointDigest(a, id), BLS.SIG_DST);
        bytes memory sb = BlsKeys.sign(skOf[i], root.checkpointDigest(b, id), BLS.SIG_DST);
        root.reportDoubleCheckpoint(a, id, sa, b, id, sb, signerOf(i));
    }
}
