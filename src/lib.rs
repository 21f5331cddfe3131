//! autotrade-tui: ML signals and AMD phases turned into sized, confirmable trading decisions.

pub mod analytics;
pub mod api;
pub mod app;
pub mod backtest;
pub mod broker;
pub mod cli;
pub mod commands;
pub mod config;
pub mod desk;
pub mod domain;
pub mod engine;
pub mod form;
pub mod keymap;
pub mod lock;
pub mod logging;
pub mod market;
pub mod mcp;
pub mod ml_engine;
pub mod notify;
pub mod remote;
pub mod simulated;
pub mod source;
pub mod store;
pub mod suggest;
pub mod tui;
pub mod ui;
