use super::*;
use alloy_primitives::{U256, ruint::Uint};
use proptest::prelude::*;

type U384 = Uint<384, 6>;

/// The order r of G1 and G2.
const R: U256 = alloy_primitives::uint!(
    0x73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001_U256
);

fn key(n: u64) -> SecretKey {
    SecretKey::from_bytes(&U256::from(n).to_be_bytes()).unwrap()
}

fn message(byte: u8) -> B256 {
    B256::repeat_byte(byte)
}

/// An affine point of E(Fp): y² = x³ + 4, outside G1 (the cofactor is about 2^125, so
/// the first point found is not in the subgroup; the test checks it with blst anyway).
fn g1_point_outside_subgroup() -> [u8; SIGNATURE_EIP2537_LEN] {
    let p = U384::from_be_slice(&P);
    let exponent = (p + U384::from(1)) / U384::from(4);
    let mut x = U384::from(1);
    loop {
        let rhs = x.pow_mod(U384::from(3), p).add_mod(U384::from(4), p);
        let y = rhs.pow_mod(exponent, p);
        if y.mul_mod(y, p) == rhs {
            let mut out = [0u8; SIGNATURE_EIP2537_LEN];
            out[16..64].copy_from_slice(&x.to_be_bytes::<48>());
            out[80..128].copy_from_slice(&y.to_be_bytes::<48>());
            return out;
        }
        x += U384::from(1);
    }
}

#[test]
fn secret_key_bounds() {
    assert_eq!(
        SecretKey::from_bytes(&[0; 32]).unwrap_err(),
        BlsError::InvalidSecretKey
    );
    assert_eq!(
        SecretKey::from_bytes(&R.to_be_bytes()).unwrap_err(),
        BlsError::InvalidSecretKey
    );
    assert!(SecretKey::from_bytes(&(R - U256::from(1)).to_be_bytes()).is_ok());
    assert_eq!(*key(7).to_bytes(), U256::from(7).to_be_bytes::<32>());
    assert_eq!(
        SecretKey::key_gen(&[1; 31]).unwrap_err(),
        BlsError::ShortKeyMaterial(31)
    );
    let a = SecretKey::key_gen(&[1; 32]).unwrap();
    let b = SecretKey::key_gen(&[1; 32]).unwrap();
    assert_eq!(*a.to_bytes(), *b.to_bytes());
    let c = SecretKey::random(&mut rand::rng());
    assert_ne!(*a.to_bytes(), *c.to_bytes());
}

#[test]
fn debug_hides_the_secret() {
    let sk = SecretKey::from_bytes(&[0x42; 32]).unwrap();
    let printed = format!("{sk:?} {sk:#?}");
    assert!(!printed.contains("42"), "{printed}");
    assert!(!printed.to_lowercase().contains("4242"));
    assert_eq!(format!("{sk:?}"), "SecretKey(<redacted>)");
}

#[test]
fn sign_and_verify() {
    let sk = key(12345);
    let pk = sk.public_key();
    let sig = sk.sign(&message(1));
    assert!(pk.verify(&message(1), &sig));
    // A tampered message, another key, the other ciphersuite.
    assert!(!pk.verify(&message(2), &sig));
    assert!(!key(12346).public_key().verify(&message(1), &sig));
    assert!(!pk.verify_pop(&message(1), &sig));
    let pop = sk.sign_pop(&message(1));
    assert_ne!(pop, sig);
    assert!(pk.verify_pop(&message(1), &pop));
    assert!(!pk.verify(&message(1), &pop));
}

#[test]
fn encodings_round_trip() {
    let sk = key(99);
    let pk = sk.public_key();
    let sig = sk.sign(&message(3));
    assert_eq!(PublicKey::from_compressed(&pk.to_compressed()).unwrap(), pk);
    assert_eq!(
        PublicKey::from_uncompressed(&pk.to_uncompressed()).unwrap(),
        pk
    );
    assert_eq!(PublicKey::from_eip2537(&pk.to_eip2537()).unwrap(), pk);
    assert_eq!(
        Signature::from_compressed(&sig.to_compressed()).unwrap(),
        sig
    );
    assert_eq!(
        Signature::from_uncompressed(&sig.to_uncompressed()).unwrap(),
        sig
    );
    assert_eq!(Signature::from_eip2537(&sig.to_eip2537()).unwrap(), sig);
    // EIP-2537 is ZCash with padding and, for Fp2, the halves swapped.
    let (z, e) = (pk.to_uncompressed(), pk.to_eip2537());
    assert_eq!(e[16..64], z[48..96]);
    assert_eq!(e[80..128], z[0..48]);
    assert_eq!(e[144..192], z[144..192]);
    assert_eq!(e[208..256], z[96..144]);
    let (z, e) = (sig.to_uncompressed(), sig.to_eip2537());
    assert_eq!((&e[16..64], &e[80..128]), (&z[0..48], &z[48..96]));
    assert!(format!("{pk:?}").starts_with("PublicKey(0x"));
}

#[test]
fn wrong_lengths_are_refused() {
    let pk = key(5).public_key().to_eip2537();
    assert_eq!(
        PublicKey::from_eip2537(&pk[..255]).unwrap_err(),
        BlsError::BadLength {
            kind: PointKind::PublicKey,
            expected: 256,
            got: 255
        }
    );
    assert_eq!(
        Signature::from_eip2537(&pk).unwrap_err(),
        BlsError::BadLength {
            kind: PointKind::Signature,
            expected: 128,
            got: 256
        }
    );
    assert!(matches!(
        PublicKey::from_compressed(&[0xa0; 95]),
        Err(BlsError::BadLength { .. })
    ));
    assert!(matches!(
        Signature::from_compressed(&[0xa0; 49]),
        Err(BlsError::BadLength { .. })
    ));
    assert!(matches!(
        Signature::from_uncompressed(&[]),
        Err(BlsError::BadLength { .. })
    ));
}

#[test]
fn infinity_is_refused_in_every_encoding() {
    let pk = PointKind::PublicKey;
    let sig = PointKind::Signature;
    assert_eq!(
        PublicKey::from_eip2537(&[0; 256]).unwrap_err(),
        BlsError::Infinity { kind: pk }
    );
    assert_eq!(
        Signature::from_eip2537(&[0; 128]).unwrap_err(),
        BlsError::Infinity { kind: sig }
    );
    let mut compressed = [0u8; 96];
    compressed[0] = 0xc0;
    assert_eq!(
        PublicKey::from_compressed(&compressed).unwrap_err(),
        BlsError::Infinity { kind: pk }
    );
    assert_eq!(
        Signature::from_compressed(&compressed[..48]).unwrap_err(),
        BlsError::Infinity { kind: sig }
    );
    let mut uncompressed = [0u8; 192];
    uncompressed[0] = 0x40;
    assert_eq!(
        PublicKey::from_uncompressed(&uncompressed).unwrap_err(),
        BlsError::Infinity { kind: pk }
    );
    assert_eq!(
        Signature::from_uncompressed(&uncompressed[..96]).unwrap_err(),
        BlsError::Infinity { kind: sig }
    );
}

#[test]
fn eip2537_padding_and_range_are_checked() {
    let sig = key(8).sign(&message(4)).to_eip2537();
    for offset in [0, 15, 64, 79] {
        let mut bad = sig;
        bad[offset] = 1;
        assert_eq!(
            Signature::from_eip2537(&bad).unwrap_err(),
            BlsError::NonZeroPadding {
                kind: PointKind::Signature,
                offset: offset / 64 * 64
            }
        );
    }
    let pk = key(8).public_key().to_eip2537();
    let mut bad = pk;
    bad[192] = 0x80;
    assert_eq!(
        PublicKey::from_eip2537(&bad).unwrap_err(),
        BlsError::NonZeroPadding {
            kind: PointKind::PublicKey,
            offset: 192
        }
    );
    // x = p, and x + p (which a reduction mod p would take for x): both refused, although
    // x + p has the top bits blst reads as flags in a ZCash encoding.
    let p = U384::from_be_slice(&P);
    let x = U384::from_be_slice(&sig[16..64]);
    for value in [p, x + p, U384::from(1) << 383] {
        let mut bad = sig;
        bad[16..64].copy_from_slice(&value.to_be_bytes::<48>());
        assert_eq!(
            Signature::from_eip2537(&bad).unwrap_err(),
            BlsError::NonCanonical {
                kind: PointKind::Signature,
                offset: 0
            }
        );
    }
    let mut bad = pk;
    bad[208..256].copy_from_slice(&P);
    assert_eq!(
        PublicKey::from_eip2537(&bad).unwrap_err(),
        BlsError::NonCanonical {
            kind: PointKind::PublicKey,
            offset: 192
        }
    );
}

#[test]
fn points_off_the_curve_or_subgroup_are_refused() {
    let mut sig = key(9).sign(&message(5)).to_eip2537();
    sig[127] ^= 1;
    assert_eq!(
        Signature::from_eip2537(&sig).unwrap_err(),
        BlsError::NotOnCurve {
            kind: PointKind::Signature
        }
    );
    let outside = g1_point_outside_subgroup();
    assert_eq!(
        Signature::from_eip2537(&outside).unwrap_err(),
        BlsError::NotInSubgroup {
            kind: PointKind::Signature
        }
    );
    let mut zcash = [0u8; 96];
    zcash[..48].copy_from_slice(&outside[16..64]);
    zcash[48..].copy_from_slice(&outside[80..128]);
    assert_eq!(
        Signature::from_uncompressed(&zcash).unwrap_err(),
        BlsError::NotInSubgroup {
            kind: PointKind::Signature
        }
    );
}

#[test]
fn fp2_halves_in_zcash_order_are_refused() {
    // A key written with c1 first, as blst serialises it, is not the key.
    let sk = key(10);
    let pk = sk.public_key();
    let zcash_order: Vec<u8> = pk
        .to_uncompressed()
        .chunks(48)
        .flat_map(|fp| [0u8; 16].into_iter().chain(fp.iter().copied()))
        .collect();
    assert_eq!(
        PublicKey::from_eip2537(&zcash_order).unwrap_err(),
        BlsError::NotOnCurve {
            kind: PointKind::PublicKey
        }
    );
    // Swapping only x's halves or only y's is refused too.
    let eip = pk.to_eip2537();
    for (a, b) in [(0, 64), (128, 192)] {
        let mut swapped = eip;
        swapped[a..a + 64].copy_from_slice(&eip[b..b + 64]);
        swapped[b..b + 64].copy_from_slice(&eip[a..a + 64]);
        assert_eq!(
            PublicKey::from_eip2537(&swapped).unwrap_err(),
            BlsError::NotOnCurve {
                kind: PointKind::PublicKey
            }
        );
    }
    let _ = sk;
}

#[test]
fn aggregates() {
    let keys: Vec<SecretKey> = (1..=5).map(key).collect();
    let pks: Vec<PublicKey> = keys.iter().map(SecretKey::public_key).collect();
    let msg = message(7);
    let sigs: Vec<Signature> = keys.iter().map(|sk| sk.sign(&msg)).collect();
    let aggregate = aggregate_signatures(&sigs).unwrap();
    let aggregate_key = PublicKey::aggregate(&pks).unwrap();
    assert!(aggregate_key.verify(&msg, &aggregate));
    assert!(fast_aggregate_verify(&msg, &aggregate, &pks));
    // The sum of keys 1..=5 is the key of 15.
    assert_eq!(aggregate_key, key(15).public_key());
    assert_eq!(aggregate, key(15).sign(&msg));
    // A missing signer, a missing key, another message.
    assert!(!fast_aggregate_verify(
        &msg,
        &aggregate_signatures(&sigs[..4]).unwrap(),
        &pks
    ));
    assert!(!fast_aggregate_verify(&msg, &aggregate, &pks[..4]));
    assert!(!fast_aggregate_verify(&message(8), &aggregate, &pks));
    assert!(!fast_aggregate_verify(&msg, &aggregate, &[]));
    assert_eq!(
        aggregate_signatures(&[]).unwrap_err(),
        BlsError::EmptyAggregate
    );
    assert_eq!(
        PublicKey::aggregate(&[]).unwrap_err(),
        BlsError::EmptyAggregate
    );
    // sk and r - sk: the keys and signatures cancel out.
    let minus = SecretKey::from_bytes(&(R - U256::from(3)).to_be_bytes()).unwrap();
    assert_eq!(
        PublicKey::aggregate(&[key(3).public_key(), minus.public_key()]).unwrap_err(),
        BlsError::Infinity {
            kind: PointKind::PublicKey
        }
    );
    assert_eq!(
        aggregate_signatures(&[key(3).sign(&msg), minus.sign(&msg)]).unwrap_err(),
        BlsError::Infinity {
            kind: PointKind::Signature
        }
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn sign_verify_round_trip(ikm in any::<[u8; 32]>(), msg in any::<[u8; 32]>(), flip in 0usize..256) {
        let sk = SecretKey::key_gen(&ikm).unwrap();
        let pk = sk.public_key();
        let msg = B256::from(msg);
        let sig = sk.sign(&msg);
        prop_assert!(pk.verify(&msg, &sig));
        let mut tampered = msg;
        tampered[flip / 8] ^= 1 << (flip % 8);
        prop_assert!(!pk.verify(&tampered, &sig));
        prop_assert_eq!(PublicKey::from_eip2537(&pk.to_eip2537()).unwrap(), pk);
        prop_assert_eq!(Signature::from_eip2537(&sig.to_eip2537()).unwrap(), sig);
        prop_assert_eq!(Signature::from_compressed(&sig.to_compressed()).unwrap(), sig);
    }
}
