#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap: a failure is the report.
//! Three `serve` instances on one PostgreSQL database: each user's loop runs on one instance
//! at a time (one cycle per interval, never two), `kill -9` of the instance that runs a user
//! moves the loop to another within 15 s, a confirm sent to two instances at once executes
//! once, and an event stream on one instance sees the decisions another instance's loop makes.

mod support;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The file's user is checked every 6 s.
const INTERVAL_MS: i64 = 6_000;

use support::serve::Instance;

fn start(config: &std::path::Path) -> Instance {
    start_with(config, "0")
}

/// `rate`: `AUTOTRADE_API_RATE_LIMIT` (requests a second; 0: off).
fn start_with(config: &std::path::Path, rate: &str) -> Instance {
    start_env(config, &[("AUTOTRADE_API_RATE_LIMIT", rate)])
}

fn start_env(config: &std::path::Path, env: &[(&str, &str)]) -> Instance {
    support::serve::start(config, env)
}

fn db(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).unwrap()
}

/// The owner of `user`'s live lease, if any.
fn owner(url: &str, user: &str) -> Option<String> {
    db(url)
        .query_opt(
            "SELECT owner FROM loop_leases WHERE user_id = $1
               AND expires_at > (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT",
            &[&user],
        )
        .unwrap()
        .map(|r| r.get(0))
}

/// The instance whose process id the lease owner names (`host-PID-random`).
fn holder<'a>(instances: &'a mut [Instance], owner: &str) -> &'a mut Instance {
    let pid: u32 = owner.rsplit('-').nth(1).unwrap().parse().unwrap();
    instances.iter_mut().find(|i| i.child.id() == pid).unwrap()
}

/// When each of the file user's cycles stored its decision (one symbol: one per cycle).
fn cycles(url: &str) -> Vec<i64> {
    db(url)
        .query(
            "SELECT created_at FROM decisions WHERE user_id = 'default' AND origin = 'auto' ORDER BY seq",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_fifty_users_take_over_confirm_once_and_stream_each_others_decisions()
{
    let Some(pg) = support::pg::shared() else {
        return support::pg::skip_note();
    };
    let url = pg.new_database();
    let cfg_dir = tempfile::tempdir().unwrap();
    let config = support::write_config(
        cfg_dir.path(),
        None,
        "symbols = [\"BTC/USD\"]\ncheck_interval_minutes = 0.1\npending_expiry_minutes = 60",
        &format!("\n[store]\nurl = \"{url}\"\nmax_users = 60\n"),
    );
    let mut instances: Vec<Instance> = (0..3).map(|_| start(&config)).collect();
    let http = reqwest::Client::new();

    // 49 users more, made through the three instances in turn: 50 in all.
    for n in 1..50 {
        let base = &instances[n % 3].base;
        let r = http
            .post(format!("{base}/api/v1/auto-trade/config"))
            .json(&serde_json::json!({"config": {"user_id": format!("u{n:02}"), "symbols": ["ETH/USD"], "enabled": true}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    // Every user gets one owner, and the three instances share them.
    let u = url.clone();
    let owners = tokio::task::spawn_blocking(move || {
        wait_for("50 leases", Duration::from_secs(30), || {
            let rows = db(&u).query("SELECT owner FROM loop_leases", &[]).unwrap();
            (rows.len() == 50).then(|| {
                rows.iter()
                    .map(|r| r.get::<_, String>(0))
                    .collect::<std::collections::BTreeSet<_>>()
            })
        })
    })
    .await
    .unwrap();
    assert!(!owners.is_empty() && owners.len() <= 3, "{owners:?}");

    // Let the file user's loop cycle, then kill -9 the instance that runs it.
    let u = url.clone();
    tokio::task::spawn_blocking(move || {
        wait_for("two cycles", Duration::from_secs(30), || {
            (cycles(&u).len() >= 2).then_some(())
        })
    })
    .await
    .unwrap();
    let first_owner = blocking(|| owner(&url, "default")).expect("someone runs the file's user");
    let killed_at = {
        let victim = holder(&mut instances, &first_owner);
        unsafe_kill9(&mut victim.child);
        Instant::now()
    };
    instances.retain_mut(|i| i.child.try_wait().map(|s| s.is_none()).unwrap_or(false));
    assert_eq!(instances.len(), 2);
    let u = url.clone();
    let fo = first_owner.clone();
    let new_owner = tokio::task::spawn_blocking(move || {
        wait_for("the takeover", Duration::from_secs(15), || {
            owner(&u, "default").filter(|o| *o != fo)
        })
    })
    .await
    .unwrap();
    let took = killed_at.elapsed();
    assert!(took < Duration::from_secs(15), "taken over after {took:?}");
    eprintln!("takeover after {took:?}");

    // An event stream on the instance that does not run the loop sees the next cycle's
    // decision, made by the other.
    let watcher = instances
        .iter()
        .position(|i| i.child.id().to_string() != new_owner.rsplit('-').nth(1).unwrap())
        .unwrap();
    // Counted before the stream opens: what it shows is newer.
    let before = blocking(|| cycles(&url).len());
    let mut stream = http
        .get(format!(
            "{}/api/v1/auto-trade/events/default",
            instances[watcher].base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    // That instance says the user is monitored (another instance runs its loop) from its next
    // look at the leases, within a second.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status: serde_json::Value = http
            .get(format!(
                "{}/api/v1/auto-trade/status/default",
                instances[watcher].base
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status["monitoring"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "not monitored: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = tokio::time::timeout(Duration::from_secs(20), async {
        let mut text = String::new();
        while let Some(chunk) = stream.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.contains("\"origin\":\"auto\"") {
                return text;
            }
        }
        text
    })
    .await
    .expect("the stream saw the other instance's decision");
    assert!(seen.contains("BTC/USD"), "{seen}");
    assert!(blocking(|| cycles(&url).len()) > before);

    // Never two cycles in one interval, across the takeover too (two loops on one user would
    // interleave theirs; a decision is stamped when its cycle's answers are in, up to a couple
    // of seconds after the cycle began on a loaded machine).
    let at = blocking(|| cycles(&url));
    for w in at.windows(2) {
        assert!(
            w[1] - w[0] >= INTERVAL_MS - 2_000,
            "two cycles {} ms apart: {at:?}",
            w[1] - w[0]
        );
    }

    // A confirm sent to both instances at once executes once.
    let pending: String = blocking(|| db(&url)
        .query_one(
            "SELECT log_id FROM decisions WHERE user_id = 'default' AND status = 'pending' ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .map(|r| r.get(0)))
        .expect("a pending decision");
    let send = |base: String| {
        let http = http.clone();
        let id = pending.clone();
        async move {
            http.post(format!(
                "{base}/api/v1/auto-trade/decisions/default/confirm"
            ))
            .json(&serde_json::json!({"log_id": id}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
        }
    };
    let (a, b) = tokio::join!(
        send(instances[0].base.clone()),
        send(instances[1].base.clone())
    );
    let mut codes = [a, b];
    codes.sort();
    assert_eq!(
        codes,
        [200, 409],
        "one confirm executes, the other is refused"
    );
    let executed: i64 = blocking(|| {
        db(&url)
            .query_one(
                "SELECT COUNT(*) FROM positions WHERE decision_id = $1",
                &[&pending],
            )
            .unwrap()
            .get(0)
    });
    assert_eq!(executed, 1);
}

/// The database client blocks: off the runtime's worker.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// SIGKILL: the instance gets no chance to give its leases up.
fn unsafe_kill9(child: &mut Child) {
    child.kill().unwrap();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_holds_across_instances() {
    let Some(pg) = support::pg::shared() else {
        return support::pg::skip_note();
    };
    let url = pg.new_database();
    let cfg_dir = tempfile::tempdir().unwrap();
    let config = support::write_config(
        cfg_dir.path(),
        None,
        "symbols = [\"BTC/USD\"]\ncheck_interval_minutes = 60\nenabled = false",
        &format!("\n[store]\nurl = \"{url}\"\n"),
    );
    // One request a second, bursts of 2, for this address: counted once across the two.
    let a = start_with(&config, "1");
    let b = start_with(&config, "1");
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut answered = Vec::new();
    for i in 0..8 {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        let r = http
            .get(format!("{base}/api/v1/auto-trade/status/default"))
            .send()
            .await
            .unwrap();
        answered.push(r.status().as_u16());
    }
    let took = started.elapsed().as_secs_f64();
    let ok = answered.iter().filter(|s| **s == 200).count();
    // The burst of 2, and one more for each second the eight requests took.
    let allowed = 2 + took.floor() as usize;
    assert!(
        ok <= allowed,
        "{ok} answered in {took:.2} s, at most {allowed} allowed across both: {answered:?}"
    );
    assert!(answered.contains(&429), "{answered:?}");
    assert_eq!(answered[0], 200, "{answered:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_made_on_one_instance_is_known_to_the_others_with_its_token_and_the_cap_counts_everyone()
 {
    let Some(pg) = support::pg::shared() else {
        return support::pg::skip_note();
    };
    let url = pg.new_database();
    let cfg_dir = tempfile::tempdir().unwrap();
    let config = support::write_config(
        cfg_dir.path(),
        None,
        "symbols = [\"BTC/USD\"]\ncheck_interval_minutes = 60",
        &format!("\n[store]\nurl = \"{url}\"\nmax_users = 2\n"),
    );
    let env = [
        ("AUTOTRADE_API_RATE_LIMIT", "0"),
        ("AUTOTRADE_API_TOKEN", "admin-secret-token-0123456789"),
    ];
    let a = start_env(&config, &env);
    let b = start_env(&config, &env);
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/api/v1/auto-trade/config", a.base))
        .bearer_auth("admin-secret-token-0123456789")
        .json(&serde_json::json!({"config": {"user_id": "alice", "symbols": ["ETH/USD"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let made: serde_json::Value = r.json().await.unwrap();
    let token = made["token"]
        .as_str()
        .expect("a token for alice")
        .to_string();

    // The other instance knows alice and her token within its next look (a second).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = http
            .get(format!("{}/api/v1/auto-trade/status/alice", b.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "alice unknown at the other instance: {}",
            r.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = http
        .get(format!("{}/api/v1/auto-trade/status/default", b.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "alice's token acts for alice alone");
    // The history's search ignores case and takes % and _ as themselves, on PostgreSQL too.
    let history = |q: &'static str| {
        let (http, base, token) = (http.clone(), b.base.clone(), token.clone());
        async move {
            let r = http
                .get(format!("{base}/api/v1/auto-trade/history/alice?query={q}"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<serde_json::Value>().await.unwrap()["events_total"]
                .as_u64()
                .unwrap()
        }
    };
    assert_eq!(history("SETTINGS%20REPLACED").await, 1);
    assert_eq!(history("settings%25replaced").await, 0);
    assert_eq!(history("settings_replaced").await, 0);

    // Two users in the database: the cap of 2 refuses a third at either instance.
    for inst in [&a, &b] {
        let r = http
            .post(format!("{}/api/v1/auto-trade/config", inst.base))
            .bearer_auth("admin-secret-token-0123456789")
            .json(&serde_json::json!({"config": {"user_id": "bob", "symbols": ["ETH/USD"]}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 409);
        let body = r.text().await.unwrap();
        assert!(body.contains("max_users"), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_stopped_with_sigterm_gives_its_loops_up_at_once() {
    let Some(pg) = support::pg::shared() else {
        return support::pg::skip_note();
    };
    let url = pg.new_database();
    let cfg_dir = tempfile::tempdir().unwrap();
    let config = support::write_config(
        cfg_dir.path(),
        None,
        "symbols = [\"BTC/USD\"]\ncheck_interval_minutes = 60",
        &format!("\n[store]\nurl = \"{url}\"\n"),
    );
    let mut instances = vec![start(&config)];
    let u = url.clone();
    let first = tokio::task::spawn_blocking(move || {
        wait_for("the first lease and cycle", Duration::from_secs(20), || {
            owner(&u, "default").filter(|_| !cycles(&u).is_empty())
        })
    })
    .await
    .unwrap();
    instances.push(start(&config));
    let victim = holder(&mut instances, &first);
    let pid = victim.child.id();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let stopped = Instant::now();
    let u = url.clone();
    let next = tokio::task::spawn_blocking(move || {
        wait_for(
            "the other instance to take over",
            Duration::from_secs(15),
            || owner(&u, "default").filter(|o| *o != first),
        )
    })
    .await
    .unwrap();
    let took = stopped.elapsed();
    // Well before the lease's 10 s: it was given up, not left to expire.
    assert!(
        took < Duration::from_secs(5),
        "taken over after {took:?} by {next}"
    );
    // The new owner keeps the user's schedule (one check an hour): no cycle at the takeover.
    let u = url.clone();
    let (before, after) = tokio::task::spawn_blocking(move || {
        let before = cycles(&u).len();
        std::thread::sleep(Duration::from_secs(3));
        (before, cycles(&u).len())
    })
    .await
    .unwrap();
    assert_eq!((before, after), (1, 1), "a cycle at the takeover");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_goes_away_is_said_at_once_and_its_return_is_taken_up() {
    // A server of this test's own: it is stopped and started again.
    let Some(pg) = support::pg::start() else {
        return support::pg::skip_note();
    };
    let url = pg.new_database();
    let cfg_dir = tempfile::tempdir().unwrap();
    let config = support::write_config(
        cfg_dir.path(),
        None,
        "symbols = [\"BTC/USD\"]\ncheck_interval_minutes = 0.05",
        &format!("\n[store]\nurl = \"{url}\"\n"),
    );
    let instance = start(&config);
    let u = url.clone();
    tokio::task::spawn_blocking(move || {
        wait_for("the lease", Duration::from_secs(20), || {
            owner(&u, "default")
        })
    })
    .await
    .unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(8))
        .build()
        .unwrap();
    let get = |path: &'static str| {
        let (http, base) = (http.clone(), instance.base.clone());
        async move {
            let t = Instant::now();
            let r = http.get(format!("{base}{path}")).send().await;
            let code = r.map(|r| r.status().as_u16()).unwrap_or(0);
            (code, t.elapsed())
        }
    };
    assert_eq!(get("/health").await.0, 200);

    tokio::task::block_in_place(|| pg.stop());
    // Said within seconds, and every answer comes (an error), none hangs.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, took) = get("/health").await;
        assert!(code != 0, "/health did not answer within 8 s");
        if code == 503 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never said unhealthy ({code}, {took:?})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for _ in 0..3 {
        let (code, took) = get("/api/v1/auto-trade/status/default").await;
        assert!(code >= 500, "status answered {code} without its database");
        assert!(took < Duration::from_secs(6), "status took {took:?}");
    }

    tokio::task::block_in_place(|| pg.start_again());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, _) = get("/api/v1/auto-trade/status/default").await;
        if code == 200 && get("/health").await.0 == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never recovered ({code})");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The loop holds its lease again and writes.
    let u = url.clone();
    tokio::task::spawn_blocking(move || {
        wait_for("the lease again", Duration::from_secs(20), || {
            owner(&u, "default")
        })
    })
    .await
    .unwrap();
}
