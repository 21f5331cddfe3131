#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! One monitoring cycle over N symbols against a loopback ML engine that answers every
//! request after a set delay. `cargo bench --bench cycle -- [symbols] [delay_ms] [cycles]`
//! (defaults 300, 200, 5). Prints each cycle's wall time.

use autotrade_tui::config;
use autotrade_tui::engine::Engine;
use autotrade_tui::store::Store;
use axum::body::Body;
use axum::http::{Response, Uri};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn answer(uri: Uri, delay: Duration) -> Response<Body> {
    tokio::time::sleep(delay).await;
    let body = if uri.path().contains("/signals/") {
        r#"{"direction":"bullish","confidence":0.9,"entry_price":100.0,"take_profit":105.0,"stop_loss":98.0,"risk_reward_ratio":2.5}"#
    } else {
        r#"{"phase":"accumulation","confidence":0.8,"indicators":{}}"#
    };
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap_or_default()
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let symbols: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(300);
    let delay_ms: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200);
    let cycles: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    let delay = Duration::from_millis(delay_ms);

    // The engine under test gets its own runtime (2 workers, as the product runs).
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("server runtime");
    let listener = server_rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local addr");
    server_rt.spawn(async move {
        let app = axum::Router::new().fallback(move |uri: Uri| answer(uri, delay));
        let _ = axum::serve(listener, app).await;
    });

    let syms: Vec<String> = (0..symbols).map(|i| format!("S{i}/USD")).collect();
    let toml = format!(
        "[auto_trade]\nsymbols = {:?}\n[ml_engine]\nurl = \"http://{addr}\"\ntimeout_seconds = 10\n",
        syms
    );
    let cfg = config::parse_str(&toml, "bench").expect("bench config");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(dir.path(), "bench", true).expect("store"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cfg = Arc::new(cfg);
    let desk = autotrade_tui::desk::Desk::new(cfg.clone(), dir.path().into(), store);
    let engine = Engine::new(desk.clone(), desk.source().expect("source"));
    println!(
        "cycle bench: {symbols} symbols, {} requests per cycle, engine delay {delay_ms} ms, max_concurrent_requests {}",
        symbols * 2,
        cfg.ml_engine
            .as_ref()
            .map(|m| m.max_concurrent_requests)
            .unwrap_or(0)
    );
    let mut times = Vec::new();
    for i in 0..cycles {
        let t = Instant::now();
        let (_views, summary) = rt.block_on(engine.run_cycle());
        let el = t.elapsed();
        println!(
            "cycle {}: {:>7.1} ms  ({} symbols, {} unreachable)",
            i + 1,
            el.as_secs_f64() * 1000.0,
            summary.symbols,
            summary.unreachable
        );
        times.push(el);
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "median {:.1} ms = {:.2} round trips of {delay_ms} ms",
        median.as_secs_f64() * 1000.0,
        median.as_secs_f64() * 1000.0 / delay_ms as f64
    );
}
