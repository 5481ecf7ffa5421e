//! The `nabla` binary: parses the command line and hands off to `nabla::cli`-style modules.

mod cli;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use cli::{Cli, Command};

fn main() -> ExitCode {
    // `nabla train --config FILE`: the file's settings become flags ahead of the user's own.
    let command = Cli::command();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let argv = match command.find_subcommand("train") {
        Some(train) => match cli::config::expand(argv, train) {
            Ok(argv) => argv,
            Err(e) => {
                eprintln!("error: {}", cli::hints::error_chain(&e));
                return ExitCode::from(2);
            }
        },
        None => argv,
    };
    let parsed = command
        .try_get_matches_from(argv)
        .and_then(|m| Cli::from_arg_matches(&m).map(|cli| (cli, m)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
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
        Command::Train(args) => match matches.subcommand_matches("train") {
            Some(m) => cli::train::run(args, m),
            None => Err(anyhow::anyhow!("internal: no matches for train")),
        },
        Command::Explain(args) => cli::explain::run(args),
        Command::Plot(args) => cli::plot::run_plot(args),
        Command::Compare(args) => cli::plot::run_compare(args),
        Command::LrFind(args) => match matches.subcommand_matches("lr-find") {
            Some(m) => cli::lr_find::run(args, m),
            None => Err(anyhow::anyhow!("internal: no matches for lr-find")),
        },
        Command::Evaluate(args) => cli::evaluate::run(args),
        Command::Predict(args) => cli::predict::run(args),
        Command::Inspect(args) => cli::inspect::run(args),
        Command::Export(args) => cli::export::run(args),
    };
    exit_code(result)
}

/// The process's exit code for the subcommand's result, with the error printed.
fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output went away (`nabla predict ... | head`): nothing is wrong
        // with the work, and nobody is left to tell.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) if e.downcast_ref::<cli::signals::Interrupted>().is_some() => ExitCode::from(
            e.downcast_ref::<cli::signals::Interrupted>()
                .map_or(130, |i| i.0),
        ),
        Err(e) => {
            // Library errors name settings by key; the user reads flags.
            eprintln!("error: {}", cli::hints::error_chain(&e));
            let user = e.chain().any(|c| {
                c.downcast_ref::<nabla::NablaError>()
                    .is_some_and(|n| n.is_user_error())
            });
            ExitCode::from(if user { 2 } else { 1 })
        }
    }
}
