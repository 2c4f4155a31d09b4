//! The `srcos-catalog` binary: a thin shell over [`srcos_catalog::cli`].

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    srcos_catalog::cli::main()
}

/// glibc gives each thread that contends for the allocator its own arena (up to 8 per
/// core) and rarely returns their memory; under load the server's many short-lived
/// blocking threads grew resident memory by ~100 MB that way. Two arenas cost nothing
/// measurable in throughput on this workload. An explicit `MALLOC_ARENA_MAX` wins.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only adjusts allocator parameters; called before any thread
        // starts, as glibc requires for this option to apply to every thread.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
