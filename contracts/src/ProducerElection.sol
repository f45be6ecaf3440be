// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {StakeManager} from "./StakeManager.sol";
import {DoubleSeal} from "./lib/DoubleSeal.sol";

/// @title Block producer candidates and the stakers' votes for them.
/// @notice A candidate registers the address of its block-sealing (secp256k1) key with a
/// bond of `minStake` KMC. Every staker votes for at most one candidate; a vote weighs
/// the staker's weight in the *active* set, so it counts from the staker's first active
/// set on and stops counting when the staker leaves it. `producerRanking` orders the
/// candidates by votes, ties by registration; the L2 takes the first ones as the producers of a span and the
/// rest, in order, as reserves (docs/producers.md). A candidate that leaves gets its bond
/// back after the withdrawal delay. A producer proven to have sealed two blocks on one
/// parent (`reportDoubleSeal`) loses its bond, a tenth of it to the reporter, its
/// candidacy and, for good, its key's right to stand.
abstract contract ProducerElection is StakeManager {
    using SafeERC20 for IERC20;

    /// The most candidates at once: bounds the ranking's work.
    uint256 public constant MAX_CANDIDATES = 64;

    /// A candidate: who bonded for it and where it stands.
    struct Candidate {
        address owner; // the account that bonded (and may leave and withdraw)
        uint96 bond; // KMC bonded
        uint32 index; // position + 1 in the candidate list; 0 once it left
        uint64 withdrawableAt; // when the bond may be withdrawn, once it left
        uint32 registration; // the registration's number (1, 2, ...): ties rank by it
    }

    mapping(address producer => Candidate) public candidates;
    /// The staker (owner) votes for this candidate (zero: no vote).
    mapping(address owner => address producer) public voteOf;
    /// KMC bonded by candidates and not withdrawn.
    uint256 public bonded;
    /// Registrations so far.
    uint32 public registrations;
    /// Block-sealing keys proven to have sealed two blocks on one parent: never again a
    /// candidate.
    mapping(address producer => bool) public producerSlashed;
    address[] internal _candidates;

    event CandidateRegistered(address indexed producer, address indexed owner, uint256 bond);
    event CandidateLeft(address indexed producer, uint256 withdrawableAt);
    event BondWithdrawn(address indexed producer, address indexed owner, uint256 amount);
    event Voted(address indexed owner, address indexed producer);
    /// A producer's double seal was proven: `amount` of its bond is gone, `reward` of it
    /// paid to `reporter`, and it is no longer a candidate.
    event ProducerSlashed(
        address indexed producer, address indexed owner, uint256 amount, address reporter, uint256 reward
    );

    error ZeroProducer();
    error CandidateExists(address producer);
    error NotCandidate(address producer);
    error NotCandidateOwner(address producer);
    error TooManyCandidates(uint256 maxCandidates);
    error CandidateRunning(address producer);
    error ProducerBanned(address producer);

    /// Registers `producer` (the address of a block-sealing key) as a candidate, bonding
    /// `minStake` KMC (approved beforehand) from the caller, its owner.
    function registerProducer(address producer) external {
        if (producer == address(0)) revert ZeroProducer();
        if (producerSlashed[producer]) revert ProducerBanned(producer);
        if (candidates[producer].owner != address(0)) revert CandidateExists(producer);
        if (_candidates.length >= MAX_CANDIDATES) revert TooManyCandidates(MAX_CANDIDATES);
        uint256 bond = minStake;
        _candidates.push(producer);
        candidates[producer] = Candidate({
            owner: msg.sender,
            bond: uint96(bond),
            index: uint32(_candidates.length),
            withdrawableAt: 0,
            registration: ++registrations
        });
        bonded += bond;
        stakingToken.safeTransferFrom(msg.sender, address(this), bond);
        emit CandidateRegistered(producer, msg.sender, bond);
    }

    /// Withdraws the candidacy of `producer` (its owner only). Votes for it stop counting
    /// at once; the bond is withdrawable after the withdrawal delay.
    function leaveProducers(address producer) external {
        Candidate storage c = candidates[producer];
        if (c.owner != msg.sender) revert NotCandidateOwner(producer);
        if (c.index == 0) revert NotCandidate(producer);
        _removeCandidate(c.index);
        c.index = 0;
        c.withdrawableAt = uint64(block.timestamp + withdrawalDelay);
        emit CandidateLeft(producer, c.withdrawableAt);
    }

    /// Pays the bond of `producer` back to its owner, once it left and the delay passed.
    function withdrawBond(address producer) external {
        Candidate memory c = candidates[producer];
        if (c.owner != msg.sender) revert NotCandidateOwner(producer);
        if (c.index != 0) revert CandidateRunning(producer);
        if (block.timestamp < c.withdrawableAt) revert WithdrawalDelayNotOver(c.withdrawableAt);
        delete candidates[producer];
        bonded -= c.bond;
        stakingToken.safeTransfer(msg.sender, c.bond);
        emit BondWithdrawn(producer, msg.sender, c.bond);
    }

    /// The caller (a staker's owner) votes for `producer`, replacing its previous vote;
    /// zero withdraws the vote.
    function vote(address producer) external {
        if (stakers[msg.sender].signer == address(0)) revert NotStaker(msg.sender);
        if (producer != address(0) && candidates[producer].index == 0) revert NotCandidate(producer);
        voteOf[msg.sender] = producer;
        emit Voted(msg.sender, producer);
    }

    /// The candidates, most votes first (ties: the earlier registration first), with their
    /// votes: the sum of the active-set weights of the stakers voting for each.
    function producerRanking() external view returns (address[] memory producers, uint256[] memory votes) {
        uint256 n = _candidates.length;
        producers = new address[](n);
        votes = new uint256[](n);
        uint256[] memory order = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            producers[i] = _candidates[i];
            order[i] = candidates[producers[i]].registration;
        }
        uint256 setId = _loadHead().setId;
        uint256 slots = slotCount;
        for (uint256 slot; slot < slots; ++slot) {
            uint256 entry = _entryAt(slot, setId);
            address keyContract = address(uint160(entry));
            if (keyContract == address(0)) continue;
            address choice = voteOf[keyOwner[keyContract]];
            if (choice == address(0)) continue;
            uint256 index = candidates[choice].index;
            if (index == 0) continue; // it left
            votes[index - 1] += uint64(entry >> 160);
        }
        // insertion sort: n is at most MAX_CANDIDATES
        for (uint256 i = 1; i < n; ++i) {
            address p = producers[i];
            uint256 v = votes[i];
            uint256 o = order[i];
            uint256 j = i;
            while (j > 0 && (votes[j - 1] < v || (votes[j - 1] == v && order[j - 1] > o))) {
                producers[j] = producers[j - 1];
                votes[j] = votes[j - 1];
                order[j] = order[j - 1];
                --j;
            }
            producers[j] = p;
            votes[j] = v;
            order[j] = o;
        }
    }

    /// Slashes the producer that sealed both `headerA` and `headerB` (two different RLP
    /// block headers with the same parent, each with its 65-byte seal): its whole bond goes,
    /// a tenth of it to the caller (unless that is the candidate's owner or key), it stops
    /// being a candidate and its key can never stand again. The bond of a candidate that
    /// left answers until it is withdrawn. Anyone may report.
    function reportDoubleSeal(
        bytes calldata headerA,
        bytes calldata sealA,
        bytes calldata headerB,
        bytes calldata sealB
    ) external {
        address producer = DoubleSeal.sealer(headerA, sealA, headerB, sealB, _l2ChainId());
        if (producerSlashed[producer]) revert ProducerBanned(producer);
        Candidate memory c = candidates[producer];
        if (c.owner == address(0)) revert NotCandidate(producer);
        if (c.index != 0) _removeCandidate(c.index);
        producerSlashed[producer] = true;
        delete candidates[producer];
        uint256 amount = c.bond;
        uint256 reward = msg.sender == c.owner || msg.sender == producer ? 0 : amount * REPORTER_BPS / 10_000;
        bonded -= amount;
        slashedHeld += amount - reward;
        if (reward != 0) stakingToken.safeTransfer(msg.sender, reward);
        emit ProducerSlashed(producer, c.owner, amount, msg.sender, reward);
    }

    /// The L2's chain id (block seals are bound to it).
    function _l2ChainId() internal view virtual returns (uint256);

    /// Takes the candidate at list position `index` (+ 1) out of the list.
    function _removeCandidate(uint256 index) private {
        uint256 i = index - 1;
        address last = _candidates[_candidates.length - 1];
        _candidates[i] = last;
        candidates[last].index = uint32(i + 1);
        _candidates.pop();
    }

    /// How many candidates are registered (and not left).
    function candidateCount() external view returns (uint256) {
        return _candidates.length;
    }
}
