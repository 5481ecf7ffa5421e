//! The `nabla` binary: parses the command line and hands off to `nabla::cli`-style modules.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    ExitCode::SUCCESS
                }
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    ExitCode::from(2)
                }
                _ => {
                    eprintln!("{}", cli::one_line(&e.render().to_string()));
                    ExitCode::from(2)
                }
            };
        }
    };
    let result = match cli.command {
        Command::Train(args) => cli::train::run(args),
        Command::LrFind(args) => cli::lr_find::run(args),
        Command::Evaluate(args) => cli::evaluate::run(args),
        Command::Predict(args) => cli::predict::run(args),
        Command::Inspect(args) => cli::inspect::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            let user = e.chain().any(|c| {
                c.downcast_ref::<nabla::NablaError>()
                    .is_some_and(|n| n.is_user_error())
            });
            ExitCode::from(if user { 2 } else { 1 })
        }
    }
}
