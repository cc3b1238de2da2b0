//! `config show|runtime set|default-runtime`: read and edit town.toml (comments kept).

use super::output::line;
use super::Ctx;
use crate::{Error, Result};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// The town's configuration with every default filled in, and every runtime as it runs.
    Show,
    /// Runtimes.
    #[command(subcommand)]
    Runtime(RuntimeCmd),
    /// Set the runtime new agents use.
    DefaultRuntime { name: String },
}

#[derive(Debug, Subcommand)]
pub enum RuntimeCmd {
    /// Set (or define) a runtime's command line: `config runtime set claude -- claude --model opus`.
    Set {
        name: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

pub fn run(ctx: &mut Ctx, cmd: ConfigCmd) -> Result<()> {
    match cmd {
        ConfigCmd::Show => {
            let text = toml::to_string(&ctx.town.config)
                .map_err(|e| Error::bad(format!("cannot show the config: {e}")))?;
            line(&format!("# {}", ctx.town.config_path().display()))?;
            line(text.trim_end())?;
            line("")?;
            line("# Runtimes as agents run them (presets merged with [runtimes.*]):")?;
            for n in ctx.town.config.runtime_names() {
                let rt = ctx.town.config.runtime(&n)?;
                line(&format!(
                    "#   {n:<9} {}  (prompt: {})",
                    rt.command.join(" "),
                    rt.prompt.clone().unwrap_or_default()
                ))?;
            }
            Ok(())
        }
        ConfigCmd::Runtime(RuntimeCmd::Set { name, command }) => {
            ctx.town.set_runtime_command(&name, &command)?;
            line(&format!("Runtime {name}: {}", command.join(" ")))
        }
        ConfigCmd::DefaultRuntime { name } => {
            ctx.town.set_default_runtime(&name)?;
            line(&format!("Default runtime: {name}"))
        }
    }
}
