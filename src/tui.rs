//! The dashboard runner.
use crate::commands::Context;
pub async fn run(_ctx: Context) -> color_eyre::Result<u8> {
    Err(color_eyre::eyre::eyre!("the dashboard is not wired yet"))
}
