//! The `hearth` binary: parses the command line and runs a subcommand. All logic lives in the
//! library crates; this is glue.

mod api_client;
mod cli;
mod collections;
mod commands;
mod config;
mod events;
mod experiments;
mod flags;
mod graphs;
mod jobs;
mod keys;
mod log_writer;
mod models;
mod plugins;
mod prompts;
mod reload;
mod serve;
mod telemetry;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, ConfigCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Serve(args) => serve::run(config::sources(&cli.global, args.listen.as_deref())),
        Command::Config(ConfigCommand::Check) => {
            commands::config_check(&config::sources(&cli.global, None))
        }
        Command::Migrate(command) => {
            commands::migrate(&config::sources(&cli.global, None), command)
        }
        Command::Pull(args) => models::pull(&config::sources(&cli.global, None), args),
        Command::Models(command) => models::run(&config::sources(&cli.global, None), command),
        Command::Keys(command) => keys::run(&config::sources(&cli.global, None), command),
        Command::Users(command) => keys::run_users(&config::sources(&cli.global, None), command),
        Command::Collections(command) => {
            collections::run(&config::sources(&cli.global, None), command)
        }
        Command::Events(command) => events::run(&config::sources(&cli.global, None), command),
        Command::Graphs(command) => graphs::run(&config::sources(&cli.global, None), command),
        Command::Plugins(command) => plugins::run(&config::sources(&cli.global, None), command),
        Command::Jobs(command) => jobs::run(&config::sources(&cli.global, None), command),
        Command::Experiments(command) => {
            experiments::run(&config::sources(&cli.global, None), command)
        }
        Command::Flags(command) => flags::run(&config::sources(&cli.global, None), command),
        Command::Prompts(command) => prompts::run(&config::sources(&cli.global, None), command),
        Command::Memories(command) => {
            graphs::run_memories(&config::sources(&cli.global, None), command)
        }
        Command::Version => {
            commands::version();
            Ok(())
        }
        Command::Completions { shell } => {
            commands::completions(*shell);
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hearth: {error:#}");
            ExitCode::FAILURE
        }
    }
}
