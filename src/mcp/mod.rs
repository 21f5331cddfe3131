//! `autotrade-tui mcp`: the seed's agent tools over the Model Context Protocol, on stdio
//! (JSON-RPC 2.0, one message per line), with the official Rust SDK (`rmcp`).
//!
//! An agent analyses and proposes; every proposal lands in the store as a pending
//! decision with origin agent, where the dashboard and the command line see it. stdout is
//! the protocol: logs go to the log file only.

mod calls;
mod screen;
pub mod tools;

use crate::commands::EXIT_OK;
use crate::desk::Desk;
use calls::{Reply, Tools};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorData,
    Implementation, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig,
    Tool,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler, ServiceExt};
use serde_json::json;
use std::sync::Arc;

/// The MCP server: the tool catalog and the tools behind it.
#[derive(Clone)]
pub struct AgentServer {
    tools: Arc<Tools>,
}

impl AgentServer {
    pub fn new(ctx: Desk) -> color_eyre::Result<AgentServer> {
        let source = ctx.source()?;
        Ok(AgentServer {
            tools: Arc::new(Tools::new(Arc::new(ctx), source)),
        })
    }
}

/// A tool's answer as MCP puts it: the JSON as text and as structured content (which the
/// tool's `outputSchema` describes), or a tool error (`isError: true`) whose first text is the
/// reason, then the decision it logged, if any, as JSON text. An error carries no
/// `structuredContent`: clients built on the TypeScript SDK (the MCP Inspector among them)
/// check any that is present against the output schema, error or not, and would turn the
/// reason into a protocol error the agent never reads.
fn to_result(reply: Reply) -> CallToolResult {
    match reply {
        Reply::Done(value) => CallToolResult::structured(value),
        Reply::Refused { reason, logged } => {
            let mut content = vec![ContentBlock::text(reason)];
            if let Some(log) = logged {
                content.push(ContentBlock::text(log.to_string()));
            }
            CallToolResult::error(content)
        }
    }
}

impl ServerHandler for AgentServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("autotrade-tui", env!("CARGO_PKG_VERSION"))
                    .with_title("autotrade-tui agent tools"),
            )
            .with_instructions(tools::INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools::catalog()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools::catalog().into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // The MCP spec's answer to a tool that does not exist: a protocol error, -32602.
        if !tools::NAMES.contains(&request.name.as_ref()) {
            tracing::warn!(tool = %request.name, "mcp: unknown tool");
            return Err(ErrorData::invalid_params(
                format!("Unknown tool: {}", request.name),
                Some(json!({ "tools": tools::NAMES })),
            ));
        }
        // A message that named a key twice (see `screen`): a tool error naming the key.
        if let Some(dup) = screen::duplicate_in(request.arguments.as_ref()) {
            tracing::warn!(tool = %request.name, "mcp tool refused: {dup}");
            return Ok(to_result(Reply::Refused {
                reason: format!("bad arguments for {}: {dup}: refused", request.name),
                logged: None,
            })
            .into());
        }
        let reply = self.tools.call(&request.name, request.arguments).await;
        Ok(to_result(reply).into())
    }
}

/// Serve the tools on stdin/stdout until the client closes stdin.
pub async fn run(ctx: Desk) -> color_eyre::Result<u8> {
    tracing::info!(data_dir = %ctx.data_dir.display(), "mcp server starting on stdio");
    let server = AgentServer::new(ctx)?;
    let (stdin, stdout) = rmcp::transport::stdio_pipes();
    // Each message is read strictly on its way in: see `screen`.
    let (screened, from_screen) = tokio::io::duplex(screen::BUFFER);
    let screening = tokio::spawn(screen::run(stdin, screened));
    let running = server
        .serve((from_screen, stdout))
        .await
        .map_err(|e| color_eyre::eyre::eyre!("starting the MCP session: {e}"))?;
    let reason = running.waiting().await?;
    screening.abort();
    tracing::info!("mcp server stopped: {reason:?}");
    Ok(EXIT_OK)
}
