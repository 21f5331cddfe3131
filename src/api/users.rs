//! The users `serve` trades for, and the supervisor that keeps one monitoring loop running
//! for each enabled user, with that user's settings.
//!
//! The config file's user comes first, with the file's settings (a POST can change them until
//! the next start). Every other user was created by `POST config`, and its settings are kept
//! in the store, so they survive a restart. Whether a user is enabled is the store's state,
//! so `enable`/`disable`/`kill` on the command line steer the file's user here too.

use super::error::ApiError;
use super::settings::{self, API_SOURCE, AutoTradeConfig};
use super::tokens::{self, Tokens};
use crate::config::Config;
use crate::desk::{Desk, make_source};
use crate::engine::{Engine, EngineCommand, EngineEvent};
use crate::source::MarketSource;
use crate::store::Store;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, watch};

/// How often the supervisor looks at the store for users enabled or disabled elsewhere.
const RECONCILE_EVERY: Duration = Duration::from_secs(1);
/// How long a loop may take to finish its cycle on shutdown before it is aborted.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// One user: its config (file's ML engine and account, its own auto-trade settings) and store.
pub struct User {
    pub ctx: Desk,
    /// Changes whenever the settings are replaced, so that the loop is restarted with them.
    pub generation: u64,
}

pub struct Users {
    pub file_user: String,
    base: Arc<Config>,
    data_dir: PathBuf,
    map: RwLock<BTreeMap<String, Arc<User>>>,
    generation: AtomicU64,
    /// Serializes settings changes (two POSTs for one new user open one store).
    changing: tokio::sync::Mutex<()>,
    /// Wakes the supervisor at once after a change through the API.
    pub wake: Notify,
    /// Users whose loop runs now.
    monitoring: Mutex<HashSet<String>>,
    /// The ML engine client, shared by every user's loop (one pool, one concurrency cap).
    ml_source: Option<Arc<dyn MarketSource>>,
    /// Each user's bearer token, by its hash.
    pub tokens: Arc<Tokens>,
    /// Each API user's settings as last read from or written to the store: on PostgreSQL
    /// the supervisor loads a user made or changed by another instance when its stored
    /// settings differ.
    seen: Mutex<HashMap<String, String>>,
    /// `serve` (every user), not `run` (the file's user alone).
    all_users: bool,
    /// On PostgreSQL: this instance's loop leases (one owner per user's loop).
    leases: Option<Arc<crate::store::pg::Leases>>,
    /// On PostgreSQL: the users whose loop some instance runs, as last read.
    held: Mutex<HashSet<String>>,
}

/// How long a loop lease lives without renewal: a stopped instance's users are taken over
/// by another within this and one look of its supervisor.
pub const LEASE_TTL: Duration = Duration::from_secs(10);

impl Users {
    /// The file's user, then every user the store has settings for (`serve`).
    pub fn load(ctx: Desk) -> color_eyre::Result<Users> {
        Users::load_with(ctx, true)
    }

    /// The file's user alone (`run`).
    pub fn file_user_only(ctx: Desk) -> color_eyre::Result<Users> {
        Users::load_with(ctx, false)
    }

    fn load_with(ctx: Desk, stored_users: bool) -> color_eyre::Result<Users> {
        let ml_source = match &ctx.config.ml_engine {
            Some(_) => Some(ctx.source()?),
            None => None,
        };
        let file_user = ctx.config.auto_trade.user_id.clone();
        let base = ctx.config.clone();
        let data_dir = ctx.data_dir.clone();
        let stored = if stored_users {
            ctx.store.all_user_settings()?
        } else {
            Vec::new()
        };
        let tokens = Arc::new(Tokens::from_stored(ctx.store.api_tokens()?));
        let leases = ctx
            .store
            .pg()
            .map(|shared| Arc::new(crate::store::pg::Leases::new(shared.clone(), LEASE_TTL)));
        let users = Users {
            seen: Mutex::new(HashMap::new()),
            all_users: stored_users,
            leases,
            held: Mutex::new(HashSet::new()),
            file_user: file_user.clone(),
            base,
            data_dir,
            map: RwLock::new(BTreeMap::new()),
            generation: AtomicU64::new(1),
            changing: tokio::sync::Mutex::new(()),
            wake: Notify::new(),
            monitoring: Mutex::new(HashSet::new()),
            ml_source,
            tokens,
        };
        users.insert(ctx);
        for (user_id, value) in stored {
            if user_id == file_user {
                tracing::info!(
                    "user {user_id}: settings from {}, not the ones posted before",
                    users.base.source
                );
                continue;
            }
            if users.len() >= users.base.store.max_users {
                tracing::warn!(
                    "user {user_id} not loaded: more than {} users ([store] max_users)",
                    users.base.store.max_users
                );
                continue;
            }
            if let Err(e) = users.load_stored(&user_id, &value.to_string())? {
                tracing::error!("user {user_id}: stored settings refused, not monitored: {e}");
                eprintln!("warning: user {user_id}: stored settings refused, not monitored: {e}");
            }
        }
        Ok(users)
    }

    fn note_seen(&self, user_id: &str, text: &str) {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(user_id.to_string(), text.to_string());
    }

    /// Load an API user from its stored settings `text` (read at start, or changed by another
    /// instance): its store opened (or kept, when loaded already) and its desk put in place.
    /// `Ok(Err(why))` when the settings are refused.
    fn load_stored(
        &self,
        user_id: &str,
        text: &str,
    ) -> color_eyre::Result<std::result::Result<(), String>> {
        self.note_seen(user_id, text);
        let loaded = serde_json::from_str::<AutoTradeConfig>(text)
            .map_err(|e| e.to_string())
            .and_then(|s| {
                settings::api_user_config(&self.base, &s)
                    .map_err(|e| format!("{} (POST its config again within the bounds)", e.detail))
            });
        let mut config = match loaded {
            Ok(c) => c,
            Err(why) => return Ok(Err(why)),
        };
        config.source = API_SOURCE.to_string();
        let existing = self.read().get(user_id).map(|u| u.ctx.store.clone());
        let store = match existing {
            Some(s) => s,
            None => Arc::new(Store::open_configured(
                &self.base,
                &self.data_dir,
                user_id,
                config.auto_trade.enabled,
            )?),
        };
        self.insert(Desk::new(Arc::new(config), self.data_dir.clone(), store));
        Ok(Ok(()))
    }

    /// On PostgreSQL: load the users another instance made or changed since the last look,
    /// and the tokens as they stand (blocking: call it off the runtime's threads).
    fn sync_from_store(&self) -> color_eyre::Result<()> {
        let Some(file) = self.read().get(&self.file_user).cloned() else {
            return Ok(());
        };
        let store = file.ctx.store.clone();
        self.tokens.replace_all(store.api_tokens()?);
        // Compared as stored text; only a changed one is parsed.
        for (user_id, text) in store.user_settings_texts()? {
            if user_id == self.file_user {
                continue;
            }
            let changed = self
                .seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&user_id)
                != Some(&text);
            if !changed
                || (!self.read().contains_key(&user_id) && self.len() >= self.base.store.max_users)
            {
                continue;
            }
            match self.load_stored(&user_id, &text)? {
                Ok(()) => tracing::info!("user {user_id}: settings loaded from the shared store"),
                Err(e) => tracing::error!("user {user_id}: stored settings refused: {e}"),
            }
        }
        Ok(())
    }

    fn insert(&self, ctx: Desk) -> Arc<User> {
        let user = Arc::new(User {
            ctx,
            generation: self.generation.fetch_add(1, Ordering::Relaxed),
        });
        let id = user.ctx.config.auto_trade.user_id.clone();
        self.write().insert(id, user.clone());
        user
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<User>>> {
        self.map.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<User>>> {
        self.map.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The config file's settings, which every user's derive from.
    pub fn base(&self) -> &Config {
        &self.base
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// Every user's id.
    pub fn ids(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    pub fn get(&self, user_id: &str) -> Result<Arc<User>, ApiError> {
        self.read()
            .get(user_id)
            .cloned()
            .ok_or_else(|| ApiError::unknown_user(user_id))
    }

    pub fn all(&self) -> Vec<Arc<User>> {
        self.read().values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    pub fn is_monitoring(&self, user_id: &str) -> bool {
        // Shared: some instance runs it.
        if self.leases.is_some() {
            return self
                .held
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(user_id);
        }
        self.monitoring
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(user_id)
    }

    fn set_monitoring(&self, ids: HashSet<String>) {
        *self.monitoring.lock().unwrap_or_else(|p| p.into_inner()) = ids;
    }

    /// Create or replace one user's settings: validated, stored, its enabled switch set, and
    /// its loop (re)started by the supervisor. Returns the user, whether it is new, and the
    /// token made for it when it had none (shown once: only its hash is kept).
    pub async fn put(
        &self,
        settings: AutoTradeConfig,
    ) -> Result<(Arc<User>, bool, Option<String>), ApiError> {
        // The config file's user keeps the file's ranges; the API's users have tighter ones.
        let mut config = if settings.user_id == self.file_user {
            settings::user_config(&self.base, &settings)?
        } else {
            settings::api_user_config(&self.base, &settings)?
        };
        let _guard = self.changing.lock().await;
        let user_id = config.auto_trade.user_id.clone();
        let existing = self.read().get(&user_id).cloned();
        let max_users = self.base.store.max_users;
        // Shared: every instance's users count, as the database has them.
        let file = self.read().get(&self.file_user).cloned();
        let users_now = match (&self.leases, file) {
            (Some(_), Some(file)) if existing.is_none() => {
                let (store, except) = (file.ctx.store.clone(), self.file_user.clone());
                tokio::task::spawn_blocking(move || store.count_user_settings(&except))
                    .await
                    .map_err(ApiError::internal)?
                    .map_err(ApiError::internal)?
                    + 1
            }
            _ => self.len(),
        };
        if existing.is_none() && users_now >= max_users {
            return Err(ApiError::conflict(format!(
                "this server already trades for {max_users} users, the most it takes ([store] max_users)"
            ))
            .field("config.user_id"));
        }
        config.source = if user_id == self.file_user {
            format!("{API_SOURCE} (until restart; then {})", self.base.source)
        } else {
            API_SOURCE.to_string()
        };
        let enabled = config.auto_trade.enabled;
        let stored = settings::settings_json(&config.auto_trade, enabled);
        let stored_text = stored.to_string();
        let data_dir = self.data_dir.clone();
        let old_store = existing.as_ref().map(|u| u.ctx.store.clone());
        let id = user_id.clone();
        let config = Arc::new(config);
        let cfg = config.clone();
        let base = self.base.clone();
        let token = if self.tokens.has_token(&user_id) {
            None
        } else {
            Some(tokens::new_token().map_err(ApiError::internal)?)
        };
        let token_hash = token.as_deref().map(tokens::hash);
        let stored_hash = token_hash.clone();
        let desk = tokio::task::spawn_blocking(move || -> Result<Desk, ApiError> {
            let store = match old_store {
                Some(s) => s,
                None => Arc::new(
                    Store::open_configured(&base, &data_dir, &id, enabled)
                        .map_err(ApiError::internal)?,
                ),
            };
            let desk = Desk::new(cfg, data_dir, store.clone());
            store
                .put_user_settings(&id, &stored)
                .map_err(ApiError::internal)?;
            if let Some(h) = &stored_hash {
                store.put_api_token(&id, h).map_err(ApiError::internal)?;
            }
            let state = store.state().map_err(ApiError::internal)?;
            // The posted switch wins (enabling also clears a kill switch, as `enable` does).
            if enabled && (!state.enabled || state.kill_switch) {
                desk.set_enabled(true).map_err(ApiError::internal)?;
            } else if !enabled && state.enabled {
                desk.set_enabled(false).map_err(ApiError::internal)?;
            }
            store
                .add_event(
                    "info",
                    &format!("auto-trade settings replaced through {API_SOURCE}"),
                )
                .map_err(ApiError::internal)?;
            Ok(desk)
        })
        .await
        .map_err(ApiError::internal)??;
        if let Some(h) = token_hash {
            self.tokens.set(&user_id, h);
        }
        self.note_seen(&user_id, &stored_text);
        let user = self.insert(desk);
        self.wake.notify_one();
        Ok((user, existing.is_none(), token))
    }

    /// The source a user's loop reads: the shared ML engine client, or a simulated market
    /// over that user's symbols (which reads its origin from the store).
    async fn source_for(&self, user: &User) -> color_eyre::Result<Arc<dyn MarketSource>> {
        if let Some(s) = &self.ml_source {
            return Ok(s.clone());
        }
        let config = user.ctx.config.clone();
        let store = user.ctx.store.clone();
        Ok(tokio::task::spawn_blocking(move || make_source(&config, &store)).await??)
    }
}

struct Running {
    generation: u64,
    commands: mpsc::Sender<EngineCommand>,
    handle: tokio::task::JoinHandle<()>,
}

/// Keep one loop per enabled user, with that user's current settings, until `shutdown`; then
/// stop every loop (each finishes the cycle it is in, or is aborted after a grace period).
pub async fn supervise(users: Arc<Users>, mut shutdown: watch::Receiver<bool>) {
    let (events_tx, mut events_rx) = mpsc::channel::<EngineEvent>(1024);
    // The loops report to the dashboard; headless, their errors go to the log.
    let drain = tokio::spawn(async move {
        while let Some(ev) = events_rx.recv().await {
            if let EngineEvent::Error(e) = ev {
                tracing::error!("monitoring loop: {e}");
            }
        }
    });
    let mut running: HashMap<String, Running> = HashMap::new();
    let mut tick = tokio::time::interval(RECONCILE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = users.wake.notified() => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
        reconcile(&users, &mut running, &events_tx).await;
    }
    stop_all(running.drain().collect()).await;
    if let Some(leases) = users.leases.clone() {
        // Stopped on purpose: the other instances take the users over at their next look.
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || leases.release_all()).await {
            tracing::error!("supervisor: giving the leases up failed: {e}");
        }
    }
    users.set_monitoring(HashSet::new());
    drop(events_tx);
    let _ = drain.await;
}

/// Tell every loop to stop, then wait for all of them at once: each finishes the cycle it is
/// in, and whichever has not stopped when [`STOP_GRACE`] is over is aborted. The wait is one
/// grace period for all, not one per user.
async fn stop_all(stopping: Vec<(String, Running)>) {
    for (_, r) in &stopping {
        let _ = r.commands.try_send(EngineCommand::Stop);
    }
    let deadline = tokio::time::Instant::now() + STOP_GRACE;
    let waits = stopping.into_iter().map(|(user_id, r)| async move {
        let abort = r.handle.abort_handle();
        if tokio::time::timeout_at(deadline, r.handle).await.is_err() {
            tracing::warn!("user {user_id}: loop did not stop in time, aborted");
            abort.abort();
        }
    });
    futures::future::join_all(waits).await;
}

/// What the supervisor reads from the store each look, off the runtime's threads.
struct Look {
    enabled: HashMap<String, bool>,
    /// Shared store: the users whose lease this instance holds now (renewed or just taken).
    mine: Option<HashSet<String>>,
}

/// One look at the store: every user's switch; on PostgreSQL also the users and tokens other
/// instances made, this instance's leases renewed, and the enabled users nobody runs taken.
fn look(users: &Users, running: HashSet<String>) -> color_eyre::Result<Look> {
    let Some(file) = users.read().get(&users.file_user).cloned() else {
        return Ok(Look {
            enabled: HashMap::new(),
            mine: None,
        });
    };
    if users.leases.is_some() && users.all_users {
        users.sync_from_store()?;
    }
    let known: HashSet<String> = users.ids().into_iter().collect();
    let enabled: HashMap<String, bool> = file
        .ctx
        .store
        .all_enabled()?
        .into_iter()
        .filter(|(id, _)| known.contains(id))
        .collect();
    let Some(leases) = &users.leases else {
        return Ok(Look {
            enabled,
            mine: None,
        });
    };
    let mut mine: HashSet<String> = leases.renew()?.into_iter().collect();
    let live = leases.live()?;
    let held_by_others: HashSet<&String> = live
        .iter()
        .filter(|(_, owner)| *owner != leases.owner)
        .map(|(u, _)| u)
        .collect();
    for (id, want) in &enabled {
        if *want && !mine.contains(id) && !held_by_others.contains(id) && leases.try_take(id)? {
            tracing::info!("user {id}: this instance runs its loop now");
            mine.insert(id.clone());
        }
    }
    // Loops this instance runs whose lease another took (this one stalled past its life):
    // they stop below; their writes are refused by the fence meanwhile.
    for id in running.difference(&mine) {
        tracing::warn!("user {id}: lease lost, another instance runs its loop");
    }
    *users.held.lock().unwrap_or_else(|p| p.into_inner()) = live
        .into_iter()
        .map(|(u, _)| u)
        .chain(mine.iter().cloned())
        .collect();
    Ok(Look {
        enabled,
        mine: Some(mine),
    })
}

async fn reconcile(
    users: &Arc<Users>,
    running: &mut HashMap<String, Running>,
    events: &mpsc::Sender<EngineEvent>,
) {
    let all = users.all();
    let here: HashSet<String> = running.keys().cloned().collect();
    let u = users.clone();
    let look = match tokio::task::spawn_blocking(move || look(&u, here)).await {
        Ok(Ok(l)) => l,
        Ok(Err(e)) => {
            tracing::error!("supervisor: reading the store failed: {e:#}");
            return;
        }
        Err(e) => {
            tracing::error!("supervisor: {e}");
            return;
        }
    };
    // Users another instance made since the last look.
    let all = if users.len() != all.len() {
        users.all()
    } else {
        all
    };
    let enabled = look.enabled;
    for user in &all {
        let id = &user.ctx.config.auto_trade.user_id;
        let Some(&want) = enabled.get(id) else {
            continue;
        };
        // Shared store: only the lease's holder runs the loop.
        let want = want && look.mine.as_ref().is_none_or(|m| m.contains(id));
        let current = running.get(id);
        let healthy =
            current.is_some_and(|r| r.generation == user.generation && !r.handle.is_finished());
        if want && healthy {
            continue;
        }
        if let Some(old) = running.remove(id) {
            // Every store change is one transaction, so a loop stopped mid-cycle leaves no half.
            let _ = old.commands.try_send(EngineCommand::Stop);
            old.handle.abort();
            tracing::info!("user {id}: monitoring loop stopped");
        }
        if !want {
            if let (Some(leases), Some(mine)) = (&users.leases, &look.mine)
                && mine.contains(id)
            {
                let (leases, id) = (leases.clone(), id.clone());
                let _ = tokio::task::spawn_blocking(move || leases.release(&id)).await;
            }
            continue;
        }
        let source = match users.source_for(user).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("user {id}: no market source: {e:#}");
                continue;
            }
        };
        let engine = match &users.leases {
            // Every write of the loop checks that this instance still holds the lease.
            Some(leases) => {
                let mut ctx = user.ctx.clone();
                ctx.store = ctx.store.fenced(leases.lease(id));
                Engine::new(ctx, source).resuming()
            }
            None => Engine::new(user.ctx.clone(), source),
        };
        let (commands, handle) = engine.spawn(events.clone());
        tracing::info!(
            "user {id}: monitoring {} every {} min",
            user.ctx.config.auto_trade.symbols.join(", "),
            user.ctx.config.auto_trade.check_interval_minutes
        );
        running.insert(
            id.clone(),
            Running {
                generation: user.generation,
                commands,
                handle,
            },
        );
    }
    // Users no longer known (none today: users are never removed) lose their loop too.
    let known: HashSet<&String> = all
        .iter()
        .map(|u| &u.ctx.config.auto_trade.user_id)
        .collect();
    running.retain(|id, r| {
        let keep = known.contains(id);
        if !keep {
            r.handle.abort();
        }
        keep
    });
    users.set_monitoring(running.keys().cloned().collect());
}
