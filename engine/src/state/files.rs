//! How the file backend touches the disk without touching what is not its
//! own.
//!
//! A project is often a checkout someone else wrote, and the tool often runs
//! as a user who may write far more than that checkout. So a link in the
//! project must never steer a write elsewhere: no file is opened through a
//! symbolic link (`O_NOFOLLOW`), a file is used only when it is a regular
//! file with one link that this user owns, and a folder the backend creates
//! is refused when something put a symbolic link in its place.
//!
//! The checks guard against what is on disk when the run starts, not
//! against another local user swapping folders while it runs: that user
//! could already change the project itself.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use super::StateError;

/// Flags for every file the backend opens: never through a symbolic link,
/// never inherited by a child process, and never blocking on a FIFO that
/// sits where a file should be (its type is refused right after).
const FLAGS: i32 = libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;

/// Opens `path` for reading, or `None` when it does not exist.
pub(crate) fn open_to_read(path: &Path) -> Result<Option<File>, StateError> {
    let mut options = OpenOptions::new();
    options.read(true).custom_flags(FLAGS);
    match options.open(path) {
        Ok(file) => {
            check_file(&file, path)?;
            Ok(Some(file))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(open_error(path, "read", e)),
    }
}

/// The bytes of `path`, or `None` when it does not exist.
pub(crate) fn read(path: &Path) -> Result<Option<Vec<u8>>, StateError> {
    let Some(mut file) = open_to_read(path)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| StateError::io("read", path, e))?;
    Ok(Some(bytes))
}

/// Opens `path` for reading and writing, creating it private to the user
/// when it does not exist; an existing file must pass [`check_file`].
pub(crate) fn open_or_create(path: &Path, action: &'static str) -> Result<File, StateError> {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(FLAGS);
    let file = options
        .open(path)
        .map_err(|e| open_error(path, action, e))?;
    check_file(&file, path)?;
    Ok(file)
}

/// Creates `path`, which must not exist, private to the user: a temp file.
/// With `O_EXCL` the kernel refuses a symbolic link already at `path`.
pub(crate) fn create_new(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(FLAGS);
    options.open(path)
}

/// Writes `bytes` to `path` (an export the user named) readable by its
/// owner only, whatever the umask and whatever mode an existing file had,
/// and never through a symbolic link at `path`, which could aim the write at
/// any file the user may change.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    let mut options = OpenOptions::new();
    options
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    let mut file = options.open(path).map_err(|e| match fs::read_link(path) {
        Ok(target) if e.raw_os_error() == Some(libc::ELOOP) => unsafe_path(
            path,
            format!("it is a symbolic link to {}", target.display()),
            "nothing was written. Name the file itself, or a new file, rather than a link".into(),
        ),
        _ => StateError::io("write", path, e),
    })?;
    let mut write = || -> io::Result<()> {
        // Narrowed before anything is written into it; a device or pipe
        // (`/dev/null`) is written as it is.
        if file.metadata()?.is_file() {
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
            file.set_len(0)?;
        }
        file.write_all(bytes)?;
        file.flush()
    };
    write().map_err(|e| StateError::io("write", path, e))
}

/// Accepts an opened file only if it is a regular file with one link that
/// this user owns.
pub(crate) fn check_file(file: &File, path: &Path) -> Result<(), StateError> {
    let metadata = file
        .metadata()
        .map_err(|e| StateError::io("inspect", path, e))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    check_metadata(&metadata, path, me)
}

/// [`check_file`] with the user to compare the owner with.
fn check_metadata(metadata: &Metadata, path: &Path, me: u32) -> Result<(), StateError> {
    let kind = metadata.file_type();
    if !kind.is_file() {
        return Err(unsafe_path(
            path,
            format!("it is {}, not a regular file", file_kind(&kind)),
            format!(
                "nothing was changed. Move {} out of the way if nothing needs it, and run again",
                path.display()
            ),
        ));
    }
    if metadata.nlink() != 1 {
        return Err(unsafe_path(
            path,
            format!(
                "it has {} hard links, so it is also another file, which a write here would change",
                metadata.nlink()
            ),
            format!(
                "nothing was changed. If no run is under way, move it away (`mv {0} {0}.old`) and run again",
                path.display()
            ),
        ));
    }
    if metadata.uid() != me {
        return Err(unsafe_path(
            path,
            format!(
                "it belongs to user id {}, not to this user (id {me})",
                metadata.uid()
            ),
            format!(
                "nothing was changed. Run as the user who owns it, or, if it is not in use, move it away (`mv {0} {0}.old`) and run again",
                path.display()
            ),
        ));
    }
    Ok(())
}

fn file_kind(kind: &fs::FileType) -> &'static str {
    if kind.is_dir() {
        "a folder"
    } else if kind.is_fifo() {
        "a named pipe"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "a special file"
    }
}

/// Turns a failed open into the error to show: a symbolic link (`ELOOP`
/// under `O_NOFOLLOW`) is named with what it points to.
fn open_error(path: &Path, action: &'static str, error: io::Error) -> StateError {
    if error.raw_os_error() == Some(libc::ELOOP)
        && let Ok(target) = fs::read_link(path)
    {
        return linked(path, &target, false);
    }
    StateError::io(action, path, error)
}

/// Refuses `dir` if it is a symbolic link; a missing folder is fine (it is
/// created next).
pub(crate) fn check_folder(dir: &Path) -> Result<(), StateError> {
    match fs::symlink_metadata(dir) {
        Ok(metadata) if metadata.file_type().is_symlink() => {
            let target = fs::read_link(dir).map_err(|e| StateError::io("inspect", dir, e))?;
            Err(linked(dir, &target, true))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StateError::io("inspect", dir, e)),
    }
}

/// Refuses a symbolic link at `dir` or at any folder between `root` and
/// `dir` (the folders a relative backend path names inside the project);
/// with no `root`, or a `dir` outside it, only `dir` itself is checked.
pub(crate) fn check_folders(root: Option<&Path>, dir: &Path) -> Result<(), StateError> {
    let Some(below) = root.and_then(|root| dir.strip_prefix(root).ok().map(|rest| (root, rest)))
    else {
        return check_folder(dir);
    };
    let (root, rest) = below;
    let mut current = root.to_path_buf();
    for component in rest.components() {
        match component {
            Component::Normal(name) => current.push(name),
            // `Backend::parse` keeps `..` out of relative paths; a `.`
            // changes nothing.
            _ => continue,
        }
        check_folder(&current)?;
    }
    Ok(())
}

/// Creates `dir` and its missing parents, private to the user, refusing a
/// symbolic link at `dir` or below `root` before and after.
pub(crate) fn create_private_dir(root: Option<&Path>, dir: &Path) -> Result<(), StateError> {
    check_folders(root, dir)?;
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| StateError::io("create folder", dir, e))?;
    // Again: a link that appeared since is refused before anything is
    // written through it.
    check_folders(root, dir)
}

/// The error for a symbolic link at `path` pointing at `target`.
fn linked(path: &Path, target: &Path, folder: bool) -> StateError {
    let resolved = match path.parent() {
        Some(parent) if target.is_relative() => parent.join(target),
        _ => target.to_path_buf(),
    };
    let resolved = fs::canonicalize(&resolved).unwrap_or(resolved);
    let hint = if folder {
        format!(
            "nothing was written there. If the state is meant to live in {0}, point the backend at that folder itself with an absolute path (`file://{0}`); otherwise replace the link with a real folder (`rm {1} && mkdir {1}`)",
            resolved.display(),
            path.display()
        )
    } else {
        format!(
            "nothing was changed. Remove the link (`rm {}`), or put the file itself in its place, and run again",
            path.display()
        )
    };
    // A relative target is shown resolved too, so the message says which
    // file it is without working it out.
    let shown = if resolved.as_path() == target {
        target.display().to_string()
    } else {
        format!("{} ({})", target.display(), resolved.display())
    };
    unsafe_path(
        path,
        format!("it is a symbolic link to {shown}, and the file backend never follows one"),
        hint,
    )
}

fn unsafe_path(path: &Path, problem: String, hint: String) -> StateError {
    StateError::UnsafePath {
        path: PathBuf::from(path),
        problem,
        hint,
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn problem(err: &StateError) -> String {
        match err {
            StateError::UnsafePath { problem, .. } => problem.clone(),
            other => panic!("expected UnsafePath, got {other:?}"),
        }
    }

    #[test]
    fn private_file_is_written_0600_over_a_wider_mode_and_never_through_a_link() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("export.json");
        fs::write(&path, b"an older, longer export").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_private_file(&path, b"{}").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"{}");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );

        let target = dir.path().join("precious");
        fs::write(&target, b"keep me").unwrap();
        let link = dir.path().join("link.json");
        symlink(&target, &link).unwrap();
        let err = write_private_file(&link, b"{}").unwrap_err();
        assert!(problem(&err).contains("symbolic link"), "{err}");
        assert_eq!(fs::read(&target).unwrap(), b"keep me");
    }

    #[test]
    fn file_owned_by_another_user_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev.json");
        fs::write(&path, b"{}").unwrap();
        let metadata = fs::metadata(&path).unwrap();

        check_metadata(&metadata, &path, metadata.uid()).unwrap();
        let err = check_metadata(&metadata, &path, metadata.uid() + 1).unwrap_err();
        assert_eq!(
            problem(&err),
            format!(
                "it belongs to user id {}, not to this user (id {})",
                metadata.uid(),
                metadata.uid() + 1
            )
        );
    }

    #[test]
    fn named_pipe_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev.json");
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);

        let err = read(&path).unwrap_err();
        assert_eq!(problem(&err), "it is a named pipe, not a regular file");
    }

    #[test]
    fn symlinked_file_is_refused_naming_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("precious");
        fs::write(&target, b"keep me").unwrap();
        let path = dir.path().join("dev.json");
        symlink(&target, &path).unwrap();

        let err = read(&path).unwrap_err();
        assert!(
            problem(&err).contains(&target.display().to_string()),
            "{err}"
        );
        let err = open_or_create(&path, "open lock file").unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(fs::read(&target).unwrap(), b"keep me");
    }

    #[test]
    fn dangling_symlink_is_not_followed_to_create_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("made-elsewhere");
        let path = dir.path().join("dev.lock");
        symlink(&target, &path).unwrap();

        assert!(open_or_create(&path, "open lock file").is_err());
        assert!(create_new(&path).is_err());
        assert!(!target.exists());
    }

    #[test]
    fn symlinked_folder_below_the_root_is_refused_and_nothing_is_created_through_it() {
        let root = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        symlink(elsewhere.path(), root.path().join("sub")).unwrap();
        let dir = root.path().join("sub").join("state");

        let err = create_private_dir(Some(root.path()), &dir).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("sub: it is a symbolic link to"),
            "{message}"
        );
        assert!(!elsewhere.path().join("state").exists());
    }
}
