//! `srcos-catalog fsck`.

use std::path::PathBuf;

use clap::Args;

use super::{default_data_dir, CliError};
use crate::catalog::Catalog;
use crate::log::fsck::fsck;
use crate::log::snapshot::check_against;
use crate::storage::records::scratch_records;

/// Arguments of `fsck`.
#[derive(Debug, Args)]
pub struct FsckArgs {
    /// The data directory.
    #[arg(long, default_value_os_t = default_data_dir())]
    data: PathBuf,
    /// Also replay every entry into a fresh catalog and compare its state digest with
    /// every catalog snapshot's (DATA/snapshot/) at the snapshot's size.
    #[arg(long)]
    full: bool,
    /// Where `--full` keeps the records it rebuilds, on disk so that its memory does not
    /// grow with the log (about 1.7 KB per entry, removed when done; default
    /// DATA/scratch), and the publications its state digests sort (ADR 0020).
    #[arg(long, value_name = "DIR")]
    scratch: Option<PathBuf>,
}

/// Runs the check and prints its findings; fails if anything is wrong.
pub fn run(args: FsckArgs) -> Result<(), CliError> {
    super::progress::install();
    let report = fsck(&args.data)?;
    let mut problems = report.problems.clone();
    if args.full && problems.is_empty() {
        let scratch = args
            .scratch
            .clone()
            .unwrap_or_else(|| args.data.join("scratch"));
        let fresh = scratch_records(scratch.clone());
        let replayed = crate::log::replay::replay_dir(
            &args.data,
            None,
            Catalog::with_store(fresh()?),
            &scratch,
        )?;
        println!(
            "replayed {} entries: state digest {}",
            replayed.checkpoint.size,
            hex::encode(replayed.state_digest)
        );
        let log = crate::storage::LogBackends::posix(&args.data)?;
        for found in check_against(
            &args.data,
            log.tiles.as_ref(),
            &replayed,
            fresh.as_ref(),
            &scratch,
        ) {
            match (&found.problem, found.size) {
                (None, Some(size)) => {
                    println!("snapshot at size {size}: state digest equal to the replay's")
                }
                (problem, _) => problems.push(format!(
                    "snapshot {}: {}",
                    found.path.display(),
                    problem.as_deref().unwrap_or("unreadable")
                )),
            }
        }
    }
    for problem in &problems {
        println!("PROBLEM: {problem}");
    }
    if problems.is_empty() {
        println!(
            "OK: {} entries, {} tiles recomputed and equal; root matches the checkpoint at size {}",
            report.entries, report.tiles_checked, report.tree_size
        );
        Ok(())
    } else {
        Err(CliError(format!(
            "{} problem(s) in {}",
            problems.len(),
            args.data.display()
        )))
    }
}
