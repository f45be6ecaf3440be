//! Transaction sender recovery.

use alloy::consensus::TxEnvelope;
use alloy_primitives::{Address, B256, B512, U256};

/// Half the secp256k1 group order: EIP-2 signatures must have `s <= N/2`.
const SECP256K1N_HALF: U256 = U256::from_be_bytes([
    0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0x5D, 0x57, 0x6E, 0x73, 0x57, 0xA4, 0x50, 0x1D, 0xDF, 0xE9, 0x2F, 0x46, 0x68, 0x1B, 0x20, 0xA0,
]);

/// A signature that does not recover to a sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid sender")]
pub struct InvalidSignature;

/// Recovers the sender of `tx`, rejecting high-s signatures (EIP-2).
///
/// Uses revm's `ecrecover`, which runs on libsecp256k1 (already linked for the EVM
/// precompile) and is several times faster than the pure-Rust k256 path alloy would
/// take: recovery is most of the cost of admitting a transaction or importing a block.
pub fn recover_sender(tx: &TxEnvelope) -> Result<Address, InvalidSignature> {
    recover_prehash(&tx.signature_hash(), tx.signature())
}

/// The address that signed `digest` (a 32-byte prehash), on libsecp256k1; high-s
/// signatures are refused (EIP-2), so every message has one valid signature form.
pub fn recover_prehash(
    digest: &B256,
    signature: &alloy_primitives::Signature,
) -> Result<Address, InvalidSignature> {
    if signature.s() > SECP256K1N_HALF {
        return Err(InvalidSignature);
    }
    let mut compact = [0u8; 64];
    compact[..32].copy_from_slice(&signature.r().to_be_bytes::<32>());
    compact[32..].copy_from_slice(&signature.s().to_be_bytes::<32>());
    let recovery_id = u8::from(signature.v());
    revm::precompile::secp256k1::ecrecover(&B512::from(compact), recovery_id, digest)
        .map(Address::from_word)
        .map_err(|_| InvalidSignature)
}
