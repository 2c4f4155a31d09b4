//! The `srcos-catalog` binary: a thin shell over [`srcos_catalog::cli`].

fn main() -> std::process::ExitCode {
    srcos_catalog::cli::main()
}
