//! `completions SHELL` and `man`: shell completion scripts and the roff manual page,
//! generated from the same clap definitions that parse argv, so they cannot drift from
//! the flags the binary accepts.
//!
//! May import clap's generators and the rest of `cli`; nothing imports it but `cli`.

use std::io::Write;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::{Cli, CliError, Context};

/// Arguments of `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to write the completion script for (bash, zsh, fish, elvish, powershell).
    shell: Shell,
}

/// Writes the completion script for `args.shell` to standard output.
pub fn run_completions(args: CompletionsArgs) -> Result<(), CliError> {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut command, "srcos-catalog", &mut out);
    write_stdout(&out)
}

/// Writes the manual page (roff, section 1) to standard output: the top-level page, then
/// one section per subcommand.
pub fn run_man() -> Result<(), CliError> {
    let command = Cli::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(command.clone())
        .render(&mut out)
        .context(|| "rendering the manual page".into())?;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("srcos-catalog-{}", sub.get_name());
        clap_mangen::Man::new(sub.clone())
            .title(name)
            .render(&mut out)
            .context(|| format!("rendering the manual page of {}", sub.get_name()))?;
    }
    write_stdout(&out)
}

fn write_stdout(bytes: &[u8]) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .context(|| "writing to standard output".into())
}
