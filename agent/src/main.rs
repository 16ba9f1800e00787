//! `vigo-agent`: the command-line entry point of the agent.

mod accounts;
mod cli;
mod engine;
mod enroll;
mod facts;
mod family;
mod net;
mod once;
mod providers;
mod report;
mod run;
mod runner;
mod schedule;
mod service;
mod signal;
mod state;

fn main() -> std::process::ExitCode {
    cli::main()
}
