//! The `gastown-tui` binary: parse the command line, set up error reporting, dispatch.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Readable panic reports; a panic is a bug, and this makes its report useful.
    let _ = color_eyre::config::HookBuilder::default()
        .display_env_section(false)
        .install();
    let cli = gastown_tui::cli::Cli::parse();
    match gastown_tui::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Every variant's message already includes its cause.
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
