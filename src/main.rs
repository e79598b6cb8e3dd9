//! The `rewind` binary: parse arguments, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

// Building and dropping large JSON states is allocation-bound; mimalloc halves that cost
// (see BENCHMARKS.md). The library leaves the choice to the program.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Commands run on a thread with the stack reducers need (see `budget::THREAD_STACK`);
    // where the system gives no such thread, here.
    let work = std::thread::Builder::new()
        .name("main".into())
        .stack_size(rewind::budget::THREAD_STACK)
        .spawn(rewind::budget::on_large_stack(run));
    match work {
        Ok(handle) => handle
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        Err(_) => run(),
    }
}

fn run() -> ExitCode {
    let args = match rewind::cli::with_default_command(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("rewind: {}", rewind::cli::safe_message(&message));
            return ExitCode::from(2);
        }
    };
    let cli = rewind::cli::Cli::parse_from(args);
    match rewind::cli::run(cli) {
        Ok(code) => code,
        Err(err) if rewind::cli::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("rewind: {}", rewind::cli::safe_message(&format!("{err:#}")));
            ExitCode::from(2)
        }
    }
}
