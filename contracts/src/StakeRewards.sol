// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

/// @title The accounting of checkpoint rewards.
/// @notice Every accepted checkpoint pays `rewardPerCheckpoint` KMC from a pool that
/// anyone may fund (less when the pool holds less) to the stakers that signed it, each in
/// proportion to its weight in the signing set: a staker of weight w among signers of
/// weight S earns R·w/S. Absent stakers earn nothing for that checkpoint. Rewards
/// accumulate on L1 and are claimed by the staker's owner (docs/staking.md, ADR 0024).
/// @dev A global accumulator counts, per unit of weight, what a staker that signed every
/// checkpoint would have earned (scaled by REWARD_PRECISION); a checkpoint adds R/S to
/// it. An absent staker's key contract is debited w·R/S in the same transaction, so the
/// signers' shares sum to R and the absent staker's net is zero: one storage write per
/// absent staker, none per signer. A staker's account is settled lazily (on its own
/// actions and claims): its weight in the active set changes only at the activation of a
/// set that its own action scheduled, and the accumulator's value at each activation is
/// kept, so one pending weight change per staker suffices.
abstract contract StakeRewards {
    /// The accumulator's scale.
    uint256 public constant REWARD_PRECISION = 1e18;

    /// KMC paid per accepted checkpoint to its signers (zero: no rewards).
    uint256 public immutable rewardPerCheckpoint;

    /// A staker's reward account.
    struct RewardAccount {
        uint128 accBase; // the accumulator at the last settlement
        uint64 weight; // the staker's weight in the active set as of accBase
        uint64 nextWeight; // its weight from set `changeSetId` on
        uint32 changeSetId; // the set id from which nextWeight holds; 0: no change pending
        uint224 owed; // earned, not claimed, scaled by REWARD_PRECISION
    }

    // pool (bits 0..95, KMC) | accumulator (bits 96..223)
    uint256 internal _rewards;
    /// The accumulator when each set became active.
    mapping(uint256 setId => uint256) internal _accAtSet;
    /// Per key contract: what its absences withheld (scaled), plus one so the slot stays
    /// non-zero and a debit costs a storage reset rather than a fresh write.
    mapping(address keyContract => uint256) internal _missed;
    mapping(address owner => RewardAccount) internal _accounts;

    event RewardsFunded(address indexed from, uint256 amount);
    event RewardsClaimed(address indexed owner, uint256 amount);
    /// A slashed staker's unclaimed rewards went back to the pool at its withdrawal.
    event RewardsReturned(address indexed owner, uint256 amount);

    error NoRewards();
    error RewardsForfeit(address owner);
    error PoolFull(uint256 pool, uint256 amount);

    constructor(uint256 rewardPerCheckpoint_) {
        require(rewardPerCheckpoint_ <= type(uint96).max, "rewardPerCheckpoint out of range");
        rewardPerCheckpoint = rewardPerCheckpoint_;
    }

    /// KMC in the pool, not yet paid to any checkpoint.
    function rewardPool() public view returns (uint256) {
        return uint96(_rewards);
    }

    /// The entry of `slot` in set `setId`: key contract (bits 0..159), weight (160..223).
    function _entryAt(uint256 slot, uint256 setId) internal view virtual returns (uint256);

    /// Adds `amount` to the pool (the caller has taken the tokens in).
    function _fundPool(uint256 amount) internal {
        uint256 state = _rewards;
        uint256 pool = uint96(state) + amount;
        if (pool > type(uint96).max) revert PoolFull(uint96(state), amount);
        _rewards = (state >> 96) << 96 | pool;
    }

    /// Returns `amount` to the pool as far as it fits (it always does while the token's
    /// supply fits 96 bits); what does not, in KMC.
    function _refundPool(uint256 amount) internal returns (uint256 rest) {
        uint256 state = _rewards;
        uint256 room = type(uint96).max - uint96(state);
        uint256 added = amount < room ? amount : room;
        _rewards = state + added;
        return amount - added;
    }

    /// Pays the reward of a checkpoint signed by set `setId` less the stakers at the
    /// `absent` slots (2-byte slot numbers, already checked), `signedWeight` in all.
    function _payCheckpoint(uint256 setId, uint256 signedWeight, bytes calldata absent) internal {
        uint256 reward = rewardPerCheckpoint;
        if (reward == 0) return;
        uint256 state = _rewards;
        uint256 pool = uint96(state);
        if (pool < reward) reward = pool;
        uint256 perWeight = reward * REWARD_PRECISION / signedWeight;
        uint256 acc = (state >> 96) + perWeight;
        // nothing to pay, or an accumulator that would overflow: the checkpoint goes unpaid
        if (perWeight == 0 || acc > type(uint128).max) return;
        // what the signers' shares add up to, rounded up: never more than `reward`
        uint256 paid = (perWeight * signedWeight + REWARD_PRECISION - 1) / REWARD_PRECISION;
        _rewards = acc << 96 | (pool - paid);
        for (uint256 p; p < absent.length; p += 2) {
            uint256 entry = _entryAt(uint16(bytes2(absent[p:p + 2])), setId);
            _missed[address(uint160(entry))] += uint64(entry >> 160) * perWeight;
        }
    }

    /// Notes the accumulator as set `setId` becomes active.
    function _rewardSetActivated(uint256 setId) internal {
        if (rewardPerCheckpoint != 0) _accAtSet[setId] = _rewards >> 96;
    }

    /// Opens the account of a staker that joins with `weight` in set `setId`.
    function _openAccount(address owner, address keyContract, uint64 weight, uint256 setId) internal {
        _accounts[owner] = RewardAccount({
            accBase: uint128(_rewards >> 96),
            weight: 0,
            nextWeight: weight,
            changeSetId: uint32(setId),
            owed: 0
        });
        if (_missed[keyContract] == 0) _missed[keyContract] = 1;
    }

    /// Settles the account of `owner` and gives it `weight` from the next set on.
    function _scheduleWeight(address owner, address keyContract, uint256 activeSetId, uint64 weight) internal {
        RewardAccount storage a = _settle(owner, keyContract, activeSetId);
        a.nextWeight = weight;
        a.changeSetId = uint32(activeSetId + 1);
    }

    /// Settles and closes the account of `owner`; what it had earned, in KMC.
    function _closeAccount(address owner, address keyContract, uint256 activeSetId) internal returns (uint256 amount) {
        amount = _settle(owner, keyContract, activeSetId).owed / REWARD_PRECISION;
        delete _accounts[owner];
        _missed[keyContract] = 1;
    }

    /// Settles the account of `owner` and takes out what it earned, in whole KMC wei.
    function _takeRewards(address owner, address keyContract, uint256 activeSetId) internal returns (uint256 amount) {
        RewardAccount storage a = _settle(owner, keyContract, activeSetId);
        amount = a.owed / REWARD_PRECISION;
        if (amount == 0) revert NoRewards();
        a.owed -= uint224(amount * REWARD_PRECISION);
    }

    /// Brings the account of `owner` up to the present.
    function _settle(address owner, address keyContract, uint256 activeSetId)
        private
        returns (RewardAccount storage a)
    {
        a = _accounts[owner];
        RewardAccount memory m = _earned(a, keyContract, activeSetId);
        a.accBase = m.accBase;
        a.weight = m.weight;
        a.changeSetId = m.changeSetId;
        a.owed = m.owed;
        uint256 missed = _missed[keyContract];
        if (missed != 1) _missed[keyContract] = 1;
    }

    /// What `owner` has earned and not claimed, in KMC.
    function _rewardsOf(address owner, address keyContract, uint256 activeSetId) internal view returns (uint256) {
        return _earned(_accounts[owner], keyContract, activeSetId).owed / REWARD_PRECISION;
    }

    /// The account `a` brought up to the present (the debits of `keyContract` consumed).
    function _earned(RewardAccount storage a, address keyContract, uint256 activeSetId)
        private
        view
        returns (RewardAccount memory m)
    {
        m = a;
        uint256 owed = m.owed;
        if (m.changeSetId != 0 && activeSetId >= m.changeSetId) {
            uint256 at = _accAtSet[m.changeSetId];
            owed += uint256(m.weight) * (at - m.accBase);
            m.accBase = uint128(at);
            m.weight = m.nextWeight;
            m.changeSetId = 0;
        }
        uint256 acc = _rewards >> 96;
        owed += uint256(m.weight) * (acc - m.accBase);
        m.accBase = uint128(acc);
        // every debit is the share of a checkpoint that the credit above counted
        m.owed = uint224(owed - (_missed[keyContract] - 1));
    }
}
