//! The `srcos-catalog` binary: a thin shell over [`srcos_catalog::cli`].

/// mimalloc instead of glibc's malloc (ADR 0017). A request's buffers are allocated on
/// an HTTP worker and freed on the sequencer or the committer; glibc serialised those
/// threads on shared arenas (its allocator was ~18 % of the HTTP workers' CPU), and with
/// more arenas it kept memory it rarely returned. mimalloc's per-thread heaps free
/// cross-thread blocks without a lock and return idle pages to the system.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    without_huge_pages();
    srcos_catalog::cli::main()
}

/// Turns transparent huge pages off for this process (`prctl(PR_SET_THP_DISABLE)`),
/// unless `MIMALLOC_ALLOW_THP=1` asks for them. mimalloc advises huge pages on its
/// arenas, so a heap that is mostly free still holds whole 2 MiB pages: under scattered
/// receipt reads at 1 M entries that was 100–140 MB of RSS, and the server went over its
/// 256 MiB budget (ADR 0017, `docs/performance.md`). A kernel without the call keeps
/// its default, which is not an error.
fn without_huge_pages() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some_and(|v| v == "1") {
        return;
    }
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}
