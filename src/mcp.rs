//! `autotrade-tui mcp`: the seed's agent tools over the Model Context Protocol (stdio).

use crate::commands::Context;

pub async fn run(_ctx: Context) -> color_eyre::Result<u8> {
    eprintln!("error: mcp is not available in this build");
    Ok(crate::commands::EXIT_USAGE)
}
