//! `completions` and `man` are generated from the clap definitions: every subcommand and
//! flag the binary accepts appears in them, and the bash script is valid bash.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_srcos-catalog");

fn run(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("run srcos-catalog");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The subcommands, from `--help` (so a new one is covered without editing this test).
fn subcommands() -> Vec<String> {
    let help = run(&["--help"]);
    let commands = help
        .split("Commands:")
        .nth(1)
        .and_then(|rest| rest.split("Options:").next())
        .expect("a Commands section");
    commands
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completions_are_valid_bash_and_name_every_subcommand() {
    let script = run(&["completions", "bash"]);
    let subs = subcommands();
    assert!(subs.len() >= 18, "{subs:?}");
    for sub in &subs {
        assert!(script.contains(sub.as_str()), "completion misses {sub}");
    }
    for flag in ["--data", "--log-vkey", "--server", "--witness-vkey"] {
        assert!(script.contains(flag), "completion misses {flag}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("srcos-catalog.bash");
    std::fs::write(&path, &script).expect("write script");
    let status = Command::new("bash")
        .arg("-n")
        .arg(&path)
        .status()
        .expect("bash");
    assert!(status.success(), "bash -n refused the completion script");
}

#[test]
fn every_shell_gets_a_script() {
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        assert!(
            run(&["completions", shell]).contains("srcos-catalog"),
            "{shell}"
        );
    }
    let out = Command::new(BIN)
        .args(["completions", "tcsh"])
        .output()
        .expect("run");
    assert!(!out.status.success(), "an unknown shell is a usage error");
}

#[test]
fn the_manual_has_a_page_per_subcommand() {
    let roff = run(&["man"]);
    assert!(
        roff.starts_with(".ie") || roff.contains(".TH srcos-catalog 1"),
        "{}",
        &roff[..200]
    );
    for sub in subcommands() {
        let title = format!(".TH srcos-catalog-{sub} ");
        assert!(roff.contains(&title), "the manual misses {sub}");
    }
    // Flags of a subcommand page are there, as roff escapes them.
    assert!(
        roff.contains("\\-\\-target\\-prefix"),
        "grant's flags are missing"
    );
}
