//! Damaging a stopped node's data files: the `corrupt` nemesis's hands.
//!
//! The nemesis decides what to damage (which node, file, offset, bits, or
//! length to cut to, all from the run's seed); a backend only lists a
//! killed node's data files and applies one [`FileDamage`] to one of them.
//! The local backend does that on the host's data directory with the
//! functions here; the Docker backend runs [`damage_script`] in a
//! throwaway container that mounts the stopped node's `/data` volume, so
//! neither needs a host bind mount nor a running node; the SSH backend
//! runs the same scripts on the node's host, over SSH. The scripts quote
//! their directory ([`crate::ssh::quote`]), so any path is one word.
//!
//! The node must be down while its files change: a running engine holds
//! them open and would race the change (and a flip under a live engine is
//! a different fault from the one the event records).

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::ssh::quote::quote;
use crate::{ClusterError, DataFile, FileDamage, Result};

/// Most files listed; a data directory holds a handful of segments and tables.
const MAX_FILES: usize = 10_000;

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> ClusterError {
    move |e| ClusterError::Other(format!("{what}: {e}"))
}

/// The regular files at the top of `dir`, by name.
pub fn list(dir: &Path) -> Result<Vec<DataFile>> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(io_err(format!("list {}", dir.display())))?;
    for entry in entries.take(MAX_FILES) {
        let entry = entry.map_err(io_err(format!("list {}", dir.display())))?;
        let meta = entry.metadata().map_err(io_err(format!("stat {}", entry.path().display())))?;
        if meta.is_file() {
            out.push(DataFile { name: entry.file_name().to_string_lossy().into_owned(), bytes: meta.len() });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Applies `damage` to its file in `dir`, fsynced.
pub fn apply(dir: &Path, damage: &FileDamage) -> Result<()> {
    damage.check_name().map_err(ClusterError::Other)?;
    let path = dir.join(damage.file());
    let what = |op: &str| format!("{op} {}", path.display());
    let file = OpenOptions::new().read(true).write(true).open(&path).map_err(io_err(what("open")))?;
    let len = file.metadata().map_err(io_err(what("stat")))?.len();
    match damage {
        FileDamage::Flip { offset, mask, .. } => {
            if *offset >= len || *mask == 0 {
                return Err(ClusterError::Other(format!(
                    "no flip of {mask:#04x} at byte {offset} of {len} in {}",
                    path.display()
                )));
            }
            let mut byte = [0u8; 1];
            file.read_exact_at(&mut byte, *offset).map_err(io_err(what("read")))?;
            byte[0] ^= mask;
            file.write_all_at(&byte, *offset).map_err(io_err(what("write")))?;
        }
        FileDamage::Truncate { len: to, .. } => {
            if *to >= len {
                return Err(ClusterError::Other(format!("cannot cut {} of {len} bytes to {to}", path.display())));
            }
            file.set_len(*to).map_err(io_err(what("truncate")))?;
        }
    }
    file.sync_all().map_err(io_err(what("fsync")))
}

/// A POSIX shell script (coreutils: `dd`, `od`, `truncate`) that applies
/// `damage` to its file in `dir`, for a container with the node's volume.
/// It prints the byte before and after a flip, and fails (non-zero) when
/// the file is missing or the offset or length is out of range.
pub fn damage_script(dir: &str, damage: &FileDamage) -> Result<String> {
    damage.check_name().map_err(ClusterError::Other)?;
    let path = quote(&format!("{dir}/{}", damage.file()));
    let size = format!("set -eu; f={path}; test -f \"$f\"; size=$(stat -c %s \"$f\"); ");
    Ok(match damage {
        FileDamage::Flip { offset, mask, .. } => format!(
            "{size}test {offset} -lt \"$size\"; \
             b=$(dd if=\"$f\" bs=1 skip={offset} count=1 2>/dev/null | od -An -tu1 | tr -d ' \\n'); \
             n=$(( b ^ {mask} )); printf \"$(printf '\\\\%03o' \"$n\")\" | dd of=\"$f\" bs=1 seek={offset} count=1 conv=notrunc 2>/dev/null; \
             sync; echo \"before=$b after=$n\""
        ),
        FileDamage::Truncate { len, .. } => format!("{size}test {len} -lt \"$size\"; truncate -s {len} \"$f\"; sync; echo \"cut $size to {len}\""),
    })
}

/// The listing script: `name size` per regular file at the top of `dir`.
pub fn list_script(dir: &str) -> String {
    format!(
        "set -eu; cd -- {}; for f in *; do if [ -f \"$f\" ]; then echo \"$f $(stat -c %s \"$f\")\"; fi; done",
        quote(dir)
    )
}

/// Parses what [`list_script`] printed.
pub fn parse_listing(out: &str) -> Result<Vec<DataFile>> {
    let mut files: Vec<DataFile> = out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(MAX_FILES)
        .map(|l| {
            let (name, bytes) =
                l.rsplit_once(' ').ok_or_else(|| ClusterError::Other(format!("bad listing line {l:?}")))?;
            let bytes = bytes.parse().map_err(|_| ClusterError::Other(format!("bad size in listing line {l:?}")))?;
            Ok(DataFile { name: name.to_string(), bytes })
        })
        .collect::<Result<_>>()?;
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flip(file: &str, offset: u64, mask: u8) -> FileDamage {
        FileDamage::Flip { file: file.into(), offset, mask }
    }

    #[test]
    fn flips_and_cuts_change_exactly_what_they_say() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.log"), [0u8, 1, 2, 3]).unwrap();
        apply(dir.path(), &flip("a.log", 2, 0x81)).unwrap();
        assert_eq!(std::fs::read(dir.path().join("a.log")).unwrap(), vec![0, 1, 0x83, 3]);
        apply(dir.path(), &FileDamage::Truncate { file: "a.log".into(), len: 1 }).unwrap();
        assert_eq!(std::fs::read(dir.path().join("a.log")).unwrap(), vec![0]);
        assert_eq!(list(dir.path()).unwrap(), vec![DataFile { name: "a.log".into(), bytes: 1 }]);
    }

    #[test]
    fn out_of_range_and_escaping_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.log"), [0u8; 4]).unwrap();
        assert!(apply(dir.path(), &flip("a.log", 4, 1)).is_err());
        assert!(apply(dir.path(), &flip("a.log", 0, 0)).is_err());
        assert!(apply(dir.path(), &FileDamage::Truncate { file: "a.log".into(), len: 4 }).is_err());
        assert!(apply(dir.path(), &flip("../a.log", 0, 1)).is_err());
        assert!(damage_script("/data", &flip("../x", 0, 1)).is_err());
    }

    /// A directory with a space and a quote in its name is one word to the
    /// scripts (the SSH backend's paths reach a remote shell).
    #[test]
    fn the_scripts_take_any_directory() {
        let top = tempfile::tempdir().unwrap();
        let dir = top.path().join("it's a dir; $(touch pwned)");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("a.log"), [1u8, 2]).unwrap();
        let dir_text = dir.display().to_string();
        let sh =
            |script: String| std::process::Command::new("sh").arg("-c").arg(script).current_dir(top.path()).output();
        let listing = sh(list_script(&dir_text)).unwrap();
        assert!(listing.status.success(), "{}", String::from_utf8_lossy(&listing.stderr));
        assert_eq!(parse_listing(&String::from_utf8_lossy(&listing.stdout)).unwrap().len(), 1);
        assert!(sh(damage_script(&dir_text, &flip("a.log", 0, 1)).unwrap()).unwrap().status.success());
        assert_eq!(std::fs::read(dir.join("a.log")).unwrap(), vec![0, 2]);
        assert!(!top.path().join("pwned").exists(), "nothing in the path ran");
    }

    #[test]
    fn the_flip_script_flips_the_same_bits_as_apply() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.log"), [7u8, 200, 9]).unwrap();
        let script = damage_script(&dir.path().display().to_string(), &flip("a.log", 1, 0x41)).unwrap();
        let out = std::process::Command::new("sh").arg("-c").arg(&script).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "before=200 after=137");
        assert_eq!(std::fs::read(dir.path().join("a.log")).unwrap(), vec![7, 200 ^ 0x41, 9]);
        let cut =
            damage_script(&dir.path().display().to_string(), &FileDamage::Truncate { file: "a.log".into(), len: 2 })
                .unwrap();
        assert!(std::process::Command::new("sh").arg("-c").arg(&cut).status().unwrap().success());
        let listing = std::process::Command::new("sh")
            .arg("-c")
            .arg(list_script(&dir.path().display().to_string()))
            .output()
            .unwrap();
        let files = parse_listing(&String::from_utf8_lossy(&listing.stdout)).unwrap();
        assert_eq!(files, vec![DataFile { name: "a.log".into(), bytes: 2 }]);
    }
}
