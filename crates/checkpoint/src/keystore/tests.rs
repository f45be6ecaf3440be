use super::*;
use crate::bls::PUBLIC_KEY_COMPRESSED_LEN;
use rand::{SeedableRng, rngs::StdRng};
use serde_json::json;

/// The password of the EIP's test vectors, and what it becomes once processed.
const VECTOR_PASSWORD: &str = "𝔱𝔢𝔰𝔱𝔭𝔞𝔰𝔰𝔴𝔬𝔯𝔡🔑";
const VECTOR_ENCODED_PASSWORD: &str = "7465737470617373776f7264f09f9491";
const VECTOR_SECRET: &str = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f";

/// EIP-2335, "Scrypt Test Vector" (ethereum/ERCs, `ERCS/erc-2335.md`), verbatim.
const SCRYPT_VECTOR: &str = r#"{
    "crypto": {
        "kdf": {
            "function": "scrypt",
            "params": {
                "dklen": 32,
                "n": 262144,
                "p": 1,
                "r": 8,
                "salt": "d4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3"
            },
            "message": ""
        },
        "checksum": {
            "function": "sha256",
            "params": {},
            "message": "d2217fe5f3e9a1e34581ef8a78f7c9928e436d36dacc5e846690a5581e8ea484"
        },
        "cipher": {
            "function": "aes-128-ctr",
            "params": {
                "iv": "264daa3f303d7259501c93d997d84fe6"
            },
            "message": "06ae90d55fe0a6e9c5c3bc5b170827b2e5cce3929ed3f116c2811e6366dfe20f"
        }
    },
    "description": "This is a test keystore that uses scrypt to secure the secret.",
    "pubkey": "9612d7a727c9d0a22e185a1c768478dfe919cada9266988cb32359c11f2b7b27f4ae4040902382ae2910c15e2b420d07",
    "path": "m/12381/60/3141592653/589793238",
    "uuid": "1d85ae20-35c5-4611-98e8-aa14a633906f",
    "version": 4
}"#;

/// EIP-2335, "PBKDF2 Test Vector", verbatim.
const PBKDF2_VECTOR: &str = r#"{
    "crypto": {
        "kdf": {
            "function": "pbkdf2",
            "params": {
                "dklen": 32,
                "c": 262144,
                "prf": "hmac-sha256",
                "salt": "d4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3"
            },
            "message": ""
        },
        "checksum": {
            "function": "sha256",
            "params": {},
            "message": "8a9f5d9912ed7e75ea794bc5a89bca5f193721d30868ade6f73043c6ea6febf1"
        },
        "cipher": {
            "function": "aes-128-ctr",
            "params": {
                "iv": "264daa3f303d7259501c93d997d84fe6"
            },
            "message": "cee03fde2af33149775b7223e7845e4fb2c8ae1792e5f99fe9ecf474cc8c16ad"
        }
    },
    "description": "This is a test keystore that uses PBKDF2 to secure the secret.",
    "pubkey": "9612d7a727c9d0a22e185a1c768478dfe919cada9266988cb32359c11f2b7b27f4ae4040902382ae2910c15e2b420d07",
    "path": "m/12381/60/0/0",
    "uuid": "64625def-3331-4eea-ab6f-782f3ed16a83",
    "version": 4
}"#;

/// Parameters cheap enough for debug-build tests; never for real keys.
const CHEAP_SCRYPT: Kdf = Kdf::Scrypt { n: 16, r: 8, p: 1 };
const CHEAP_PBKDF2: Kdf = Kdf::Pbkdf2 { c: 16 };

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn cheap_keystore(kdf: Kdf, password: &str) -> (SecretKey, Keystore) {
    let mut rng = rng(7);
    let secret = SecretKey::random(&mut rng);
    let keystore = encrypt(&secret, password, &mut rng, kdf).unwrap();
    (secret, keystore)
}

fn check_vector(json: &str, kdf: Kdf) {
    let keystore = Keystore::from_json(json).unwrap();
    assert_eq!(keystore.kdf().unwrap(), kdf);
    let secret = decrypt_secret_bytes(&keystore, VECTOR_PASSWORD).unwrap();
    assert_eq!(hex::encode(secret.as_slice()), VECTOR_SECRET);
    // The vector's pubkey is a 48-byte min_pk key: `decrypt` refuses it before the KDF.
    assert!(matches!(
        decrypt(&keystore, VECTOR_PASSWORD),
        Err(KeystoreError::BadPubkey(BlsError::BadLength {
            expected: PUBLIC_KEY_COMPRESSED_LEN,
            got: 48,
            ..
        }))
    ));
    // The parsed keystore serialises back to the same JSON value.
    let reparsed: Value = serde_json::from_str(&keystore.to_json().unwrap()).unwrap();
    assert_eq!(reparsed, serde_json::from_str::<Value>(json).unwrap());
}

#[test]
fn eip2335_scrypt_vector() {
    check_vector(SCRYPT_VECTOR, Kdf::SCRYPT);
}

#[test]
fn eip2335_pbkdf2_vector() {
    check_vector(PBKDF2_VECTOR, Kdf::PBKDF2);
}

#[test]
fn password_processing_as_the_eip() {
    assert_eq!(
        hex::encode(process_password(VECTOR_PASSWORD).as_slice()),
        VECTOR_ENCODED_PASSWORD
    );
    // C0, Delete and C1 codes go, space stays; NFKD before stripping.
    assert_eq!(
        process_password("\u{0}a\u{1f}b c\u{7f}\u{80}d\u{9f}\u{a0}").as_slice(),
        b"ab cd " // U+00A0 (no-break space) is NFKD-equivalent to a space
    );
    assert_eq!(
        process_password("ﬁ\u{e9}").as_slice(),
        "fie\u{301}".as_bytes()
    );
    assert!(process_password("").is_empty());
}

#[test]
fn round_trip_both_kdfs() {
    for kdf in [CHEAP_SCRYPT, CHEAP_PBKDF2] {
        let (secret, keystore) = cheap_keystore(kdf, "correct horse");
        let json = keystore.to_json().unwrap();
        let parsed = Keystore::from_json(&json).unwrap();
        assert_eq!(parsed, keystore);
        assert_eq!(parsed.kdf().unwrap(), kdf);
        assert_eq!(parsed.public_key().unwrap(), secret.public_key());
        let decrypted = decrypt(&parsed, "correct horse").unwrap();
        assert_eq!(*decrypted.to_bytes(), *secret.to_bytes());
        assert_eq!(
            *decrypt_secret_bytes(&parsed, "correct horse").unwrap(),
            *secret.to_bytes()
        );
    }
}

#[test]
fn encrypt_writes_the_eip_schema() {
    let (secret, keystore) = cheap_keystore(CHEAP_SCRYPT, "pw");
    let value: Value = serde_json::from_str(&keystore.to_json().unwrap()).unwrap();
    let crypto = &value["crypto"];
    assert_eq!(crypto["kdf"]["function"], "scrypt");
    assert_eq!(
        crypto["kdf"]["params"],
        json!({
            "dklen": 32, "n": 16, "p": 1, "r": 8,
            "salt": keystore.crypto.kdf.params["salt"],
        })
    );
    assert_eq!(crypto["kdf"]["message"], "");
    assert_eq!(crypto["checksum"]["function"], "sha256");
    assert_eq!(crypto["checksum"]["params"], json!({}));
    assert_eq!(crypto["cipher"]["function"], "aes-128-ctr");
    assert_eq!(crypto["cipher"]["params"]["iv"].as_str().unwrap().len(), 32);
    assert_eq!(crypto["cipher"]["message"].as_str().unwrap().len(), 64);
    assert_eq!(
        value["pubkey"],
        hex::encode(secret.public_key().to_compressed())
    );
    assert_eq!(value["path"], "");
    assert_eq!(value["version"], 4);
    assert!(value.get("description").is_none());
    let uuid = uuid::Uuid::parse_str(value["uuid"].as_str().unwrap()).unwrap();
    assert_eq!(uuid.get_version_num(), 4);

    let (_, pbkdf2) = cheap_keystore(CHEAP_PBKDF2, "pw");
    assert_eq!(
        pbkdf2.crypto.kdf.params.keys().collect::<Vec<_>>(),
        ["c", "dklen", "prf", "salt"]
    );
    assert_eq!(pbkdf2.crypto.kdf.params["prf"], "hmac-sha256");
}

#[test]
fn same_seed_same_keystore() {
    let (_, a) = cheap_keystore(CHEAP_SCRYPT, "pw");
    let (_, b) = cheap_keystore(CHEAP_SCRYPT, "pw");
    assert_eq!(a, b);
    let secret = SecretKey::random(&mut rng(1));
    let c = encrypt(&secret, "pw", &mut rng(2), CHEAP_SCRYPT).unwrap();
    let d = encrypt(&secret, "pw", &mut rng(3), CHEAP_SCRYPT).unwrap();
    assert_ne!(c.crypto.kdf.params["salt"], d.crypto.kdf.params["salt"]);
    assert_ne!(c.crypto.cipher.params["iv"], d.crypto.cipher.params["iv"]);
    assert_ne!(c.uuid, d.uuid);
}

#[test]
fn wrong_password_refused() {
    for kdf in [CHEAP_SCRYPT, CHEAP_PBKDF2] {
        let (_, keystore) = cheap_keystore(kdf, "hunter2");
        let err = decrypt(&keystore, "hunter3").unwrap_err();
        assert!(matches!(err, KeystoreError::WrongPassword));
        assert!(!err.to_string().contains("hunter"));
        assert!(!format!("{err:?}").contains("hunter"));
        assert!(matches!(
            decrypt_secret_bytes(&keystore, ""),
            Err(KeystoreError::WrongPassword)
        ));
    }
}

#[test]
fn tampered_keystore_refused_by_the_checksum() {
    let (_, keystore) = cheap_keystore(CHEAP_SCRYPT, "pw");
    let flip = |text: &str| {
        let mut bytes = hex::decode(text).unwrap();
        bytes[0] ^= 1;
        hex::encode(bytes)
    };

    let mut tampered = keystore.clone();
    tampered.crypto.cipher.message = flip(&keystore.crypto.cipher.message);
    assert!(matches!(
        decrypt(&tampered, "pw"),
        Err(KeystoreError::WrongPassword)
    ));

    let mut tampered = keystore.clone();
    tampered.crypto.checksum.message = flip(&keystore.crypto.checksum.message);
    assert!(matches!(
        decrypt(&tampered, "pw"),
        Err(KeystoreError::WrongPassword)
    ));

    let mut tampered = keystore.clone();
    let salt = flip(keystore.crypto.kdf.params["salt"].as_str().unwrap());
    tampered
        .crypto
        .kdf
        .params
        .insert("salt".into(), salt.into());
    assert!(matches!(
        decrypt(&tampered, "pw"),
        Err(KeystoreError::WrongPassword)
    ));

    // The IV is not covered by the checksum (as in the EIP); a changed IV decrypts to
    // another secret, which the pubkey check catches.
    let mut tampered = keystore.clone();
    tampered.crypto.cipher.params.insert(
        "iv".into(),
        flip(keystore.crypto.cipher.params["iv"].as_str().unwrap()).into(),
    );
    assert!(matches!(
        decrypt(&tampered, "pw"),
        Err(KeystoreError::PubkeyMismatch { .. } | KeystoreError::InvalidSecretKey)
    ));
}

#[test]
fn control_characters_and_nfkd_do_not_change_the_key() {
    let (secret, keystore) = cheap_keystore(CHEAP_PBKDF2, "pass word");
    for password in [
        "pass word",
        "\u{0}pa\u{7}ss\u{7f} wo\u{85}rd\n",
        "\u{1b}pass\u{9f} word\r\u{0}",
    ] {
        let decrypted = decrypt(&keystore, password).unwrap();
        assert_eq!(*decrypted.to_bytes(), *secret.to_bytes());
    }
    assert!(matches!(
        decrypt(&keystore, "password"),
        Err(KeystoreError::WrongPassword)
    ));

    // Composed and decomposed forms, and compatibility forms, are one password.
    let (secret, keystore) = cheap_keystore(CHEAP_SCRYPT, "caf\u{e9} ﬁ");
    let decrypted = decrypt(&keystore, "cafe\u{301} fi").unwrap();
    assert_eq!(*decrypted.to_bytes(), *secret.to_bytes());
}

#[test]
fn pubkey_must_match_the_secret() {
    let (secret, mut keystore) = cheap_keystore(CHEAP_SCRYPT, "pw");
    let other = SecretKey::random(&mut rng(99)).public_key();
    keystore.pubkey = hex::encode(other.to_compressed());
    match decrypt(&keystore, "pw") {
        Err(KeystoreError::PubkeyMismatch { stored, derived }) => {
            assert_eq!(stored, keystore.pubkey);
            assert_eq!(derived, hex::encode(secret.public_key().to_compressed()));
        }
        other => panic!("expected a pubkey mismatch, got {other:?}"),
    }
    // The EIP's decryption alone does not read the pubkey.
    assert_eq!(
        *decrypt_secret_bytes(&keystore, "pw").unwrap(),
        *secret.to_bytes()
    );

    keystore.pubkey = "zz".into();
    assert!(matches!(
        decrypt(&keystore, "pw"),
        Err(KeystoreError::NotHex { field: "pubkey" })
    ));
    let mut infinity = [0u8; PUBLIC_KEY_COMPRESSED_LEN];
    infinity[0] = 0xc0;
    keystore.pubkey = hex::encode(infinity);
    assert!(matches!(
        decrypt(&keystore, "pw"),
        Err(KeystoreError::BadPubkey(BlsError::Infinity { .. }))
    ));
}

/// The error `from_json` gives for `base` after `edit`; `decrypt` must refuse the same
/// keystore when it is built in code.
fn refused(base: &Keystore, edit: impl FnOnce(&mut Value)) -> KeystoreError {
    let mut value = serde_json::to_value(base).unwrap();
    edit(&mut value);
    if let Ok(keystore) = serde_json::from_value::<Keystore>(value.clone()) {
        assert!(decrypt(&keystore, "pw").is_err());
    }
    Keystore::from_json(&value.to_string()).unwrap_err()
}

#[test]
fn refuses_malformed_keystores() {
    use KeystoreError as E;
    let (_, scrypt) = cheap_keystore(CHEAP_SCRYPT, "pw");
    let (_, pbkdf2) = cheap_keystore(CHEAP_PBKDF2, "pw");
    let set = |pointer: &'static str, new: Value| {
        move |v: &mut Value| *v.pointer_mut(pointer).unwrap() = new
    };
    let remove = |object: &'static str, key: &'static str| {
        move |v: &mut Value| {
            v.pointer_mut(object)
                .unwrap()
                .as_object_mut()
                .unwrap()
                .remove(key);
        }
    };
    // Version, functions.
    assert!(matches!(
        refused(&scrypt, set("/version", json!(3))),
        E::UnsupportedVersion(3)
    ));
    assert!(matches!(
        refused(&scrypt, set("/version", json!(-1))),
        E::Json(_)
    ));
    assert!(matches!(
        refused(&scrypt, set("/crypto/kdf/function", json!("argon2id"))),
        E::UnsupportedFunction { module: "kdf", function, .. } if function == "argon2id"
    ));
    assert!(matches!(
        refused(
            &scrypt,
            set("/crypto/checksum/function", json!("keccak256"))
        ),
        E::UnsupportedFunction {
            module: "checksum",
            ..
        }
    ));
    assert!(matches!(
        refused(
            &scrypt,
            set("/crypto/cipher/function", json!("aes-256-cbc"))
        ),
        E::UnsupportedFunction {
            module: "cipher",
            ..
        }
    ));
    assert!(matches!(
        refused(&pbkdf2, set("/crypto/kdf/params/prf", json!("hmac-sha512"))),
        E::UnsupportedPrf(prf) if prf == "hmac-sha512"
    ));

    // KDF parameters.
    assert!(matches!(
        refused(&scrypt, set("/crypto/kdf/params/dklen", json!(64))),
        E::BadDkLen(64)
    ));
    assert!(matches!(
        refused(&pbkdf2, set("/crypto/kdf/params/dklen", json!(16))),
        E::BadDkLen(16)
    ));
    assert!(matches!(
        refused(&scrypt, set("/crypto/kdf/params/n", json!(1000))),
        E::BadScryptParams { n: 1000, .. }
    ));
    assert!(matches!(
        refused(&scrypt, set("/crypto/kdf/params/n", json!(1))),
        E::BadScryptParams { n: 1, .. }
    ));
    // 128·n·r·p = 2 GiB: above the bound, refused before any memory is taken.
    assert!(matches!(
        refused(&scrypt, set("/crypto/kdf/params/n", json!(1 << 21))),
        E::BadScryptParams { n: 0x20_0000, .. }
    ));
    assert!(matches!(
        refused(&scrypt, set("/crypto/kdf/params/p", json!(1 << 20))),
        E::BadScryptParams { p: 0x10_0000, .. }
    ));
    assert!(matches!(
        refused(&scrypt, set("/crypto/kdf/params/r", json!(0))),
        E::BadScryptParams { r: 0, .. }
    ));
    // RFC 7914: n < 2^(16·r).
    assert!(matches!(
        refused(&scrypt, |v| {
            set("/crypto/kdf/params/n", json!(1 << 17))(v);
            set("/crypto/kdf/params/r", json!(1))(v);
        }),
        E::BadScryptParams {
            n: 0x2_0000,
            r: 1,
            ..
        }
    ));
    assert!(matches!(
        refused(&scrypt, set("/crypto/kdf/params/n", json!(1u64 << 40))),
        E::BadParams { module: "kdf", .. }
    ));
    assert!(matches!(
        refused(&pbkdf2, set("/crypto/kdf/params/c", json!(0))),
        E::BadPbkdf2Rounds { c: 0, .. }
    ));
    assert!(matches!(
        refused(&pbkdf2, set("/crypto/kdf/params/c", json!(u32::MAX))),
        E::BadPbkdf2Rounds { c: u32::MAX, .. }
    ));
    assert!(matches!(
        refused(&scrypt, set("/crypto/kdf/params", json!({}))),
        E::BadParams { module: "kdf", .. }
    ));
    assert!(matches!(
        refused(&scrypt, |v| {
            v["crypto"]["kdf"]["params"]["extra"] = json!(1);
        }),
        E::BadParams { module: "kdf", .. }
    ));
    assert!(matches!(
        refused(&pbkdf2, remove("/crypto/kdf/params", "salt")),
        E::BadParams { module: "kdf", .. }
    ));
    assert!(matches!(
        refused(&scrypt, set("/crypto/kdf/params/salt", json!(""))),
        E::BadSaltLength { got: 0, .. }
    ));
    assert!(matches!(
        refused(
            &scrypt,
            set("/crypto/kdf/params/salt", json!("ab".repeat(257)))
        ),
        E::BadSaltLength { got: 257, .. }
    ));
    assert!(matches!(
        refused(&scrypt, set("/crypto/kdf/params/salt", json!("salt"))),
        E::NotHex {
            field: "crypto.kdf.params.salt"
        }
    ));
    assert!(matches!(
        refused(&scrypt, set("/crypto/kdf/message", json!("00"))),
        E::KdfMessage
    ));

    // Checksum and cipher.
    assert!(matches!(
        refused(&scrypt, set("/crypto/checksum/params", json!({ "x": 1 }))),
        E::BadParams {
            module: "checksum",
            ..
        }
    ));
    assert!(matches!(
        refused(
            &scrypt,
            set("/crypto/checksum/message", json!("00".repeat(31)))
        ),
        E::BadLength {
            field: "crypto.checksum.message",
            expected: 32,
            got: 31
        }
    ));
    assert!(matches!(
        refused(
            &scrypt,
            set("/crypto/cipher/params/iv", json!("00".repeat(15)))
        ),
        E::BadLength {
            field: "crypto.cipher.params.iv",
            expected: 16,
            got: 15
        }
    ));
    assert!(matches!(
        refused(&scrypt, remove("/crypto/cipher/params", "iv")),
        E::BadParams {
            module: "cipher",
            ..
        }
    ));
    assert!(matches!(
        refused(
            &scrypt,
            set("/crypto/cipher/message", json!("00".repeat(48)))
        ),
        E::BadLength {
            field: "crypto.cipher.message",
            expected: 32,
            got: 48
        }
    ));
    assert!(matches!(
        refused(
            &scrypt,
            set("/crypto/cipher/message", json!("0g".repeat(32)))
        ),
        E::NotHex {
            field: "crypto.cipher.message"
        }
    ));

    // The rest of the schema.
    assert!(matches!(
        refused(&scrypt, set("/uuid", json!("not-a-uuid"))),
        E::BadUuid(uuid) if uuid == "not-a-uuid"
    ));
    assert!(matches!(refused(&scrypt, remove("", "path")), E::Json(_)));
    assert!(matches!(
        refused(&scrypt, remove("/crypto", "checksum")),
        E::Json(_)
    ));
    assert!(matches!(Keystore::from_json("{}"), Err(E::Json(_))));
    assert!(matches!(Keystore::from_json("not json"), Err(E::Json(_))));
}

#[test]
fn encrypt_refuses_what_decrypt_would() {
    let secret = SecretKey::random(&mut rng(5));
    for kdf in [
        Kdf::Scrypt { n: 3, r: 8, p: 1 },
        Kdf::Scrypt { n: 16, r: 0, p: 1 },
        Kdf::Scrypt {
            n: 1 << 21,
            r: 8,
            p: 1,
        },
        Kdf::Pbkdf2 { c: 0 },
        Kdf::Pbkdf2 {
            c: MAX_PBKDF2_ROUNDS + 1,
        },
    ] {
        assert!(kdf.validate().is_err(), "{kdf:?}");
        assert!(encrypt(&secret, "pw", &mut rng(6), kdf).is_err(), "{kdf:?}");
    }
    assert!(Kdf::SCRYPT.validate().is_ok());
    assert!(Kdf::PBKDF2.validate().is_ok());
    assert!(
        Kdf::Scrypt {
            n: 1 << 20,
            r: 8,
            p: 1
        }
        .validate()
        .is_ok()
    );
}
