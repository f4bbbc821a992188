//! Where the master key comes from: an environment variable, a file, or a
//! file generated on first run with mode 0600.

use super::{MasterKey, SecretError};
use std::io::Write;
use std::path::{Path, PathBuf};

/// How the master key was obtained (logged at start; never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    Env,
    File(PathBuf),
    Generated(PathBuf),
}

/// Loads the master key from `env_value` if set, else from `path`, creating
/// `path` with a fresh key (mode 0600, created exclusively so two starts
/// cannot race) when it does not exist.
pub fn load_or_create_master_key(
    env_value: Option<&str>,
    path: &Path,
) -> Result<(MasterKey, MasterKeySource), SecretError> {
    if let Some(v) = env_value.filter(|v| !v.trim().is_empty()) {
        return Ok((MasterKey::parse(v)?, MasterKeySource::Env));
    }
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((MasterKey::parse(&text)?, MasterKeySource::File(path.into()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let key = MasterKey::generate();
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            match opts.open(path) {
                Ok(mut f) => {
                    f.write_all(key.to_hex().as_bytes())?;
                    f.write_all(b"\n")?;
                    f.sync_all()?;
                    Ok((key, MasterKeySource::Generated(path.into())))
                }
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(path)?;
                    Ok((MasterKey::parse(&text)?, MasterKeySource::File(path.into())))
                }
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_run_generates_a_private_key_file_and_later_runs_reuse_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/master.key");
        let (k1, src1) = load_or_create_master_key(None, &path).unwrap();
        assert!(matches!(src1, MasterKeySource::Generated(_)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let (k2, src2) = load_or_create_master_key(None, &path).unwrap();
        assert!(matches!(src2, MasterKeySource::File(_)));
        assert_eq!(k1.id(), k2.id());
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let k = MasterKey::generate();
        let (got, src) =
            load_or_create_master_key(Some(&k.to_hex()), &dir.path().join("m.key")).unwrap();
        assert_eq!(src, MasterKeySource::Env);
        assert_eq!(got.id(), k.id());
        assert!(!dir.path().join("m.key").exists());
    }
}
