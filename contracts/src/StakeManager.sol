// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {BLS} from "./lib/BLS.sol";
import {StakeRewards} from "./StakeRewards.sol";

/// @title The staker set that signs checkpoints.
/// @notice A staker locks KMC, names the address of its KoMaBFT (secp256k1) key and
/// registers a BLS12-381 public key with a proof of possession. Joins, top-ups, decreases
/// and exits change the *pending* set; the pending set becomes the *active* set, under the
/// next set id, when the next checkpoint signed by the active set is accepted
/// (RootChain). Tokens a staker takes out (all of them when it leaves, a part when it
/// decreases its stake) are released once the set without them is active and the
/// withdrawal delay has passed; until then they can still be slashed.
/// @dev The set lives in numbered slots. Each slot has two versions (the latest and the
/// one before), each tagged with the set id from which it holds, so the active set stays
/// readable while changes for the next one accumulate. A slot entry packs the address of
/// the staker's key contract (a contract whose code is 0x00 ‖ the 256-byte EIP-2537 key,
/// deployed once at registration), its weight (stake in gwei) and the set id. Checking a
/// checkpoint then costs, per absent staker, one storage read and one code copy, and no
/// key or Merkle proof in calldata. The set is committed in one slot:
/// `setCommit = keccak256(setId ‖ totalWeight ‖ aggregateKey)`. Signers of accepted
/// checkpoints earn rewards (StakeRewards), claimed here.
abstract contract StakeManager is StakeRewards {
    using SafeERC20 for IERC20;

    /// Stakes weigh in gwei of KMC (as Ethereum's beacon chain counts balances).
    uint256 public constant WEIGHT_UNIT = 1 gwei;
    /// Domain tag of the proof-of-possession message.
    bytes32 public constant POP_TAG = keccak256("KOMA_BLS_POP_V1");
    /// Share of its stake a proven equivocator loses, in basis points.
    uint256 public constant SLASH_BPS = 5_000;
    /// Share of the slashed tokens paid to whoever proved it, in basis points; the rest
    /// stays locked here for good (`slashedHeld`).
    uint256 public constant REPORTER_BPS = 1_000;

    /// A staker: its locked tokens and where it sits in the pending set.
    struct Staker {
        address signer; // the address of its KoMaBFT key
        address blsKey; // the key contract (code = 0x00 ‖ EIP-2537 public key)
        uint96 amount; // KMC locked
        uint32 slot; // slot + 1 in the pending set; 0 once it has left
        uint32 exitSetId; // the set id from which its exit holds; 0 while it stays
        uint64 withdrawableAt; // earliest timestamp of the withdrawal (exit or unbonding)
        uint96 unbonding; // KMC taken out of the stake by decreaseStake, not yet withdrawn
        uint32 unbondSetId; // the set id from which the last decrease holds
    }

    /// The packed checkpoint and set state, one slot (see _loadHead).
    struct Head {
        bool dirty; // the pending set differs from the active one
        uint32 setId; // the active set id
        uint64 totalWeight; // the active set's total weight
        uint64 number; // the last accepted checkpoint number
        uint64 nextStart; // the first L2 block of the next checkpoint
    }

    IERC20 public immutable stakingToken;
    uint256 public immutable minStake;
    uint256 public immutable maxStakers;
    uint256 public immutable withdrawalDelay;

    mapping(address owner => Staker) public stakers;
    mapping(address signer => address owner) public signerOwner;
    mapping(address keyContract => address owner) public keyOwner;

    /// The active set's commitment: keccak256(setId ‖ totalWeight ‖ aggregateKey).
    bytes32 public setCommit;
    /// The commitment the pending set will have once active.
    bytes32 public pendingCommit;

    uint256 internal _head;
    mapping(uint256 slot => uint256) internal _slotLatest;
    mapping(uint256 slot => uint256) internal _slotPrevious;
    uint32[] internal _freeSlots;
    uint32 public slotCount;
    uint32 public pendingStakerCount;
    uint64 public pendingTotalWeight;
    bytes internal _pendingKey;
    /// KoMaBFT keys proven to have misbehaved: their stakers were slashed and removed,
    /// and the key can never stake again.
    mapping(address signer => bool) public slashed;
    /// Slashed tokens kept out of circulation (never paid out).
    uint256 public slashedHeld;

    event StakerJoined(address indexed owner, address indexed signer, uint256 slot, address blsKey, uint256 amount);
    event StakeIncreased(address indexed owner, uint256 amount, uint256 total);
    event StakeDecreased(
        address indexed owner,
        uint256 amount,
        uint256 total,
        uint256 unbonding,
        uint256 unbondSetId,
        uint256 withdrawableAt
    );
    event StakerLeft(address indexed owner, uint256 slot, uint256 exitSetId, uint256 withdrawableAt);
    event StakeWithdrawn(address indexed owner, uint256 amount);
    /// A staker's key was proven to misbehave: `amount` of its stake is gone, `reward` of
    /// it paid to `reporter`, and the staker is out of the pending set.
    event Slashed(address indexed owner, address indexed signer, uint256 amount, address reporter, uint256 reward);
    /// The pending set changed: what it will be once active.
    event PendingSetChanged(uint256 indexed setId, bytes32 commit, uint256 totalWeight, bytes aggregateKey);
    event SetActivated(uint256 indexed setId, bytes32 commit, uint256 totalWeight);

    error AlreadyStaker(address owner);
    error NotStaker(address owner);
    error StakeTooLow(uint256 amount, uint256 minimum);
    error StakeTooHigh(uint256 amount);
    error ZeroAmount();
    error ZeroSigner();
    error SignerTaken(address signer);
    error KeyTaken(address keyContract);
    error ZeroKey();
    error InvalidProofOfPossession();
    error SetFull(uint256 maxStakers);
    error AlreadyLeaving(address owner);
    error NotLeaving(address owner);
    error UnbondingNotActive(uint256 unbondSetId, uint256 activeSetId);
    error ExitNotActive(uint256 exitSetId, uint256 activeSetId);
    error WithdrawalDelayNotOver(uint256 withdrawableAt);
    error SetNotEmpty();
    error NothingPending();
    error KeyDeployFailed();
    error SignerSlashed(address signer);
    error UnknownSigner(address signer);

    constructor(
        IERC20 token,
        uint256 minStake_,
        uint256 maxStakers_,
        uint256 withdrawalDelay_,
        uint256 firstBlock,
        uint256 rewardPerCheckpoint_
    ) StakeRewards(rewardPerCheckpoint_) {
        stakingToken = token;
        minStake = minStake_;
        maxStakers = maxStakers_;
        withdrawalDelay = withdrawalDelay_;
        require(maxStakers_ > 0 && maxStakers_ <= 1 << 16, "maxStakers out of range");
        require(minStake_ >= WEIGHT_UNIT, "minStake below one weight unit");
        require(firstBlock < type(uint64).max, "firstBlock out of range");
        _pendingKey = new bytes(BLS.G2_LENGTH);
        _storeHead(Head({dirty: false, setId: 0, totalWeight: 0, number: 0, nextStart: uint64(firstBlock)}));
    }

    // ---- staking ----

    /// Joins the pending set with `amount` KMC (approved beforehand), the address of the
    /// KoMaBFT key and a BLS public key (EIP-2537, 256 bytes) with its proof of
    /// possession: a signature (G1, 128 bytes) under the PoP ciphersuite over
    /// `popMessage(msg.sender, signer, blsKey)`.
    function stake(uint256 amount, address signer, bytes calldata blsKey, bytes calldata proofOfPossession) external {
        Staker storage s = stakers[msg.sender];
        if (s.blsKey != address(0)) revert AlreadyStaker(msg.sender);
        if (amount < minStake) revert StakeTooLow(amount, minStake);
        if (signer == address(0)) revert ZeroSigner();
        if (slashed[signer]) revert SignerSlashed(signer);
        if (signerOwner[signer] != address(0)) revert SignerTaken(signer);
        if (pendingStakerCount >= maxStakers) revert SetFull(maxStakers);
        uint64 weight = _weight(amount);

        if (blsKey.length != BLS.G2_LENGTH) revert BLS.BadPointLength(blsKey.length, BLS.G2_LENGTH);
        if (BLS.isZero(blsKey)) revert ZeroKey();
        if (proofOfPossession.length != BLS.G1_LENGTH || BLS.isZero(proofOfPossession)) {
            revert InvalidProofOfPossession();
        }
        // The pairing also checks that the key lies in the G2 subgroup.
        if (!BLS.verify(proofOfPossession, popMessage(msg.sender, signer, blsKey), blsKey, BLS.POP_DST)) {
            revert InvalidProofOfPossession();
        }
        address keyContract = _keyContract(blsKey);
        if (keyOwner[keyContract] != address(0)) revert KeyTaken(keyContract);

        uint32 slot;
        if (_freeSlots.length > 0) {
            slot = _freeSlots[_freeSlots.length - 1];
            _freeSlots.pop();
        } else {
            slot = slotCount++;
        }
        stakers[msg.sender] = Staker({
            signer: signer,
            blsKey: keyContract,
            amount: uint96(amount),
            slot: slot + 1,
            exitSetId: 0,
            withdrawableAt: 0,
            unbonding: 0,
            unbondSetId: 0
        });
        signerOwner[signer] = msg.sender;
        keyOwner[keyContract] = msg.sender;
        pendingStakerCount += 1;

        _writeSlot(slot, keyContract, weight);
        _openAccount(msg.sender, keyContract, weight, uint256(_loadHead().setId) + 1);
        _pendingKey = BLS.g2Add(_pendingKey, blsKey);
        pendingTotalWeight += weight;
        _pendingChanged();

        stakingToken.safeTransferFrom(msg.sender, address(this), amount);
        emit StakerJoined(msg.sender, signer, slot, keyContract, amount);
    }

    /// Adds `amount` KMC (approved beforehand) to the caller's stake.
    function restake(uint256 amount) external {
        Staker storage s = stakers[msg.sender];
        if (s.slot == 0) revert NotStaker(msg.sender);
        if (amount == 0) revert ZeroAmount();
        uint256 total = uint256(s.amount) + amount;
        uint64 oldWeight = _weight(s.amount);
        uint64 newWeight = _weight(total);
        s.amount = uint96(total);

        _writeSlot(s.slot - 1, s.blsKey, newWeight);
        _scheduleWeight(msg.sender, s.blsKey, _loadHead().setId, newWeight);
        pendingTotalWeight = pendingTotalWeight - oldWeight + newWeight;
        _pendingChanged();

        stakingToken.safeTransferFrom(msg.sender, address(this), amount);
        emit StakeIncreased(msg.sender, amount, total);
    }

    /// Takes `amount` KMC out of the caller's stake; at least `minStake` must stay. The
    /// weight falls with the next set; the tokens can be withdrawn once that set is
    /// active and `withdrawalDelay` seconds have passed (until then they can be slashed
    /// with the rest). A second decrease before the withdrawal adds to the first and
    /// restarts the wait for the whole unbonding amount.
    function decreaseStake(uint256 amount) external {
        Staker storage s = stakers[msg.sender];
        if (s.slot == 0) revert NotStaker(msg.sender);
        if (amount == 0) revert ZeroAmount();
        uint256 left = amount < s.amount ? s.amount - amount : 0;
        if (left < minStake) revert StakeTooLow(left, minStake);
        uint64 oldWeight = _weight(s.amount);
        uint64 newWeight = _weight(left);
        uint32 unbondSetId = _loadHead().setId + 1;
        uint64 withdrawableAt = uint64(block.timestamp + withdrawalDelay);
        s.amount = uint96(left);
        s.unbonding += uint96(amount);
        s.unbondSetId = unbondSetId;
        s.withdrawableAt = withdrawableAt;

        _writeSlot(s.slot - 1, s.blsKey, newWeight);
        _scheduleWeight(msg.sender, s.blsKey, _loadHead().setId, newWeight);
        pendingTotalWeight = pendingTotalWeight - oldWeight + newWeight;
        _pendingChanged();
        emit StakeDecreased(msg.sender, amount, left, s.unbonding, unbondSetId, withdrawableAt);
    }

    /// Leaves the pending set. The tokens can be withdrawn once the set without the caller
    /// is active and `withdrawalDelay` seconds have passed.
    function unstake() external {
        Staker storage s = stakers[msg.sender];
        if (s.blsKey == address(0)) revert NotStaker(msg.sender);
        if (s.slot == 0) revert AlreadyLeaving(msg.sender);
        _leave(s, msg.sender);
    }

    /// Takes the staker of `owner` (in the pending set) out of the pending set; its tokens
    /// are withdrawable once that set is active and the delay is over.
    function _leave(Staker storage s, address owner) private {
        uint32 slot = s.slot - 1;
        uint32 exitSetId = _loadHead().setId + 1;
        uint64 withdrawableAt = uint64(block.timestamp + withdrawalDelay);
        s.slot = 0;
        s.exitSetId = exitSetId;
        s.withdrawableAt = withdrawableAt;
        pendingStakerCount -= 1;
        _freeSlots.push(slot);

        _writeSlot(slot, address(0), 0);
        _scheduleWeight(owner, s.blsKey, _loadHead().setId, 0);
        _pendingKey = BLS.g2Add(_pendingKey, BLS.g2Negate(_keyOf(s.blsKey)));
        pendingTotalWeight -= _weight(s.amount);
        _pendingChanged();
        emit StakerLeft(owner, slot, exitSetId, withdrawableAt);
    }

    /// Slashes the staker whose KoMaBFT key is `signer` (misbehaviour proven by the
    /// caller): it loses `SLASH_BPS` of its stake, `REPORTER_BPS` of that goes to
    /// `reporter` (unless that is the staker's own owner or key), it leaves the pending set (if still in it) and its key is banned. What
    /// is left is withdrawable as after `unstake`. Evidence against a key counts once.
    function _slash(address signer, address reporter) internal {
        if (slashed[signer]) revert SignerSlashed(signer);
        address owner = signerOwner[signer];
        if (owner == address(0)) revert UnknownSigner(signer);
        Staker storage s = stakers[owner];
        if (s.slot != 0) _leave(s, owner);
        // tokens still unbonding answer for the signatures made with them
        if (s.unbonding != 0) {
            s.amount += s.unbonding;
            s.unbonding = 0;
            s.unbondSetId = 0;
        }
        uint256 amount = uint256(s.amount) * SLASH_BPS / 10_000;
        // no reward for reporting oneself (it would only soften the penalty)
        uint256 reward = reporter == owner || reporter == signer ? 0 : amount * REPORTER_BPS / 10_000;
        s.amount -= uint96(amount);
        slashed[signer] = true;
        slashedHeld += amount - reward;
        if (reward != 0) stakingToken.safeTransfer(reporter, reward);
        emit Slashed(owner, signer, amount, reporter, reward);
    }

    /// Pays out what the caller took out and may now have: everything once its exit is
    /// active and the delay is over (the staker record is then gone), or, for a staker
    /// that stays, the unbonding amount of its decreases once their set is active and
    /// the delay is over.
    function withdraw() external {
        Staker memory s = stakers[msg.sender];
        uint256 activeSetId = _loadHead().setId;
        if (s.exitSetId != 0) {
            if (activeSetId < s.exitSetId) revert ExitNotActive(s.exitSetId, activeSetId);
            if (block.timestamp < s.withdrawableAt) revert WithdrawalDelayNotOver(s.withdrawableAt);
            uint256 total = uint256(s.amount) + s.unbonding;
            // the rewards go with the stake, or back to the pool if the staker was slashed
            uint256 earned = _closeAccount(msg.sender, s.blsKey, activeSetId);
            delete stakers[msg.sender];
            delete signerOwner[s.signer];
            delete keyOwner[s.blsKey];
            if (slashed[s.signer]) {
                if (earned != 0) {
                    // held like slashed tokens if the pool cannot take them: never a revert
                    slashedHeld += _refundPool(earned);
                    emit RewardsReturned(msg.sender, earned);
                }
                earned = 0;
            }
            stakingToken.safeTransfer(msg.sender, total + earned);
            emit StakeWithdrawn(msg.sender, total);
            if (earned != 0) emit RewardsClaimed(msg.sender, earned);
            return;
        }
        if (s.unbonding == 0) revert NotLeaving(msg.sender);
        if (activeSetId < s.unbondSetId) revert UnbondingNotActive(s.unbondSetId, activeSetId);
        if (block.timestamp < s.withdrawableAt) revert WithdrawalDelayNotOver(s.withdrawableAt);
        Staker storage stored = stakers[msg.sender];
        stored.unbonding = 0;
        stored.unbondSetId = 0;
        stored.withdrawableAt = 0;
        stakingToken.safeTransfer(msg.sender, s.unbonding);
        emit StakeWithdrawn(msg.sender, s.unbonding);
    }

    /// Adds `amount` KMC (approved beforehand) to the reward pool.
    function fundRewards(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        _fundPool(amount);
        stakingToken.safeTransferFrom(msg.sender, address(this), amount);
        emit RewardsFunded(msg.sender, amount);
    }

    /// Pays the caller (a staker's owner, staying or leaving) the rewards it has earned.
    /// A slashed staker's rewards are forfeit (they return to the pool at its withdrawal).
    function claimRewards() external {
        Staker memory s = stakers[msg.sender];
        if (s.blsKey == address(0)) revert NotStaker(msg.sender);
        if (slashed[s.signer]) revert RewardsForfeit(msg.sender);
        uint256 amount = _takeRewards(msg.sender, s.blsKey, _loadHead().setId);
        stakingToken.safeTransfer(msg.sender, amount);
        emit RewardsClaimed(msg.sender, amount);
    }

    /// Makes the pending set active while the active set is empty (at deployment, or if
    /// every staker has left): an empty set can sign no checkpoint that would do it.
    function activateGenesisSet() external {
        Head memory h = _loadHead();
        if (h.totalWeight != 0) revert SetNotEmpty();
        if (!h.dirty || pendingTotalWeight == 0) revert NothingPending();
        _activatePending(h);
        _storeHead(h);
    }

    // ---- views ----

    /// The message a staker's proof of possession signs: it binds the key to the staker,
    /// its KoMaBFT signer, this contract and this chain.
    function popMessage(address owner, address signer, bytes calldata blsKey) public view returns (bytes32) {
        return keccak256(abi.encodePacked(POP_TAG, block.chainid, address(this), owner, signer, blsKey));
    }

    /// The active set id, its total weight, the last checkpoint number, the first block of
    /// the next checkpoint, and whether set changes are pending.
    function head()
        external
        view
        returns (uint256 setId, uint256 totalWeight, uint256 checkpointNumber, uint256 nextStart, bool changesPending)
    {
        Head memory h = _loadHead();
        return (h.setId, h.totalWeight, h.number, h.nextStart, h.dirty);
    }

    /// The active set, slot by slot (an empty slot has a zero key contract and weight):
    /// what a checkpoint submitter needs to name the absent stakers.
    function activeSet()
        external
        view
        returns (uint256 setId, address[] memory signers, bytes[] memory keys, uint256[] memory weights)
    {
        return _set(_loadHead().setId);
    }

    /// The pending set, in the same form as activeSet.
    function pendingSet()
        external
        view
        returns (uint256 setId, address[] memory signers, bytes[] memory keys, uint256[] memory weights)
    {
        return _set(uint256(_loadHead().setId) + 1);
    }

    /// The rewards the staker of `owner` has earned and not claimed, in KMC (forfeit if
    /// it was slashed).
    function rewardsOf(address owner) external view returns (uint256) {
        address keyContract = stakers[owner].blsKey;
        if (keyContract == address(0)) return 0;
        return _rewardsOf(owner, keyContract, _loadHead().setId);
    }

    /// The aggregate BLS key of the pending set.
    function pendingAggregateKey() external view returns (bytes memory) {
        return _pendingKey;
    }

    // ---- internals ----

    function _set(uint256 setId)
        internal
        view
        returns (uint256, address[] memory signers, bytes[] memory keys, uint256[] memory weights)
    {
        uint256 n = slotCount;
        signers = new address[](n);
        keys = new bytes[](n);
        weights = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            uint256 entry = _entryAt(i, setId);
            address keyContract = address(uint160(entry));
            if (keyContract == address(0)) continue;
            signers[i] = stakers[keyOwner[keyContract]].signer;
            keys[i] = _keyOf(keyContract);
            weights[i] = uint64(entry >> 160);
        }
        return (setId, signers, keys, weights);
    }

    /// The entry of `slot` in the set `setId` (the active or the pending one).
    function _entryAt(uint256 slot, uint256 setId) internal view override returns (uint256 entry) {
        entry = _slotLatest[slot];
        if (entry >> 224 > setId) entry = _slotPrevious[slot];
    }

    /// Writes `slot` of the pending set, keeping the active version as the previous one.
    function _writeSlot(uint256 slot, address keyContract, uint64 weight) private {
        uint256 pendingId = uint256(_loadHead().setId) + 1;
        uint256 latest = _slotLatest[slot];
        if (latest >> 224 != pendingId) _slotPrevious[slot] = latest;
        _slotLatest[slot] = uint256(uint160(keyContract)) | uint256(weight) << 160 | pendingId << 224;
    }

    function _pendingChanged() private {
        Head memory h = _loadHead();
        uint256 pendingId = uint256(h.setId) + 1;
        bytes memory key = _pendingKey;
        bytes32 commit = keccak256(abi.encodePacked(pendingId, uint256(pendingTotalWeight), key));
        pendingCommit = commit;
        if (!h.dirty) {
            h.dirty = true;
            _storeHead(h);
        }
        emit PendingSetChanged(pendingId, commit, pendingTotalWeight, key);
    }

    /// Makes the pending set active (in `h`; the caller stores it).
    function _activatePending(Head memory h) internal {
        h.setId += 1;
        h.totalWeight = pendingTotalWeight;
        h.dirty = false;
        bytes32 commit = pendingCommit;
        setCommit = commit;
        _rewardSetActivated(h.setId);
        emit SetActivated(h.setId, commit, h.totalWeight);
    }

    function _weight(uint256 amount) private pure returns (uint64) {
        uint256 weight = amount / WEIGHT_UNIT;
        if (weight > type(uint64).max || amount > type(uint96).max) revert StakeTooHigh(amount);
        return uint64(weight);
    }

    /// The key contract of `blsKey`, deployed with CREATE2 (salt: the key's hash) unless a
    /// former staker left it behind.
    function _keyContract(bytes calldata blsKey) private returns (address keyContract) {
        // initcode: PUSH2 257, DUP1, PUSH1 10, RETURNDATASIZE, CODECOPY, RETURNDATASIZE,
        // RETURN, then the runtime code 0x00 (STOP, so calling it does nothing) ‖ key.
        bytes memory init = abi.encodePacked(hex"61010180600a3d393df300", blsKey);
        bytes32 salt = keccak256(blsKey);
        keyContract =
            address(uint160(uint256(keccak256(abi.encodePacked(bytes1(0xff), address(this), salt, keccak256(init))))));
        if (keyContract.code.length != 0) return keyContract;
        address deployed;
        assembly ("memory-safe") {
            deployed := create2(0, add(init, 32), mload(init), salt)
        }
        if (deployed != keyContract) revert KeyDeployFailed();
    }

    function _keyOf(address keyContract) internal view returns (bytes memory key) {
        key = new bytes(BLS.G2_LENGTH);
        assembly ("memory-safe") {
            extcodecopy(keyContract, add(key, 32), 1, 256)
        }
    }

    // head: bit 255 always set (so its write is never zero -> nonzero), bit 254 dirty,
    // bits 192..223 set id, 128..191 total weight, 64..127 checkpoint number, 0..63 next start.
    function _loadHead() internal view returns (Head memory h) {
        uint256 w = _head;
        h.dirty = (w >> 254) & 1 == 1;
        h.setId = uint32(w >> 192);
        h.totalWeight = uint64(w >> 128);
        h.number = uint64(w >> 64);
        h.nextStart = uint64(w);
    }

    function _storeHead(Head memory h) internal {
        _head = 1 << 255 | (h.dirty ? 1 << 254 : 0) | uint256(h.setId) << 192 | uint256(h.totalWeight) << 128
            | uint256(h.number) << 64 | uint256(h.nextStart);
    }
}
