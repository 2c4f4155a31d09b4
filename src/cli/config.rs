//! `serve --config FILE.toml`: every `serve` flag from a TOML file, the command line
//! overriding it. A key is a flag's long name (`batch-max = 64`, `witness = ["URL=F"]`);
//! a key that names no flag, a table, or a list for a flag that takes one value is an
//! error, so a typo never silently falls back to a default. A flag given on the command
//! line replaces the file's value (for a repeatable flag, all of the file's values).
//!
//! The file's values become flag tokens placed before the command line's, and clap
//! parses the whole again: the file takes exactly what the flags take, checked by the
//! same parsers. An example is `docs/serve.example.toml`.
//!
//! May import nothing of the crate but `super` (its error type).

use std::ffi::OsString;
use std::path::Path;

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command};

/// Largest configuration file read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The flag that names the file itself (not allowed inside it).
pub const CONFIG_FLAG: &str = "config";

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_CONFIG_BYTES`].
    #[error("{0} is larger than 1 MiB")]
    TooLarge(String),
    /// The file is not TOML.
    #[error("{path} is not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// A key or value does not fit a flag.
    #[error("{path}: {message}")]
    Key {
        /// The file.
        path: String,
        /// What is wrong with which key.
        message: String,
    },
    /// The merged flags do not parse.
    #[error("{0}")]
    Flags(#[from] clap::Error),
}

/// Parses `cli` (the tokens after the subcommand's name) with the file at `path` under
/// them; returns the merged matches of `command`.
pub fn merge(command: &Command, path: &Path, cli: &[OsString]) -> Result<ArgMatches, ConfigError> {
    let shown = path.display().to_string();
    let text = read(path)?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Syntax {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    let on_cli = parse(command, cli)?;
    let from_file =
        tokens(command, &table, &on_cli).map_err(|KeyError(message)| ConfigError::Key {
            path: shown,
            message,
        })?;
    let mut all = from_file;
    all.extend(cli.iter().cloned());
    parse(command, &all)
}

fn read(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read as _;
    let shown = || path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| ConfigError::Read {
        path: shown(),
        source,
    })?;
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|source| ConfigError::Read {
            path: shown(),
            source,
        })?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLarge(shown()));
    }
    Ok(text)
}

fn parse(command: &Command, tokens: &[OsString]) -> Result<ArgMatches, ConfigError> {
    let name = OsString::from(command.get_name());
    Ok(command
        .clone()
        .try_get_matches_from(std::iter::once(name).chain(tokens.iter().cloned()))?)
}

/// What is wrong with one key of the file (the file's name is added by [`merge`]).
#[derive(Debug)]
struct KeyError(String);

/// The flag tokens for the file's keys that the command line does not set.
fn tokens(
    command: &Command,
    table: &toml::Table,
    on_cli: &ArgMatches,
) -> Result<Vec<OsString>, KeyError> {
    let mut out = Vec::new();
    for (key, value) in table {
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()) && key != CONFIG_FLAG && key != "help")
            .ok_or_else(|| KeyError(format!("unknown key {key:?}: it names no flag of `serve`")))?;
        if on_cli.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine) {
            continue;
        }
        let flag = format!("--{key}");
        let takes_value = !matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse);
        let repeatable = matches!(arg.get_action(), ArgAction::Append);
        match value {
            toml::Value::Boolean(on) if !takes_value => {
                if *on {
                    out.push(flag.into());
                }
            }
            toml::Value::Array(items) if repeatable => {
                for item in items {
                    out.push(flag.clone().into());
                    out.push(scalar(key, item)?.into());
                }
            }
            toml::Value::Array(_) => {
                return Err(KeyError(format!("key {key:?} takes one value, not a list")))
            }
            other if takes_value => {
                out.push(flag.into());
                out.push(scalar(key, other)?.into());
            }
            _ => return Err(KeyError(format!("key {key:?} is a switch: true or false"))),
        }
    }
    Ok(out)
}

/// One value as the flag's text.
fn scalar(key: &str, value: &toml::Value) -> Result<String, KeyError> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(n) => Ok(n.to_string()),
        toml::Value::Float(x) => Ok(x.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        _ => Err(KeyError(format!(
            "key {key:?}: a string, number or boolean is expected"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, ArgAction};

    fn command() -> Command {
        Command::new("serve")
            .arg(Arg::new("config").long("config"))
            .arg(
                Arg::new("listen")
                    .long("listen")
                    .default_value("127.0.0.1:8080"),
            )
            .arg(
                Arg::new("batch-max")
                    .long("batch-max")
                    .value_parser(clap::value_parser!(u64)),
            )
            .arg(
                Arg::new("witness")
                    .long("witness")
                    .action(ArgAction::Append),
            )
            .arg(
                Arg::new("limit-loopback")
                    .long("limit-loopback")
                    .action(ArgAction::SetTrue),
            )
    }

    fn merged(file: &str, cli: &[&str]) -> Result<ArgMatches, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("serve.toml");
        std::fs::write(&path, file).map_err(|e| e.to_string())?;
        let cli: Vec<OsString> = cli.iter().map(OsString::from).collect();
        merge(&command(), &path, &cli).map_err(|e| e.to_string())
    }

    fn listen(m: &ArgMatches) -> Option<String> {
        m.get_one::<String>("listen").cloned()
    }

    fn witnesses(m: &ArgMatches) -> Vec<String> {
        m.get_many::<String>("witness")
            .map(|v| v.cloned().collect())
            .unwrap_or_default()
    }

    #[test]
    fn the_file_sets_and_the_command_line_overrides() {
        let file = "listen = \"0.0.0.0:9\"\nbatch-max = 64\nwitness = [\"a=1\", \"b=2\"]\nlimit-loopback = true\n";
        let m = merged(file, &[]).unwrap();
        assert_eq!(listen(&m).as_deref(), Some("0.0.0.0:9"));
        assert_eq!(m.get_one::<u64>("batch-max"), Some(&64));
        assert_eq!(witnesses(&m), ["a=1", "b=2"]);
        assert!(m.get_flag("limit-loopback"));

        let m = merged(file, &["--listen", "1.2.3.4:5", "--witness", "c=3"]).unwrap();
        assert_eq!(listen(&m).as_deref(), Some("1.2.3.4:5"));
        assert_eq!(
            witnesses(&m),
            ["c=3"],
            "the command line replaces the whole list"
        );
        assert_eq!(m.get_one::<u64>("batch-max"), Some(&64));
    }

    #[test]
    fn refusals_name_the_key() {
        let cases = [
            ("listn = \"x\"\n", "unknown key \"listn\""),
            ("config = \"other.toml\"\n", "unknown key \"config\""),
            ("listen = [\"a\", \"b\"]\n", "takes one value"),
            ("limit-loopback = 1\n", "is a switch"),
            ("[listen]\nx = 1\n", "string, number or boolean"),
            ("batch-max = \"many\"\n", "many"),
            ("listen = \n", "not valid TOML"),
        ];
        for (file, want) in cases {
            let err = merged(file, &[]).unwrap_err();
            assert!(err.contains(want), "{file:?}: {err}");
        }
    }
}
