//! `tests/vectors/equivocation.json` (made with JS noble by
//! `contracts/scripts/equivocation-vectors.js`, independent of this crate): the units decode
//! to what they encode, the instance id is the era's, the evidence verifies, and this
//! crate's signer produces the same signatures. The root contract checks the same file
//! (contracts/test/Slashing.t.sol).

use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::{Address, B256, Bytes};
use koma_consensus::era::instance_id;
use koma_consensus::unit::{Evidence, Secp256k1Verifier, SignedUnit, UnitSigner};

fn vector() -> serde_json::Value {
    serde_json::from_str(include_str!("../../../tests/vectors/equivocation.json")).unwrap()
}

fn bytes(v: &serde_json::Value) -> Bytes {
    v.as_str().unwrap().parse().unwrap()
}

#[test]
fn the_evidence_vector_decodes_verifies_and_signs_alike() {
    let v = vector();
    let chain: B256 = v["chain"].as_str().unwrap().parse().unwrap();
    let key_block: B256 = v["keyBlock"].as_str().unwrap().parse().unwrap();
    let instance: B256 = v["instanceId"].as_str().unwrap().parse().unwrap();
    let signer: Address = v["signer"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        instance_id(&chain, v["era"].as_u64().unwrap(), &key_block),
        instance
    );

    let key: PrivateKeySigner = v["privateKey"].as_str().unwrap().parse().unwrap();
    assert_eq!(UnitSigner::address(&key), signer);
    let evidence = Evidence::from_bytes(&bytes(&v["evidence"])).unwrap();
    let units = v["units"].as_array().unwrap();
    for (unit, expected) in [&evidence.a, &evidence.b].into_iter().zip(units) {
        assert_eq!(
            Bytes::from(unit.unit.encode()),
            bytes(&expected["encoding"])
        );
        assert_eq!(
            unit.hash(),
            expected["hash"].as_str().unwrap().parse::<B256>().unwrap()
        );
        assert_eq!(unit.signature, bytes(&expected["signature"]));
        // RFC 6979 on both sides: this crate's signer makes the same bytes
        assert_eq!(UnitSigner::sign(&key, &unit.hash()), unit.signature);
        let mut wire = unit.unit.encode();
        wire.push(65);
        wire.extend_from_slice(&unit.signature);
        assert_eq!(SignedUnit::from_bytes(&wire).unwrap(), *unit);
    }
    assert_eq!(evidence.creator(), v["creator"].as_u64().unwrap() as u32);
    assert_eq!(evidence.a.unit.seq, v["seq"].as_u64().unwrap());
    assert!(evidence.verify(&signer, &instance, &Secp256k1Verifier));
    assert!(!evidence.verify(&Address::repeat_byte(1), &instance, &Secp256k1Verifier));
    assert!(!evidence.verify(&signer, &B256::repeat_byte(1), &Secp256k1Verifier));
}
