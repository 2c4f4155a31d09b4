//! The `srcos-catalog` binary: a thin shell over [`srcos_catalog::cli`].

/// mimalloc instead of glibc's malloc (ADR 0017). A request's buffers are allocated on
/// an HTTP worker and freed on the sequencer or the committer; glibc serialised those
/// threads on shared arenas (its allocator was ~18 % of the HTTP workers' CPU), and with
/// more arenas it kept memory it rarely returned. mimalloc's per-thread heaps free
/// cross-thread blocks without a lock and return idle pages to the system.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    srcos_catalog::cli::main()
}
