//! Unit signature verification on libsecp256k1.

use alloy_primitives::B256;

/// Unit signatures checked on libsecp256k1 (the library the EVM precompile links), a
/// few times faster than the pure-Rust `Secp256k1Verifier` and with the same rule: the
/// 65-byte signature must recover to the creator's address. High-s signatures are
/// refused, so a unit has one valid signature.
#[derive(Debug, Clone, Copy, Default)]
pub struct LibSecp256k1Verifier;

impl koma_consensus::UnitVerifier for LibSecp256k1Verifier {
    fn verify(&self, key: &alloy_primitives::Address, hash: &B256, signature: &[u8]) -> bool {
        alloy_primitives::Signature::try_from(signature)
            .ok()
            .and_then(|sig| koma_evm::recover_prehash(hash, &sig).ok())
            .is_some_and(|a| a == *key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::signers::local::PrivateKeySigner;
    use koma_consensus::{Secp256k1Verifier, UnitSigner, UnitVerifier};

    #[test]
    fn libsecp_and_k256_verifiers_agree() {
        let key = PrivateKeySigner::random();
        let addr = UnitSigner::address(&key);
        for i in 0..50u8 {
            let hash = alloy_primitives::keccak256([i]);
            let sig = UnitSigner::sign(&key, &hash);
            assert!(LibSecp256k1Verifier.verify(&addr, &hash, &sig));
            assert!(Secp256k1Verifier.verify(&addr, &hash, &sig));
            let other = alloy_primitives::keccak256([i, i]);
            assert!(!LibSecp256k1Verifier.verify(&addr, &other, &sig));
            let mut bad = sig.to_vec();
            bad[64] ^= 1;
            assert_eq!(
                LibSecp256k1Verifier.verify(&addr, &hash, &bad),
                Secp256k1Verifier.verify(&addr, &hash, &bad)
            );
            assert!(!LibSecp256k1Verifier.verify(&addr, &hash, &sig[..64]));
        }
    }
}
