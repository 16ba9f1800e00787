//! `vigo-agent`: the command-line entry point of the agent.

mod accounts;
mod facts;
mod family;
mod providers;

fn main() {}
