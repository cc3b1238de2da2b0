//! `gastown-tui sim-agent`: the simulated agent (the `sim` runtime). The logic lives in
//! [`crate::agent::sim`]; this only wires it to the process.

use crate::agent::sim;
use crate::{Error, Result};
use std::io::Write;
use std::path::Path;

/// Runs the simulated agent on this terminal until end of input. `sim: crash` ends the process
/// with its own exit code.
pub fn run(town: Option<&Path>, actor: Option<&str>) -> Result<()> {
    let env = sim::SimEnv::from_process(town, super::resolve_actor(actor));
    let code =
        sim::run_stdio(env).map_err(|e| Error::io("run the simulated agent on", "stdio", e))?;
    if code != 0 {
        let _ = std::io::stdout().flush();
        std::process::exit(code);
    }
    Ok(())
}
