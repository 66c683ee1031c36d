//! The `mixio` command line.

mod cli;

/// mimalloc rather than the system allocator: under a long mixed load (the soak test in
/// RELIABILITY.md) glibc's malloc kept growing its per-thread arenas; mimalloc returns freed
/// memory to the system.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
