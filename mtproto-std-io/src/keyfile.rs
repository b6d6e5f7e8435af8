//! The auth key file: a permanent key and its session, persisted where the user says.
//!
//! - **Single owner**: [`KeyFile::open`] takes an exclusive lock (`File::try_lock`, an advisory
//!   `flock` on Unix) on `<path>.lock` and holds it while the value lives. A second process (or a
//!   second `KeyFile` in this one) is refused with [`KeyFileError::InUse`]: Telegram kills a key
//!   seen from two places at once (`AUTH_KEY_DUPLICATED`), and the user loses the login.
//! - **Atomic**: [`KeyFile::save`] writes `<path>.tmp`, syncs it and renames it over `path`; a
//!   crash leaves the old file or the new one, never half of one.
//! - **Private**: created with mode 0600; a key file readable by group or others is refused on
//!   load, as ssh refuses such private keys.
//!
//! Format (little-endian, fixed size): `b"MTPKEY01"`, auth_key (256), session_id (i64), salt (i64),
//! time_offset_secs (i64), last_msg_id (i64), seq_count (i32).

use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use mtproto_core::connection::ResumeState;
use mtproto_core::crypto::AuthKey;
use mtproto_core::session::SavedSession;
use zeroize::Zeroizing;

const MAGIC: &[u8; 8] = b"MTPKEY02";
/// Size of a key file.
pub const FILE_LEN: usize = 8 + 256 + 8 * 4 + 4 + 8;

/// Why the key file cannot be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum KeyFileError {
    /// Another process (or another handle in this one) holds the key.
    InUse(PathBuf),
    /// The file is readable or writable by group or others.
    Permissions(PathBuf, u32),
    /// Not a key file (wrong size or magic).
    Format(PathBuf),
    /// An I/O error.
    Io(PathBuf, io::Error),
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyFileError::InUse(p) => write!(
                f,
                "key file {} is in use by another process (one key must never be used from two places)",
                p.display()
            ),
            KeyFileError::Permissions(p, mode) => write!(
                f,
                "key file {} has mode {mode:o}: it must not be accessible by group or others (chmod 600)",
                p.display()
            ),
            KeyFileError::Format(p) => write!(f, "{} is not an mtproto key file", p.display()),
            KeyFileError::Io(p, e) => write!(f, "key file {}: {e}", p.display()),
        }
    }
}

impl std::error::Error for KeyFileError {}

/// An exclusively locked key file (see the module docs).
pub struct KeyFile {
    path: PathBuf,
    /// Held for the lifetime of the value: the lock goes when it is closed.
    _lock: File,
}

impl fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFile").field("path", &self.path).finish()
    }
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn private_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o
}

impl KeyFile {
    /// Locks `path` for this process. The file itself need not exist yet.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, KeyFileError> {
        let path = path.into();
        let lock_path = sibling(&path, ".lock");
        let lock = private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| KeyFileError::Io(lock_path.clone(), e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(KeyFileError::InUse(path)),
            Err(TryLockError::Error(e)) => return Err(KeyFileError::Io(lock_path, e)),
        }
        Ok(Self { path, _lock: lock })
    }

    /// The key file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved key and session, `None` if the file does not exist.
    pub fn load(&self) -> Result<Option<ResumeState>, KeyFileError> {
        let io = |e| KeyFileError::Io(self.path.clone(), e);
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = file.metadata().map_err(io)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyFileError::Permissions(self.path.clone(), mode));
            }
        }
        let mut buf = Zeroizing::new(Vec::with_capacity(FILE_LEN + 1));
        Read::by_ref(&mut file)
            .take(u64::try_from(FILE_LEN).unwrap_or(u64::MAX) + 1)
            .read_to_end(&mut buf)
            .map_err(io)?;
        decode(&buf)
            .map(Some)
            .ok_or_else(|| KeyFileError::Format(self.path.clone()))
    }

    /// Replaces the file with `state`, atomically, mode 0600.
    pub fn save(&self, state: &ResumeState) -> Result<(), KeyFileError> {
        let tmp = sibling(&self.path, ".tmp");
        let io = |e| KeyFileError::Io(tmp.clone(), e);
        let bytes = encode(state);
        let _ = fs::remove_file(&tmp);
        let mut f = private_options()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        fs::rename(&tmp, &self.path).map_err(|e| KeyFileError::Io(self.path.clone(), e))?;
        // Make the rename itself durable.
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

fn encode(state: &ResumeState) -> Zeroizing<Vec<u8>> {
    let mut v = Zeroizing::new(Vec::with_capacity(FILE_LEN));
    let s = &state.session;
    v.extend_from_slice(MAGIC);
    v.extend_from_slice(state.auth_key.as_bytes());
    v.extend_from_slice(&s.session_id.to_le_bytes());
    v.extend_from_slice(&s.salt.to_le_bytes());
    v.extend_from_slice(&s.time_offset_secs.to_le_bytes());
    v.extend_from_slice(&s.last_msg_id.to_le_bytes());
    v.extend_from_slice(&s.seq_count.to_le_bytes());
    // When the key was made (server seconds); i64::MIN: unknown.
    v.extend_from_slice(&state.key_created_at.unwrap_or(i64::MIN).to_le_bytes());
    v
}

fn decode(buf: &[u8]) -> Option<ResumeState> {
    if buf.len() != FILE_LEN {
        return None;
    }
    let (magic, rest) = buf.split_at(8);
    if magic != MAGIC {
        return None;
    }
    let (key, rest) = rest.split_at(256);
    let mut key_bytes = Zeroizing::new([0u8; 256]);
    key_bytes.copy_from_slice(key);
    let i64_at = |i: usize| -> Option<i64> {
        Some(i64::from_le_bytes(
            rest.get(i * 8..i * 8 + 8)?.try_into().ok()?,
        ))
    };
    let seq = i32::from_le_bytes(rest.get(32..36)?.try_into().ok()?);
    let created = i64::from_le_bytes(rest.get(36..44)?.try_into().ok()?);
    Some(ResumeState {
        auth_key: AuthKey::from_bytes(*key_bytes),
        session: SavedSession {
            session_id: i64_at(0)?,
            salt: i64_at(1)?,
            time_offset_secs: i64_at(2)?,
            last_msg_id: i64_at(3)?,
            seq_count: seq,
        },
        key_created_at: (created != i64::MIN).then_some(created),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mtproto-keyfile-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn state() -> ResumeState {
        let mut key = [0u8; 256];
        for (i, b) in key.iter_mut().enumerate() {
            *b = i as u8;
        }
        ResumeState {
            auth_key: AuthKey::from_bytes(key),
            session: SavedSession {
                session_id: -2,
                salt: 0x1122_3344_5566_7788,
                time_offset_secs: -7,
                last_msg_id: 0x6000_0000_0000_0004,
                seq_count: 9,
            },
            key_created_at: Some(1_700_000_000),
        }
    }

    #[test]
    fn save_load_roundtrip_mode_0600_and_layout() {
        let d = temp_dir("roundtrip");
        let p = d.join("key");
        let kf = KeyFile::open(&p).unwrap();
        assert!(kf.load().unwrap().is_none());
        kf.save(&state()).unwrap();
        let back = kf.load().unwrap().unwrap();
        assert_eq!(back.auth_key, state().auth_key);
        assert_eq!(back.session, state().session);
        assert_eq!(back.key_created_at, Some(1_700_000_000));
        let raw = fs::read(&p).unwrap();
        assert_eq!(raw.len(), FILE_LEN);
        assert_eq!(&raw[..8], b"MTPKEY02");
        assert_eq!(&raw[FILE_LEN - 8..], &1_700_000_000i64.to_le_bytes());
        assert_eq!(raw[8 + 255], 255);
        assert_eq!(&raw[264..272], &(-2i64).to_le_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert!(!sibling(&p, ".tmp").exists());
    }

    #[test]
    fn a_second_handle_is_refused_until_the_first_goes() {
        let d = temp_dir("lock");
        let p = d.join("key");
        let first = KeyFile::open(&p).unwrap();
        assert!(matches!(KeyFile::open(&p), Err(KeyFileError::InUse(_))));
        drop(first);
        KeyFile::open(&p).unwrap();
    }

    #[test]
    fn truncated_or_foreign_files_are_format_errors() {
        let d = temp_dir("format");
        let p = d.join("key");
        let kf = KeyFile::open(&p).unwrap();
        kf.save(&state()).unwrap();
        let raw = fs::read(&p).unwrap();
        let write = |bytes: &[u8]| {
            let _ = fs::remove_file(&p);
            private_options()
                .write(true)
                .create_new(true)
                .open(&p)
                .unwrap()
                .write_all(bytes)
                .unwrap();
        };
        write(&raw[..FILE_LEN - 1]);
        assert!(matches!(kf.load(), Err(KeyFileError::Format(_))));
        let mut longer = raw.clone();
        longer.push(0);
        write(&longer);
        assert!(matches!(kf.load(), Err(KeyFileError::Format(_))));
        let mut wrong = raw.clone();
        wrong[0] ^= 1;
        write(&wrong);
        assert!(matches!(kf.load(), Err(KeyFileError::Format(_))));
    }

    #[cfg(unix)]
    #[test]
    fn a_group_readable_key_file_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let d = temp_dir("perm");
        let p = d.join("key");
        let kf = KeyFile::open(&p).unwrap();
        kf.save(&state()).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            kf.load(),
            Err(KeyFileError::Permissions(_, 0o640))
        ));
    }
}
