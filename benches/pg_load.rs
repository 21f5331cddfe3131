#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! Load on a shared store: 1,000 users × 3 symbols on one PostgreSQL database (the bench's own
//! server, `tests/support/pg.rs`), against a loopback ML engine, with one `serve` instance and
//! with three. While every user's loop runs (one check a minute each), 8 clients send
//! `GET status/{user}` and `GET decisions/{user}?limit=10` round-robin over the instances.
//! Measured: the API's latency (p50, p99, max) and throughput; each user's cycle time (from
//! the cycle's start, `state.last_cycle_at`, to the last decision it stored) and how late the
//! cycles come (the gap between a user's two cycles beyond its one minute); and how long the
//! instances take to start every user's loop.
//! `cargo bench --bench pg_load -- [users] [seconds]` (defaults 1000, 75).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn query_i64s(url: &str, sql: &str) -> Vec<i64> {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.query(sql, &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn measure(pg: &support::pg::PgServer, instances_n: usize, users: usize, seconds: u64) {
    let url = pg.new_database();
    let ml = support::bench::ml_engine(true);
    let dir = tempfile::tempdir().unwrap();
    let config = support::write_config(
        dir.path(),
        Some(&ml.url),
        "symbols = [\"BTC/USD\", \"ETH/USD\", \"SOL/USD\"]\ncheck_interval_minutes = 1\npending_expiry_minutes = 5",
        &format!(
            "\n[store]\nurl = \"{url}\"\nmax_users = {}\npool_size = 8\n",
            users + 10
        ),
    );
    let instances: Vec<support::serve::Instance> = (0..instances_n)
        .map(|_| support::serve::start(&config, &[("AUTOTRADE_API_RATE_LIMIT", "0")]))
        .collect();
    let bases: Vec<String> = instances.iter().map(|i| i.base.clone()).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let http = reqwest::Client::new();

    // The users, made through the instances in turn (the file's user is one of them).
    let t0 = Instant::now();
    rt.block_on(async {
        let ids: Vec<usize> = (1..users).collect();
        for chunk in ids.chunks(16) {
            let posts = chunk.iter().map(|n| {
                let base = bases[n % bases.len()].clone();
                let http = http.clone();
                async move {
                    let r = http
                        .post(format!("{base}/api/v1/auto-trade/config"))
                        .json(&serde_json::json!({"config": {
                            "user_id": format!("u{n:04}"),
                            "symbols": ["BTC/USD", "ETH/USD", "SOL/USD"],
                            "check_interval_minutes": 1,
                            "enabled": true}}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
                }
            });
            futures::future::join_all(posts).await;
        }
    });
    let made = t0.elapsed();
    // Every user's loop runs and has cycled once.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let cycled = query_i64s(
            &url,
            "SELECT COUNT(*) FROM state WHERE last_cycle_at IS NOT NULL",
        )[0];
        if cycled as usize >= users {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {cycled} of {users} users cycled"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let all_running = t0.elapsed();
    let owners = query_i64s(&url, "SELECT COUNT(DISTINCT owner) FROM loop_leases")[0];

    // The API under load while the loops run.
    let window_start_ms = query_i64s(
        &url,
        "SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT",
    )[0];
    let (latencies, requests, errors) = rt.block_on(async {
        let stop = Instant::now() + Duration::from_secs(seconds);
        let clients = (0..8).map(|c| {
            let http = http.clone();
            let bases = bases.clone();
            async move {
                let mut lat = Vec::new();
                let mut errors = 0usize;
                let mut i = c;
                while Instant::now() < stop {
                    let user = if i % users == 0 {
                        "default".to_string()
                    } else {
                        format!("u{:04}", i % users)
                    };
                    let base = &bases[i % bases.len()];
                    let path = if i % 2 == 0 {
                        format!("{base}/api/v1/auto-trade/status/{user}")
                    } else {
                        format!("{base}/api/v1/auto-trade/decisions/{user}?limit=10")
                    };
                    let t = Instant::now();
                    match http.get(path).send().await {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            lat.push(t.elapsed().as_secs_f64() * 1000.0);
                        }
                        _ => errors += 1,
                    }
                    i += 8;
                }
                (lat, errors)
            }
        });
        let all = futures::future::join_all(clients).await;
        let mut lat: Vec<f64> = all.iter().flat_map(|(l, _)| l.iter().copied()).collect();
        lat.sort_by(f64::total_cmp);
        let n = lat.len();
        (lat, n, all.iter().map(|(_, e)| e).sum::<usize>())
    });

    // Cycle time of each user's latest cycle, and how late the cycles in the window came.
    let durations: Vec<f64> = {
        let mut v: Vec<f64> = query_i64s(
            &url,
            "SELECT MAX(d.created_at) - s.last_cycle_at FROM state s
             JOIN decisions d ON d.user_id = s.user_id AND d.origin = 'auto'
                 AND d.created_at >= s.last_cycle_at
             GROUP BY s.user_id, s.last_cycle_at",
        )
        .into_iter()
        .map(|ms| ms as f64)
        .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let lateness: Vec<f64> = {
        let mut v: Vec<f64> = query_i64s(
            &url,
            &format!(
                "SELECT gap - 60000 FROM (
                   SELECT created_at, created_at - LAG(created_at) OVER (PARTITION BY user_id ORDER BY seq) AS gap
                   FROM decisions WHERE origin = 'auto' AND symbol = 'BTC/USD'
                 ) g WHERE gap IS NOT NULL AND created_at >= {window_start_ms}"
            ),
        )
        .into_iter()
        .map(|ms| ms as f64)
        .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    println!(
        "{instances_n} instance(s), {users} users x 3 symbols ({owners} owning loops): users made in {:.1} s, every loop cycled after {:.1} s",
        made.as_secs_f64(),
        all_running.as_secs_f64()
    );
    println!(
        "  API: {requests} requests in {seconds} s ({:.0}/s), {errors} errors; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        requests as f64 / seconds as f64,
        pct(&latencies, 0.5),
        pct(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "  cycle time per user: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} users)",
        pct(&durations, 0.5),
        pct(&durations, 0.99),
        durations.last().copied().unwrap_or(f64::NAN),
        durations.len()
    );
    println!(
        "  cycles later than their minute: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} cycles in the window); load {}",
        pct(&lateness, 0.5),
        pct(&lateness, 0.99),
        lateness.last().copied().unwrap_or(f64::NAN),
        lateness.len(),
        support::bench::load()
    );
    drop(instances);
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let users: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let seconds: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(75);
    let Some(pg) = support::pg::start() else {
        println!("SKIPPED: no PostgreSQL installed");
        return;
    };
    for n in [1, 3] {
        measure(&pg, n, users, seconds);
    }
}
