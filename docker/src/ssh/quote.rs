//! Quoting for the remote shell: every command sent to a host is built here.
//!
//! SSH carries one string per command, which the host's login shell parses
//! (`sh -c <string>`): the protocol has no argument vector. So anything a
//! user passes (a run name, a path, a node id) could reach that shell as
//! code unless it is quoted. Every argument goes through [`quote`]: it is
//! wrapped in single quotes, inside which POSIX sh interprets nothing, and a
//! single quote inside is written as `'\''` (close, an escaped quote,
//! reopen). An argument that is made only of characters no shell treats
//! specially is left bare, so commands stay readable in errors and logs.
//! [`command`] joins quoted arguments into one command line; a script that
//! needs pipes or `&&` is assembled from such command lines by the caller,
//! never from raw input. [`as_root`] runs such a script through
//! `sudo -n -- sh -c <script>`, the script one quoted argument, for a login
//! other than root.

/// Characters that are never special to a POSIX shell, in any position
/// (a leading `-` is harmless to the shell; programs see it as a flag,
/// which is the caller's business, and `--` is used where it matters).
fn is_plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ',' | ':' | '=' | '+' | '@' | '%')
}

/// `arg` as one word of a POSIX shell command, whatever it holds.
pub fn quote(arg: &str) -> String {
    if !arg.is_empty() && arg.chars().all(is_plain) {
        return arg.to_string();
    }
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('\'');
    for c in arg.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// `argv` as one shell command line, every argument quoted.
pub fn command<S: AsRef<str>>(argv: &[S]) -> String {
    assert!(!argv.is_empty(), "a command has a program");
    argv.iter().map(|a| quote(a.as_ref())).collect::<Vec<_>>().join(" ")
}

/// `script` run as root through sudo: `sudo -n -- sh -c <script>`, the
/// script one quoted argument (`-n`: fail at once rather than ask for a
/// password; `--`: nothing after it is sudo's option).
pub fn as_root(script: &str) -> String {
    command(&["sudo", "-n", "--", "sh", "-c", script])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `line` in a real `sh -c` with `printf '%s\n'` in front, and
    /// returns the words the shell passed to printf.
    fn words_seen_by_sh(args: &[&str]) -> Vec<String> {
        let mut argv = vec!["printf", "%s\\0"];
        argv.extend_from_slice(args);
        let out = std::process::Command::new("sh").arg("-c").arg(command(&argv)).output().expect("sh runs");
        assert!(out.status.success(), "sh failed: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).expect("utf-8");
        text.split('\0').filter(|w| !w.is_empty()).map(str::to_string).collect()
    }

    #[test]
    fn plain_words_stay_bare() {
        assert_eq!(quote("/tmp/dynamo-workbench/c1-0/n1.log"), "/tmp/dynamo-workbench/c1-0/n1.log");
        assert_eq!(command(&["kill", "-STOP", "--", "123"]), "kill -STOP -- 123");
    }

    #[test]
    fn the_empty_string_is_one_word() {
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn hostile_arguments_reach_the_program_as_they_were() {
        let hostile = [
            "a b",
            "$(touch /tmp/dwb-pwned)",
            "`id`",
            "x; rm -rf /",
            "it's",
            "'",
            "''\\'",
            "a\nb",
            "*",
            "~root",
            "$HOME",
            "!!",
            "-n",
            "a&&b||c|d>e<f",
            "ü/日本",
        ];
        assert_eq!(words_seen_by_sh(&hostile), hostile);
        assert!(!std::path::Path::new("/tmp/dwb-pwned").exists(), "nothing ran");
    }

    /// `as_root` through a stand-in `sudo` on PATH (it checks `-n --` and
    /// runs the rest): a hostile script reaches `sh -c` as one argument
    /// and runs as written, quotes and all.
    #[test]
    fn as_root_passes_the_script_whole() {
        let dir = std::env::temp_dir().join(format!("dwb-sudo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sudo = dir.join("sudo");
        std::fs::write(&sudo, "#!/bin/sh\n[ \"$1\" = -n ] && [ \"$2\" = -- ] || exit 99\nshift 2\nexec \"$@\"\n")
            .unwrap();
        std::process::Command::new("chmod").args(["+x", sudo.to_str().unwrap()]).status().unwrap();
        let script = format!("{}; echo \"$((6 * 7))\"", command(&["printf", "%s\\n", "it's $(id) `x`"]));
        let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
        let out = std::process::Command::new("sh").arg("-c").arg(as_root(&script)).env("PATH", path).output().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "it's $(id) `x`\n42\n");
        assert!(as_root("iptables -w -F x").starts_with("sudo -n -- sh -c "), "{}", as_root("x"));
    }

    #[test]
    fn a_hostile_path_is_one_argument() {
        let path = "/tmp/dwb test/'; touch /tmp/dwb-pwned2; echo '";
        let line = command(&["ls", "-d", "--", path]);
        assert_eq!(line, "ls -d -- '/tmp/dwb test/'\\''; touch /tmp/dwb-pwned2; echo '\\'''");
        assert_eq!(words_seen_by_sh(&[path]), [path]);
        assert!(!std::path::Path::new("/tmp/dwb-pwned2").exists());
    }
}
