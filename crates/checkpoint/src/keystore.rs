//! EIP-2335 keystores: a staker's [`SecretKey`] encrypted under a password, in the JSON
//! format Ethereum validators keep their BLS keys in (ethereum/ERCs `ERCS/erc-2335.md`).
//!
//! The password becomes bytes as the EIP says (NFKD, then the C0, C1 and Delete control
//! codes stripped, then UTF-8); a KDF ([`Kdf`]: scrypt or PBKDF2-HMAC-SHA256) turns them and
//! the salt into a 32-byte decryption key; its first half is the AES-128-CTR key that
//! encrypts the secret, its second half proves the password:
//! `checksum = sha256(key[16..32] ‖ ciphertext)`.
//!
//! One departure from what Ethereum's consensus clients write: their keys are min_pk
//! (public keys in G1, 48 bytes), ours are min_sig, so `pubkey` holds the hex of the
//! **96-byte compressed G2** public key ([`PublicKey::to_compressed`]). Everything else is
//! the EIP's, so [`decrypt_secret_bytes`] opens any EIP-2335 keystore whose functions this
//! module supports (and the EIP's own test vectors), while [`decrypt`] also insists that
//! the secret is the `pubkey`'s min_sig key.
//!
//! Pure logic over strings and bytes: the caller reads and writes the files and passes the
//! RNG. The KDF parameters come from the file, so they are bounded ([`MAX_SCRYPT_COST`],
//! [`MAX_PBKDF2_ROUNDS`]) before any work is done: a hostile keystore cannot make a node
//! allocate gigabytes or spin for minutes. The derived key, the processed password and the
//! decrypted secret are wiped when dropped, and no `Debug` or error message holds them.

use aes::Aes128;
use alloy_primitives::hex;
use ctr::cipher::{KeyIvInit, StreamCipher};
use icu_normalizer::DecomposingNormalizerBorrowed;
use rand::CryptoRng;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::bls::{BlsError, PublicKey, SECRET_KEY_LEN, SecretKey};

/// The only keystore version EIP-2335 defines.
pub const VERSION: u32 = 4;
/// The length of the derived key: 16 bytes of AES key, 16 of checksum key.
pub const DKLEN: u32 = 32;
/// The length of the salt [`encrypt`] draws.
pub const SALT_LEN: usize = 32;
/// The longest salt a keystore may have.
pub const MAX_SALT_LEN: usize = 256;
/// The AES-128-CTR initial counter block.
pub const IV_LEN: usize = 16;
/// The sha256 checksum.
pub const CHECKSUM_LEN: usize = 32;
/// The most scrypt work accepted, as `128·n·r·p` bytes: the memory it needs (at p = 1) and
/// the bytes its memory-hard loop fills. 1 GiB, four times the EIP's parameters.
pub const MAX_SCRYPT_COST: u64 = 1 << 30;
/// The most PBKDF2 iterations accepted: 64 times the EIP's.
pub const MAX_PBKDF2_ROUNDS: u32 = 1 << 24;

const SCRYPT: &str = "scrypt";
const PBKDF2: &str = "pbkdf2";
const HMAC_SHA256: &str = "hmac-sha256";
const SHA256: &str = "sha256";
const AES_128_CTR: &str = "aes-128-ctr";

type Aes128Ctr = ctr::Ctr128BE<Aes128>;

/// The 32-byte decryption key as its two halves: the AES key, then the checksum key.
type DecryptionKey = Zeroizing<[[u8; 16]; 2]>;

/// An EIP-2335 keystore, field for field as its JSON. [`Keystore::from_json`] checks what
/// decrypting needs (version, functions, lengths, KDF bounds) but not `pubkey`, which only
/// [`decrypt`] and [`Keystore::public_key`] read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keystore {
    /// How the secret is protected: the KDF, the checksum and the cipher.
    pub crypto: Crypto,
    /// Free text to tell keystores apart; not necessarily unique.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Hex of the 96-byte compressed G2 (min_sig) public key of the secret — not the
    /// 48-byte G1 key Ethereum's min_pk keystores hold.
    pub pubkey: String,
    /// The EIP-2334 derivation path of the key, or `""` when there is none.
    pub path: String,
    /// A random (version 4) UUID naming the keystore.
    pub uuid: String,
    /// Always [`VERSION`].
    pub version: u32,
}

/// The three modules of a keystore.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Crypto {
    /// `scrypt` or `pbkdf2`, its parameters (with the salt) and an empty message.
    pub kdf: CryptoModule,
    /// `sha256`, no parameters, and the checksum as the message.
    pub checksum: CryptoModule,
    /// `aes-128-ctr`, the `iv` parameter, and the encrypted secret as the message.
    pub cipher: CryptoModule,
}

/// An EIP-2335 module: a function, its parameters and its input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CryptoModule {
    /// Which construction, e.g. `scrypt`.
    pub function: String,
    /// The construction's parameters.
    pub params: Map<String, Value>,
    /// Hex of the module's input.
    pub message: String,
}

/// A key derivation function with its cost parameters (the salt is drawn per keystore).
/// [`Kdf::SCRYPT`] and [`Kdf::PBKDF2`] are the EIP's parameters; anything else is checked
/// by [`Kdf::validate`] against the bounds [`decrypt`] applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kdf {
    /// scrypt (RFC 7914).
    Scrypt {
        /// CPU and memory cost: a power of two greater than 1.
        n: u32,
        /// Block size.
        r: u32,
        /// Parallelisation (run sequentially here).
        p: u32,
    },
    /// PBKDF2 with HMAC-SHA-256 (RFC 8018).
    Pbkdf2 {
        /// Iteration count.
        c: u32,
    },
}

impl Kdf {
    /// scrypt with the EIP's parameters: n = 2^18, r = 8, p = 1 (256 MiB of memory).
    pub const SCRYPT: Self = Self::Scrypt {
        n: 1 << 18,
        r: 8,
        p: 1,
    };
    /// PBKDF2-HMAC-SHA-256 with the EIP's parameters: c = 2^18.
    pub const PBKDF2: Self = Self::Pbkdf2 { c: 1 << 18 };

    /// Whether [`decrypt`] would accept these parameters: scrypt's n a power of two greater
    /// than 1, r and p positive, within RFC 7914's bounds and [`MAX_SCRYPT_COST`]; PBKDF2's
    /// c in `1..=MAX_PBKDF2_ROUNDS`.
    pub fn validate(&self) -> Result<(), KeystoreError> {
        match *self {
            Self::Scrypt { n, r, p } => scrypt_params(n, r, p).map(drop),
            Self::Pbkdf2 { c } => check_pbkdf2_rounds(c),
        }
    }
}

/// Why a keystore cannot be read or opened. No variant holds the password, the derived key
/// or the secret.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// The text is not JSON of a keystore's shape.
    #[error("not an EIP-2335 keystore: {0}")]
    Json(#[from] serde_json::Error),
    /// A version other than [`VERSION`].
    #[error("keystore version {0} is not supported, only 4 (EIP-2335)")]
    UnsupportedVersion(u32),
    /// A module names a function this implementation does not have.
    #[error("unsupported {module} function {function:?} (supported: {supported})")]
    UnsupportedFunction {
        /// `kdf`, `checksum` or `cipher`.
        module: &'static str,
        /// The keystore's function.
        function: String,
        /// What is supported.
        supported: &'static str,
    },
    /// PBKDF2 with a pseudo-random function other than HMAC-SHA-256.
    #[error("unsupported pbkdf2 prf {0:?} (supported: hmac-sha256)")]
    UnsupportedPrf(String),
    /// A module's parameters are missing, of the wrong type, or unknown.
    #[error("bad {module} params: {reason}")]
    BadParams {
        /// `kdf`, `checksum` or `cipher`.
        module: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The KDF module has a message; EIP-2335 leaves it empty.
    #[error("the kdf message must be empty")]
    KdfMessage,
    /// A field that should be hex is not.
    #[error("{field} is not hex")]
    NotHex {
        /// Where in the keystore.
        field: &'static str,
    },
    /// A hex field decodes to the wrong number of bytes.
    #[error("{field} is {got} bytes, expected {expected}")]
    BadLength {
        /// Where in the keystore.
        field: &'static str,
        /// The length this field has.
        expected: usize,
        /// The field's length.
        got: usize,
    },
    /// An empty or overlong salt.
    #[error("the kdf salt is {got} bytes, expected 1 to {max}")]
    BadSaltLength {
        /// The salt's length.
        got: usize,
        /// [`MAX_SALT_LEN`].
        max: usize,
    },
    /// A derived key length other than [`DKLEN`].
    #[error("kdf dklen is {0}, expected 32")]
    BadDkLen(u32),
    /// scrypt parameters that are invalid or too costly.
    #[error("scrypt parameters n = {n}, r = {r}, p = {p} refused: {reason}")]
    BadScryptParams {
        /// Cost.
        n: u32,
        /// Block size.
        r: u32,
        /// Parallelisation.
        p: u32,
        /// Which bound they break.
        reason: &'static str,
    },
    /// A PBKDF2 iteration count of zero or above [`MAX_PBKDF2_ROUNDS`].
    #[error("pbkdf2 c = {c} refused: expected 1 to {max}")]
    BadPbkdf2Rounds {
        /// The iteration count.
        c: u32,
        /// [`MAX_PBKDF2_ROUNDS`].
        max: u32,
    },
    /// A `uuid` that is not a UUID.
    #[error("uuid {0:?} is not a UUID")]
    BadUuid(String),
    /// The checksum does not match: the password is wrong (or the keystore was altered).
    #[error("wrong password: the keystore's checksum does not match")]
    WrongPassword,
    /// The KDF library refused to run (not expected with checked parameters).
    #[error("the key derivation failed")]
    KdfFailed,
    /// The decrypted bytes are zero or not below the group order.
    #[error("the decrypted secret is not a BLS secret key")]
    InvalidSecretKey,
    /// `pubkey` is not a min_sig public key (a 48-byte min_pk key lands here).
    #[error("the keystore's pubkey is not a 96-byte compressed G2 (min_sig) key: {0}")]
    BadPubkey(#[source] BlsError),
    /// The secret decrypts, but its public key is not `pubkey`.
    #[error("the keystore's pubkey {stored} is not the public key of its secret, {derived}")]
    PubkeyMismatch {
        /// The keystore's `pubkey`.
        stored: String,
        /// The public key of the decrypted secret.
        derived: String,
    },
}

/// A keystore's fields, decoded and checked.
struct Parsed {
    kdf: Kdf,
    salt: Vec<u8>,
    checksum: [u8; CHECKSUM_LEN],
    iv: [u8; IV_LEN],
    ciphertext: [u8; SECRET_KEY_LEN],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScryptParams {
    dklen: u32,
    n: u32,
    p: u32,
    r: u32,
    salt: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Pbkdf2Params {
    dklen: u32,
    c: u32,
    prf: String,
    salt: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CipherParams {
    iv: String,
}

impl Keystore {
    /// Parses a keystore and checks everything decrypting needs except the password:
    /// version, functions, hex and lengths, KDF bounds, uuid. `pubkey` is not checked, so
    /// min_pk keystores parse too.
    pub fn from_json(json: &str) -> Result<Self, KeystoreError> {
        let keystore: Self = serde_json::from_str(json)?;
        keystore.validate()?;
        Ok(keystore)
    }

    /// The keystore as pretty-printed JSON.
    pub fn to_json(&self) -> Result<String, KeystoreError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// The checks of [`Keystore::from_json`], for a keystore built or edited in code.
    pub fn validate(&self) -> Result<(), KeystoreError> {
        self.parse().map(drop)
    }

    /// The KDF and its parameters, checked.
    pub fn kdf(&self) -> Result<Kdf, KeystoreError> {
        parse_kdf(&self.crypto.kdf).map(|(kdf, _)| kdf)
    }

    /// The min_sig public key in `pubkey`, without the password.
    pub fn public_key(&self) -> Result<PublicKey, KeystoreError> {
        let bytes = decode_hex("pubkey", &self.pubkey)?;
        PublicKey::from_compressed(&bytes).map_err(KeystoreError::BadPubkey)
    }

    fn parse(&self) -> Result<Parsed, KeystoreError> {
        if self.version != VERSION {
            return Err(KeystoreError::UnsupportedVersion(self.version));
        }
        if uuid::Uuid::try_parse(&self.uuid).is_err() {
            return Err(KeystoreError::BadUuid(self.uuid.clone()));
        }
        let (kdf, salt) = parse_kdf(&self.crypto.kdf)?;
        let checksum = parse_checksum(&self.crypto.checksum)?;
        let (iv, ciphertext) = parse_cipher(&self.crypto.cipher)?;
        Ok(Parsed {
            kdf,
            salt,
            checksum,
            iv,
            ciphertext,
        })
    }
}

/// Encrypts `secret` under `password` with `kdf`, drawing the salt, the IV and the UUID
/// from `rng`. `description` is unset and `path` empty; set them on the result if known.
/// Refuses KDF parameters that [`decrypt`] would refuse.
pub fn encrypt<R: CryptoRng + ?Sized>(
    secret: &SecretKey,
    password: &str,
    rng: &mut R,
    kdf: Kdf,
) -> Result<Keystore, KeystoreError> {
    kdf.validate()?;
    let mut salt = [0u8; SALT_LEN];
    rng.fill_bytes(&mut salt);
    let mut iv = [0u8; IV_LEN];
    rng.fill_bytes(&mut iv);
    let mut uuid = [0u8; 16];
    rng.fill_bytes(&mut uuid);

    let password = process_password(password);
    let key = derive_key(kdf, &password, &salt)?;
    let [cipher_key, checksum_key] = &*key;
    let mut ciphertext = secret.to_bytes();
    aes_128_ctr(cipher_key, &iv, ciphertext.as_mut_slice());
    let checksum = checksum(checksum_key, ciphertext.as_slice());

    let mut kdf_params = Map::new();
    let function = match kdf {
        Kdf::Scrypt { n, r, p } => {
            kdf_params.insert("dklen".into(), DKLEN.into());
            kdf_params.insert("n".into(), n.into());
            kdf_params.insert("p".into(), p.into());
            kdf_params.insert("r".into(), r.into());
            SCRYPT
        }
        Kdf::Pbkdf2 { c } => {
            kdf_params.insert("dklen".into(), DKLEN.into());
            kdf_params.insert("c".into(), c.into());
            kdf_params.insert("prf".into(), HMAC_SHA256.into());
            PBKDF2
        }
    };
    kdf_params.insert("salt".into(), hex::encode(salt).into());
    let mut cipher_params = Map::new();
    cipher_params.insert("iv".into(), hex::encode(iv).into());

    Ok(Keystore {
        crypto: Crypto {
            kdf: CryptoModule {
                function: function.into(),
                params: kdf_params,
                message: String::new(),
            },
            checksum: CryptoModule {
                function: SHA256.into(),
                params: Map::new(),
                message: hex::encode(checksum),
            },
            cipher: CryptoModule {
                function: AES_128_CTR.into(),
                params: cipher_params,
                message: hex::encode(ciphertext.as_slice()),
            },
        },
        description: None,
        pubkey: hex::encode(secret.public_key().to_compressed()),
        path: String::new(),
        uuid: uuid::Builder::from_random_bytes(uuid)
            .into_uuid()
            .hyphenated()
            .to_string(),
        version: VERSION,
    })
}

/// Decrypts the keystore's secret key and checks that `pubkey` is its public key.
/// `pubkey` is read first, so a keystore of another scheme fails before the KDF runs.
pub fn decrypt(keystore: &Keystore, password: &str) -> Result<SecretKey, KeystoreError> {
    let stored = keystore.public_key()?;
    let bytes = decrypt_secret_bytes(keystore, password)?;
    let secret = SecretKey::from_bytes(&bytes).map_err(|_| KeystoreError::InvalidSecretKey)?;
    let derived = secret.public_key();
    if derived != stored {
        return Err(KeystoreError::PubkeyMismatch {
            stored: hex::encode(stored.to_compressed()),
            derived: hex::encode(derived.to_compressed()),
        });
    }
    Ok(secret)
}

/// Decrypts the keystore's 32-byte secret without reading `pubkey`: the EIP's decryption
/// alone, which also opens min_pk keystores (and the EIP's test vectors).
pub fn decrypt_secret_bytes(
    keystore: &Keystore,
    password: &str,
) -> Result<Zeroizing<[u8; SECRET_KEY_LEN]>, KeystoreError> {
    let parsed = keystore.parse()?;
    let password = process_password(password);
    let key = derive_key(parsed.kdf, &password, &parsed.salt)?;
    let [cipher_key, checksum_key] = &*key;
    // The checksum is in the file for anyone to read: comparing it in variable time
    // reveals nothing.
    if checksum(checksum_key, &parsed.ciphertext) != parsed.checksum {
        return Err(KeystoreError::WrongPassword);
    }
    let mut secret = Zeroizing::new(parsed.ciphertext);
    aes_128_ctr(cipher_key, &parsed.iv, secret.as_mut_slice());
    Ok(secret)
}

/// The password as the KDF takes it: NFKD, without the C0 (U+0000..U+001F), Delete
/// (U+007F) and C1 (U+0080..U+009F) control codes, in UTF-8.
fn process_password(password: &str) -> Zeroizing<Vec<u8>> {
    let processed = || {
        DecomposingNormalizerBorrowed::new_nfkd()
            .normalize_iter(password.chars())
            .filter(|&c| !matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}'))
    };
    // Sized up front, so the buffer never reallocates and leaves a copy behind.
    let len = processed()
        .map(char::len_utf8)
        .fold(0usize, usize::saturating_add);
    let mut bytes = Zeroizing::new(Vec::with_capacity(len));
    let mut utf8 = Zeroizing::new([0u8; 4]);
    for c in processed() {
        bytes.extend_from_slice(c.encode_utf8(utf8.as_mut_slice()).as_bytes());
    }
    bytes
}

fn derive_key(kdf: Kdf, password: &[u8], salt: &[u8]) -> Result<DecryptionKey, KeystoreError> {
    let mut key = DecryptionKey::default();
    match kdf {
        Kdf::Scrypt { n, r, p } => {
            let params = scrypt_params(n, r, p)?;
            scrypt::scrypt(password, salt, &params, key.as_flattened_mut())
                .map_err(|_| KeystoreError::KdfFailed)?;
        }
        Kdf::Pbkdf2 { c } => {
            check_pbkdf2_rounds(c)?;
            pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, c, key.as_flattened_mut());
        }
    }
    Ok(key)
}

fn scrypt_params(n: u32, r: u32, p: u32) -> Result<scrypt::Params, KeystoreError> {
    let refuse = |reason| KeystoreError::BadScryptParams { n, r, p, reason };
    if n < 2 || !n.is_power_of_two() {
        return Err(refuse("n must be a power of two greater than 1"));
    }
    if r == 0 || p == 0 {
        return Err(refuse("r and p must be positive"));
    }
    let cost = 128u64
        .saturating_mul(n.into())
        .saturating_mul(r.into())
        .saturating_mul(p.into());
    if cost > MAX_SCRYPT_COST {
        return Err(refuse(
            "128·n·r·p is above 2^30 bytes, four times the EIP's parameters",
        ));
    }
    let log_n = u8::try_from(n.trailing_zeros()).map_err(|_| refuse("n is too large"))?;
    scrypt::Params::new(log_n, r, p).map_err(|_| refuse("RFC 7914 requires n < 2^(16·r)"))
}

fn check_pbkdf2_rounds(c: u32) -> Result<(), KeystoreError> {
    if c == 0 || c > MAX_PBKDF2_ROUNDS {
        return Err(KeystoreError::BadPbkdf2Rounds {
            c,
            max: MAX_PBKDF2_ROUNDS,
        });
    }
    Ok(())
}

fn parse_kdf(module: &CryptoModule) -> Result<(Kdf, Vec<u8>), KeystoreError> {
    let (kdf, dklen, salt) = match module.function.as_str() {
        SCRYPT => {
            let ScryptParams {
                dklen,
                n,
                p,
                r,
                salt,
            } = parse_params("kdf", &module.params)?;
            (Kdf::Scrypt { n, r, p }, dklen, salt)
        }
        PBKDF2 => {
            let Pbkdf2Params {
                dklen,
                c,
                prf,
                salt,
            } = parse_params("kdf", &module.params)?;
            if prf != HMAC_SHA256 {
                return Err(KeystoreError::UnsupportedPrf(prf));
            }
            (Kdf::Pbkdf2 { c }, dklen, salt)
        }
        other => {
            return Err(KeystoreError::UnsupportedFunction {
                module: "kdf",
                function: other.to_owned(),
                supported: "scrypt, pbkdf2",
            });
        }
    };
    if dklen != DKLEN {
        return Err(KeystoreError::BadDkLen(dklen));
    }
    kdf.validate()?;
    if !module.message.is_empty() {
        return Err(KeystoreError::KdfMessage);
    }
    let salt = decode_hex("crypto.kdf.params.salt", &salt)?;
    if salt.is_empty() || salt.len() > MAX_SALT_LEN {
        return Err(KeystoreError::BadSaltLength {
            got: salt.len(),
            max: MAX_SALT_LEN,
        });
    }
    Ok((kdf, salt))
}

fn parse_checksum(module: &CryptoModule) -> Result<[u8; CHECKSUM_LEN], KeystoreError> {
    if module.function != SHA256 {
        return Err(KeystoreError::UnsupportedFunction {
            module: "checksum",
            function: module.function.clone(),
            supported: SHA256,
        });
    }
    if !module.params.is_empty() {
        return Err(KeystoreError::BadParams {
            module: "checksum",
            reason: "sha256 takes no params".into(),
        });
    }
    decode_array("crypto.checksum.message", &module.message)
}

fn parse_cipher(
    module: &CryptoModule,
) -> Result<([u8; IV_LEN], [u8; SECRET_KEY_LEN]), KeystoreError> {
    if module.function != AES_128_CTR {
        return Err(KeystoreError::UnsupportedFunction {
            module: "cipher",
            function: module.function.clone(),
            supported: AES_128_CTR,
        });
    }
    let CipherParams { iv } = parse_params("cipher", &module.params)?;
    let iv = decode_array("crypto.cipher.params.iv", &iv)?;
    let ciphertext = decode_array("crypto.cipher.message", &module.message)?;
    Ok((iv, ciphertext))
}

fn parse_params<T: DeserializeOwned>(
    module: &'static str,
    params: &Map<String, Value>,
) -> Result<T, KeystoreError> {
    serde_json::from_value(Value::Object(params.clone())).map_err(|err| KeystoreError::BadParams {
        module,
        reason: err.to_string(),
    })
}

fn decode_hex(field: &'static str, text: &str) -> Result<Vec<u8>, KeystoreError> {
    hex::decode(text).map_err(|_| KeystoreError::NotHex { field })
}

fn decode_array<const N: usize>(field: &'static str, text: &str) -> Result<[u8; N], KeystoreError> {
    let bytes = decode_hex(field, text)?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| KeystoreError::BadLength {
        field,
        expected: N,
        got: bytes.len(),
    })
}

/// `sha256(key[16..32] ‖ ciphertext)`.
fn checksum(checksum_key: &[u8; 16], ciphertext: &[u8]) -> [u8; CHECKSUM_LEN] {
    Sha256::new()
        .chain_update(checksum_key)
        .chain_update(ciphertext)
        .finalize()
        .into()
}

/// Encrypts or decrypts `data` in place (the same operation), the IV the first counter
/// block, incremented big-endian.
fn aes_128_ctr(key: &[u8; 16], iv: &[u8; IV_LEN], data: &mut [u8]) {
    Aes128Ctr::new(key.into(), iv.into()).apply_keystream(data);
}

#[cfg(test)]
mod tests;
