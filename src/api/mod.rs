//! `autotrade-tui serve`: the engine headless, with the seed's REST API.

use crate::commands::Context;

pub async fn serve(_ctx: Context, listen: &str) -> color_eyre::Result<u8> {
    eprintln!("error: serve on {listen} is not available in this build");
    Ok(crate::commands::EXIT_USAGE)
}
