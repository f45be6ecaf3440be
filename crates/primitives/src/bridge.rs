//! The bridge's messages as both chains encode them (docs/bridge.md): deposits from L1
//! (the data of a `StateSynced` event and the hash chain over them) and withdrawals to
//! L1 (the `WithdrawalInitiated` events of the L2 bridge, their leaves and the block's
//! `withdrawalsRoot`). `contracts/src/bridge/BridgeMessages.sol` computes the same bytes;
//! `tests/vectors/bridge.json` holds both sides to them.

use alloy::consensus::constants::EMPTY_ROOT_HASH;
use alloy::consensus::{ReceiptEnvelope, SignableTransaction, TxEnvelope, TxLegacy};
use alloy::primitives::{Address, B256, Bytes, Log, U256, address, keccak256};
use alloy::primitives::{Signature, TxKind};
use alloy::sol;
use alloy::sol_types::{SolCall, SolEvent, SolType, SolValue, sol_data};

use crate::merkle::MerkleTree;
use crate::transfer_log::TRANSFER_LOG_ADDRESS;

/// The L2 bridge predeploy: applies deposits, emits withdrawals.
pub const L2_BRIDGE_ADDRESS: Address = address!("0000000000000000000000000000000000001001");

/// The caller of system calls (the sender EIP-4788 uses).
pub const SYSTEM_ADDRESS: Address = address!("fffffffffffffffffffffffffffffffffffffffe");

/// The token id of KMC, the L2's native currency: the transfer log's address.
pub const KMC_TOKEN: Address = TRANSFER_LOG_ADDRESS;

/// The token id of ether.
pub const ETH_TOKEN: Address = address!("eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee");

sol! {
    /// A state message from L1 (`StateSender`).
    #[derive(Debug, PartialEq, Eq)]
    event StateSynced(uint256 indexed id, address indexed receiver, bytes data);

    /// A withdrawal started on L2 (`L2Bridge`). `token` is the L1 token id.
    #[derive(Debug, PartialEq, Eq)]
    event WithdrawalInitiated(uint256 indexed nonce, address indexed sender, address indexed recipient, address token, uint256 amount);

    /// The L2 bridge's entry for deposits, called by [`SYSTEM_ADDRESS`].
    function onStateReceive(uint256 id, bytes data);

    /// A withdrawal as the L1 bridge proves it (`BridgeMessages.Withdrawal`).
    #[derive(Debug, PartialEq, Eq)]
    struct Withdrawal {
        uint256 nonce;
        address sender;
        address recipient;
        address token;
        uint256 amount;
    }
}

/// `(string name, string symbol, uint8 decimals)`.
type MetadataAbi = (sol_data::String, sol_data::String, sol_data::Uint<8>);

/// Name, symbol and decimals of an L1 token, carried by its first deposit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenMetadata {
    pub name: String,
    pub symbol: String,
    pub decimals: u8,
}

/// One deposit, as the data of its state message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deposit {
    /// The L1 token id ([`KMC_TOKEN`], [`ETH_TOKEN`] or an ERC-20's L1 address).
    pub token: Address,
    /// Who deposited on L1.
    pub from: Address,
    /// Who is credited on L2.
    pub to: Address,
    pub amount: U256,
    /// Present on the first deposit of an ETH or ERC-20 token.
    pub metadata: Option<TokenMetadata>,
}

/// A state message as a node read it from L1, past its confirmations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L1Deposit {
    pub id: u64,
    /// The message's data (a [`Deposit`], encoded).
    pub data: Bytes,
    /// The L1 block and transaction that emitted it.
    pub l1_block: u64,
    pub l1_tx: B256,
    /// The hash chain through this message ([`next_state_hash`]).
    pub state_hash: B256,
}

/// Why the data of a state message is not a deposit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BridgeError {
    #[error("deposit data is not abi.encode(address, address, address, uint256, bytes): {0}")]
    BadDeposit(String),
    #[error("token metadata is not abi.encode(string, string, uint8): {0}")]
    BadMetadata(String),
}

impl Deposit {
    /// `abi.encode(token, from, to, amount, metadata)`, metadata being
    /// `abi.encode(name, symbol, decimals)` or empty.
    pub fn encode(&self) -> Bytes {
        let metadata = self
            .metadata
            .as_ref()
            .map(|m| {
                Bytes::from(MetadataAbi::abi_encode_params(&(
                    m.name.clone(),
                    m.symbol.clone(),
                    m.decimals,
                )))
            })
            .unwrap_or_default();
        (self.token, self.from, self.to, self.amount, metadata)
            .abi_encode_params()
            .into()
    }

    /// Reads the data of a state message; refuses anything the L1 bridge would not write.
    pub fn decode(data: &[u8]) -> Result<Self, BridgeError> {
        type Params = (Address, Address, Address, U256, Bytes);
        let (token, from, to, amount, metadata) = Params::abi_decode_params_validate(data)
            .map_err(|e| BridgeError::BadDeposit(e.to_string()))?;
        let metadata = if metadata.is_empty() {
            None
        } else {
            let (name, symbol, decimals) = MetadataAbi::abi_decode_params_validate(&metadata)
                .map_err(|e| BridgeError::BadMetadata(e.to_string()))?;
            Some(TokenMetadata {
                name,
                symbol,
                decimals,
            })
        };
        Ok(Self {
            token,
            from,
            to,
            amount,
            metadata,
        })
    }
}

/// The hash chain over state messages: the hash after message `id`, given the hash after
/// `id - 1` (zero before the first):
/// `keccak256(abi.encode(previous, id, receiver, keccak256(data)))`.
pub fn next_state_hash(previous: B256, id: u64, receiver: Address, data: &[u8]) -> B256 {
    keccak256((previous, U256::from(id), receiver, keccak256(data)).abi_encode_params())
}

/// How far the deposit list goes, as a block announces it (ADR 0017): the id of the last
/// deposit and the hash chain ([`next_state_hash`]) through it. Every block after
/// genesis carries one, in its header's `nonce` (the id, big-endian) and `extraData`
/// (the hash; empty while the id is 0). It never goes back, and it goes forward by at
/// most [`MAX_DEPOSITS_PER_ANNOUNCEMENT`] a block. Deposits are applied only up to a
/// watermark announced by a block the stakers finalized, and only up to exactly such a
/// watermark, so every importer checks their data against the agreed hash chain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Watermark {
    pub id: u64,
    pub hash: B256,
}

/// The most new deposits one block may announce on any chain.
pub const MAX_DEPOSITS_PER_ANNOUNCEMENT: u64 = 64;

/// The most new deposits one block may announce on `spec`'s chain: as many as fit an
/// otherwise empty block even if each used all of its gas on precompiles (the most
/// compute units a deposit transaction can take), since deposits are applied up to
/// announced watermarks only and never part of one. At least one.
pub fn announcement_cap(spec: &crate::ChainSpec) -> u64 {
    let by_gas = spec.gas_limit.checked_div(DEPOSIT_TX_GAS).unwrap_or(0);
    let by_compute = spec
        .compute_limit()
        .checked_div(crate::compute::max_tx_compute_units(DEPOSIT_TX_GAS))
        .unwrap_or(0);
    by_gas
        .min(by_compute)
        .clamp(1, MAX_DEPOSITS_PER_ANNOUNCEMENT)
}

impl Watermark {
    /// The watermark a header carries; genesis carries none (id 0).
    pub fn of(header: &alloy::consensus::Header) -> Result<Self, String> {
        if header.number == 0 {
            return Ok(Self::default());
        }
        let id = u64::from_be_bytes(header.nonce.0);
        match (id, header.extra_data.len()) {
            (0, 0) => Ok(Self::default()),
            (0, n) => Err(format!(
                "extra data is {n} bytes, 0 while no deposit is announced"
            )),
            (id, 32) => Ok(Self {
                id,
                hash: B256::from_slice(&header.extra_data),
            }),
            (_, n) => Err(format!(
                "extra data is {n} bytes, the 32-byte deposit hash chain was expected"
            )),
        }
    }

    /// Writes it into `header`'s `nonce` and `extraData`.
    pub fn write(&self, header: &mut alloy::consensus::Header) {
        header.nonce = self.id.to_be_bytes().into();
        header.extra_data = if self.id == 0 {
            Bytes::new()
        } else {
            Bytes::copy_from_slice(self.hash.as_slice())
        };
    }

    /// The watermark after applying `data` (deposits `id + 1, id + 2, ...`).
    pub fn extend<'a>(mut self, data: impl IntoIterator<Item = &'a Bytes>) -> Self {
        for d in data {
            self.id = self.id.saturating_add(1);
            self.hash = next_state_hash(self.hash, self.id, L2_BRIDGE_ADDRESS, d);
        }
        self
    }

    /// Whether `next` may follow `self` in the child block: never back, the same hash
    /// for the same id, at most `cap` ([`announcement_cap`]) more.
    pub fn check_successor(&self, next: &Self, cap: u64) -> Result<(), String> {
        if next.id < self.id {
            return Err(format!(
                "deposit watermark goes back from {} to {}",
                self.id, next.id
            ));
        }
        if next.id == self.id && next.hash != self.hash {
            return Err(format!("deposit watermark {} changes its hash", self.id));
        }
        if next.id.saturating_sub(self.id) > cap {
            return Err(format!(
                "announces {} deposits, at most {cap} are allowed",
                next.id.saturating_sub(self.id)
            ));
        }
        Ok(())
    }
}

impl Withdrawal {
    /// Its leaf in the block's withdrawals tree:
    /// `keccak256(abi.encode(nonce, sender, recipient, token, amount))`.
    pub fn leaf(&self) -> B256 {
        keccak256(self.abi_encode())
    }
}

/// The withdrawal carried by `log`, if it is a `WithdrawalInitiated` event of the L2
/// bridge. The same event from any other contract is not a withdrawal.
pub fn withdrawal_of(log: &Log) -> Option<Withdrawal> {
    if log.address != L2_BRIDGE_ADDRESS
        || log.topics().first() != Some(&WithdrawalInitiated::SIGNATURE_HASH)
    {
        return None;
    }
    let event = WithdrawalInitiated::decode_log_data(&log.data).ok()?;
    Some(Withdrawal {
        nonce: event.nonce,
        sender: event.sender,
        recipient: event.recipient,
        token: event.token,
        amount: event.amount,
    })
}

/// The block's withdrawals, in the order of its logs.
pub fn withdrawals<'a>(logs: impl IntoIterator<Item = &'a Log>) -> Vec<Withdrawal> {
    logs.into_iter().filter_map(withdrawal_of).collect()
}

/// The header's `withdrawalsRoot` for a block with `withdrawals`: the binary Merkle root
/// (the checkpoint format's tree) over their leaves, or Ethereum's empty-trie root when
/// there are none, so a block without withdrawals has the header Ethereum clients expect.
/// (A tree of one or more leaves can never have that root: it would be a keccak256
/// preimage of the empty trie's RLP.)
pub fn withdrawals_root(withdrawals: &[Withdrawal]) -> B256 {
    if withdrawals.is_empty() {
        return EMPTY_ROOT_HASH;
    }
    MerkleTree::from_iter(withdrawals.iter().map(Withdrawal::leaf)).root()
}

/// The header's `withdrawalsRoot` of a block with `receipts`: over the withdrawals in
/// the order of the block's logs.
pub fn block_withdrawals_root(receipts: &[ReceiptEnvelope]) -> B256 {
    withdrawals_root(&withdrawals(receipts.iter().flat_map(|r| r.logs())))
}

/// The gas limit of every deposit transaction: enough for the first deposit of a token
/// (which deploys its child, about 1.3 M gas) with room to spare; the recipient of a
/// native deposit gets at most `L2Bridge.RECIPIENT_GAS` of it.
pub const DEPOSIT_TX_GAS: u64 = 3_000_000;

/// Storage slot of `L2Bridge.lastStateId` (the id of the last deposit applied).
pub const LAST_STATE_ID_SLOT: U256 = U256::ZERO;
/// Storage slot of `L2Bridge.lastStateHash` (the hash chain through it).
pub const LAST_STATE_HASH_SLOT: U256 = U256::from_limbs([1, 0, 0, 0]);

/// The system transaction that applies deposit `id` (its state message's `data`) on a
/// chain with `chain_id`: a legacy (EIP-155) transaction from [`SYSTEM_ADDRESS`] to the
/// L2 bridge calling `onStateReceive(id, data)`, nonce `id - 1`, gas price 0, and an
/// all-zero signature, which no key can make. Everything in it follows from
/// `(chain_id, id, data)`, so every node builds the same bytes and the same hash; an
/// importer rebuilds it to check a block's deposits ([`deposit_of_tx`]).
pub fn deposit_tx(chain_id: u64, id: u64, data: Bytes) -> TxEnvelope {
    let tx = TxLegacy {
        chain_id: Some(chain_id),
        nonce: id.saturating_sub(1),
        gas_price: 0,
        gas_limit: DEPOSIT_TX_GAS,
        to: TxKind::Call(L2_BRIDGE_ADDRESS),
        value: U256::ZERO,
        input: onStateReceiveCall {
            id: U256::from(id),
            data,
        }
        .abi_encode()
        .into(),
    };
    TxEnvelope::Legacy(tx.into_signed(Signature::new(U256::ZERO, U256::ZERO, false)))
}

/// Whether `tx` carries the all-zero signature of a system transaction (its sender is
/// then [`SYSTEM_ADDRESS`], never a recovered key).
pub fn is_system_tx(tx: &TxEnvelope) -> bool {
    let sig = tx.signature();
    sig.r().is_zero() && sig.s().is_zero()
}

/// The deposit id and data that `tx` applies, if it is exactly the deposit transaction
/// [`deposit_tx`] builds for them on `chain_id`.
pub fn deposit_of_tx(chain_id: u64, tx: &TxEnvelope) -> Option<(u64, Bytes)> {
    let TxEnvelope::Legacy(signed) = tx else {
        return None;
    };
    let call = onStateReceiveCall::abi_decode(&signed.tx().input).ok()?;
    let id = u64::try_from(call.id).ok().filter(|id| *id > 0)?;
    let rebuilt = deposit_tx(chain_id, id, call.data.clone());
    (rebuilt.tx_hash() == tx.tx_hash()).then_some((id, call.data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::consensus::Transaction;
    use alloy::primitives::LogData;

    #[test]
    fn deposit_transactions_are_rebuilt_exactly() {
        let data = Bytes::from(vec![1u8, 2, 3]);
        let tx = deposit_tx(7, 5, data.clone());
        assert!(is_system_tx(&tx));
        assert_eq!(tx.nonce(), 4, "nonce = id - 1");
        assert_eq!(deposit_of_tx(7, &tx), Some((5, data.clone())));
        assert_eq!(deposit_of_tx(8, &tx), None, "another chain's");
        // round trip through the block body encoding
        let raw = alloy::eips::eip2718::Encodable2718::encoded_2718(&tx);
        let back =
            <TxEnvelope as alloy::eips::eip2718::Decodable2718>::decode_2718(&mut raw.as_slice())
                .expect("decodes");
        assert_eq!(back.tx_hash(), tx.tx_hash());
        assert_eq!(deposit_of_tx(7, &back), Some((5, data)));
        // the same call with any field changed is not a deposit transaction
        let TxEnvelope::Legacy(signed) = &tx else {
            unreachable!()
        };
        let mut changed = signed.tx().clone();
        changed.gas_limit += 1;
        let forged = TxEnvelope::Legacy(changed.into_signed(*signed.signature()));
        assert_eq!(deposit_of_tx(7, &forged), None);
        assert!(koma_recovers_no_key(&tx));
    }

    /// No key signs as the system: recovery of the all-zero signature fails.
    fn koma_recovers_no_key(tx: &TxEnvelope) -> bool {
        use alloy::consensus::transaction::SignerRecoverable;
        tx.recover_signer().is_err()
    }

    fn event_log(emitter: Address, w: &Withdrawal) -> Log {
        let event = WithdrawalInitiated {
            nonce: w.nonce,
            sender: w.sender,
            recipient: w.recipient,
            token: w.token,
            amount: w.amount,
        };
        Log {
            address: emitter,
            data: event.encode_log_data(),
        }
    }

    fn withdrawal(nonce: u64) -> Withdrawal {
        Withdrawal {
            nonce: U256::from(nonce),
            sender: Address::with_last_byte(1),
            recipient: Address::with_last_byte(2),
            token: KMC_TOKEN,
            amount: U256::from(1000 + nonce),
        }
    }

    #[test]
    fn only_the_l2_bridge_emits_withdrawals() {
        let w = withdrawal(3);
        let ours = event_log(L2_BRIDGE_ADDRESS, &w);
        let theirs = event_log(Address::with_last_byte(0x99), &w);
        let other_event = Log {
            address: L2_BRIDGE_ADDRESS,
            data: LogData::new_unchecked(vec![B256::ZERO], Bytes::new()),
        };
        assert_eq!(withdrawal_of(&ours), Some(w.clone()));
        assert_eq!(withdrawal_of(&theirs), None);
        assert_eq!(withdrawal_of(&other_event), None);
        let all = withdrawals([&theirs, &ours, &other_event]);
        assert_eq!(all, vec![w.clone()]);
        assert_eq!(withdrawals_root(&all), w.leaf(), "one leaf is its own root");
    }

    #[test]
    fn no_withdrawals_keep_the_empty_trie_root() {
        assert_eq!(withdrawals_root(&[]), EMPTY_ROOT_HASH);
        let two = [withdrawal(0), withdrawal(1)];
        let root = withdrawals_root(&two);
        assert_ne!(root, EMPTY_ROOT_HASH);
        assert_eq!(
            root,
            keccak256([two[0].leaf(), two[1].leaf()].concat()),
            "parent = keccak256(left ‖ right)"
        );
    }

    #[test]
    fn deposits_round_trip_and_garbage_is_refused() {
        let d = Deposit {
            token: ETH_TOKEN,
            from: Address::with_last_byte(1),
            to: Address::with_last_byte(2),
            amount: U256::from(5),
            metadata: Some(TokenMetadata {
                name: "Ether".into(),
                symbol: "ETH".into(),
                decimals: 18,
            }),
        };
        assert_eq!(Deposit::decode(&d.encode()), Ok(d.clone()));
        let plain = Deposit {
            metadata: None,
            ..d
        };
        assert_eq!(Deposit::decode(&plain.encode()), Ok(plain.clone()));
        assert!(matches!(
            Deposit::decode(&[1, 2, 3]),
            Err(BridgeError::BadDeposit(_))
        ));
        let mut bad_meta = (
            plain.token,
            plain.from,
            plain.to,
            plain.amount,
            Bytes::from(vec![7u8; 5]),
        )
            .abi_encode_params();
        assert!(matches!(
            Deposit::decode(&bad_meta),
            Err(BridgeError::BadMetadata(_))
        ));
        bad_meta.truncate(100);
        assert!(Deposit::decode(&bad_meta).is_err());
    }
}
