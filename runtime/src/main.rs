//! `connector`: check, compile and run declarative API connectors.

mod cli;

/// mimalloc rather than the system allocator: requests are built on one worker thread and
/// often freed on another, which glibc's malloc serializes on arena locks (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
