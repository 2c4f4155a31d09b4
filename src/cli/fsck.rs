//! `srcos-catalog fsck`.

use std::path::PathBuf;

use clap::Args;

use super::{default_data_dir, CliError};
use crate::log::fsck::fsck;

/// Arguments of `fsck`.
#[derive(Debug, Args)]
pub struct FsckArgs {
    /// The data directory.
    #[arg(long, default_value_os_t = default_data_dir())]
    data: PathBuf,
}

/// Runs the check and prints its findings; fails if anything is wrong.
pub fn run(args: FsckArgs) -> Result<(), CliError> {
    super::progress::install();
    let report = fsck(&args.data)?;
    for problem in &report.problems {
        println!("PROBLEM: {problem}");
    }
    if report.problems.is_empty() {
        println!(
            "OK: {} entries, {} tiles recomputed and equal; root matches the checkpoint at size {}",
            report.entries, report.tiles_checked, report.tree_size
        );
        Ok(())
    } else {
        Err(CliError(format!(
            "{} problem(s) in {}",
            report.problems.len(),
            args.data.display()
        )))
    }
}
