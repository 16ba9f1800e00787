//! `vigo-agent`: the command-line entry point of the agent.

mod accounts;
mod cli;
mod engine;
mod facts;
mod family;
mod providers;
mod report;
mod runner;

fn main() -> std::process::ExitCode {
    cli::main()
}
