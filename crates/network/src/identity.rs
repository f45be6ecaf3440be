//! Persistent node identity: one ed25519 key in `<datadir>/network/identity`.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use libp2p::identity::Keypair;

use crate::NetworkError;

/// Directory under the data directory that holds the network's files.
pub const NETWORK_DIR: &str = "network";
/// File name of the identity key inside [`NETWORK_DIR`].
pub const IDENTITY_FILE: &str = "identity";

/// Path of the identity file for a data directory.
pub fn identity_path(datadir: &Path) -> PathBuf {
    datadir.join(NETWORK_DIR).join(IDENTITY_FILE)
}

/// Loads the node's libp2p keypair from `<datadir>/network/identity`, creating a new ed25519
/// key there (mode 0600, written to a temporary file and renamed, so a crash never leaves a
/// half-written key) when none exists. The peer id is therefore stable across restarts.
///
/// The file holds the libp2p protobuf encoding of the keypair.
pub fn load_or_create_identity(datadir: &Path) -> Result<Keypair, NetworkError> {
    let path = identity_path(datadir);
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| NetworkError::IdentityIo { path, source }
    };
    match fs::read(&path) {
        Ok(bytes) => {
            let keypair = Keypair::from_protobuf_encoding(&bytes).map_err(|e| {
                NetworkError::InvalidIdentity {
                    path: path.clone(),
                    reason: e.to_string(),
                }
            })?;
            restrict_permissions(&path).map_err(io_err(&path))?;
            Ok(keypair)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = datadir.join(NETWORK_DIR);
            fs::create_dir_all(&dir).map_err(io_err(&dir))?;
            let keypair = Keypair::generate_ed25519();
            let bytes =
                keypair
                    .to_protobuf_encoding()
                    .map_err(|e| NetworkError::InvalidIdentity {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
            let tmp = dir.join(format!("{IDENTITY_FILE}.tmp"));
            write_private(&tmp, &bytes).map_err(io_err(&tmp))?;
            fs::rename(&tmp, &path).map_err(io_err(&path))?;
            Ok(keypair)
        }
        Err(source) => Err(NetworkError::IdentityIo { path, source }),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    // `mode` only applies when the file is created; a stale temporary file keeps its mode.
    restrict_permissions(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(unix)]
fn restrict_permissions(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)?.permissions().mode() & 0o777;
    if mode != 0o600 {
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict_permissions(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_identity(dir.path()).unwrap();
        let second = load_or_create_identity(dir.path()).unwrap();
        assert_eq!(first.public().to_peer_id(), second.public().to_peer_id());
        assert_eq!(
            first.to_protobuf_encoding().unwrap(),
            second.to_protobuf_encoding().unwrap()
        );
        assert!(first.try_into_ed25519().is_ok(), "identity must be ed25519");

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(identity_path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!dir.path().join(NETWORK_DIR).join("identity.tmp").exists());
    }

    #[cfg(unix)]
    #[test]
    fn loose_permissions_are_tightened_on_load() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let id = load_or_create_identity(dir.path())
            .unwrap()
            .public()
            .to_peer_id();
        let path = identity_path(dir.path());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let again = load_or_create_identity(dir.path())
            .unwrap()
            .public()
            .to_peer_id();
        assert_eq!(id, again);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn garbage_identity_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join(NETWORK_DIR)).unwrap();
        fs::write(identity_path(dir.path()), b"not a key").unwrap();
        let err = load_or_create_identity(dir.path()).unwrap_err();
        assert!(matches!(err, NetworkError::InvalidIdentity { .. }), "{err}");
    }
}
