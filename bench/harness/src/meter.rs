//! Backend accounting: how many calls went to each backend and how long at least one of them
//! was in flight (wall time, so concurrent calls are not counted twice).

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Which backend a call went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    SecretsManager,
    DynamoDb,
    Tencent,
    Other,
}

#[derive(Default)]
struct Wall {
    inflight: u32,
    since: Option<Instant>,
    total_ns: u64,
}

/// Shared by the timing proxies (which record) and the emulator (which takes snapshots).
#[derive(Default)]
pub struct Meter {
    wall: Mutex<Wall>,
    sum_ns: AtomicU64,
    counts: [AtomicU64; 4],
    actions: Mutex<BTreeMap<String, u64>>,
    peers: Mutex<HashSet<SocketAddr>>,
    connections: AtomicU64,
}

/// Totals at one instant; subtract two to get what happened in between.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Time during which at least one backend call was in flight.
    pub wall_ns: u64,
    /// Sum of every call's duration (larger than `wall_ns` when calls overlap).
    pub sum_ns: u64,
    pub secrets_manager: u64,
    pub dynamodb: u64,
    pub tencent: u64,
    pub other: u64,
    /// Distinct client connections the proxies have seen (a new one means no reuse).
    pub connections: u64,
}

impl Snapshot {
    pub fn since(self, earlier: Snapshot) -> Snapshot {
        Snapshot {
            wall_ns: self.wall_ns.saturating_sub(earlier.wall_ns),
            sum_ns: self.sum_ns.saturating_sub(earlier.sum_ns),
            secrets_manager: self.secrets_manager.saturating_sub(earlier.secrets_manager),
            dynamodb: self.dynamodb.saturating_sub(earlier.dynamodb),
            tencent: self.tencent.saturating_sub(earlier.tencent),
            other: self.other.saturating_sub(earlier.other),
            connections: self.connections.saturating_sub(earlier.connections),
        }
    }

    pub fn calls(self) -> u64 {
        self.secrets_manager + self.dynamodb + self.tencent + self.other
    }
}

/// One backend call in flight; dropping it ends the call.
pub struct CallGuard<'a> {
    meter: &'a Meter,
    started: Instant,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        let now = Instant::now();
        let elapsed = u64::try_from(now.duration_since(self.started).as_nanos()).unwrap_or(u64::MAX);
        self.meter.sum_ns.fetch_add(elapsed, Ordering::Relaxed);
        let mut wall = self.meter.wall.lock().unwrap_or_else(|p| p.into_inner());
        wall.inflight -= 1;
        if wall.inflight == 0
            && let Some(since) = wall.since.take()
        {
            wall.total_ns += u64::try_from(now.duration_since(since).as_nanos()).unwrap_or(u64::MAX);
        }
    }
}

impl Meter {
    /// Counts a call of `kind` (named `action`) and starts timing it.
    pub fn enter(&self, kind: Kind, action: &str, peer: SocketAddr) -> CallGuard<'_> {
        let started = Instant::now();
        if self.peers.lock().unwrap_or_else(|p| p.into_inner()).insert(peer) {
            self.connections.fetch_add(1, Ordering::Relaxed);
        }
        {
            let mut wall = self.wall.lock().unwrap_or_else(|p| p.into_inner());
            if wall.inflight == 0 {
                wall.since = Some(started);
            }
            wall.inflight += 1;
        }
        self.counts[kind as usize].fetch_add(1, Ordering::Relaxed);
        *self.actions.lock().unwrap_or_else(|p| p.into_inner()).entry(action.to_owned()).or_default() += 1;
        CallGuard { meter: self, started }
    }

    pub fn snapshot(&self) -> Snapshot {
        let wall_ns = {
            let wall = self.wall.lock().unwrap_or_else(|p| p.into_inner());
            let open = wall.since.map_or(0, |s| u64::try_from(s.elapsed().as_nanos()).unwrap_or(u64::MAX));
            wall.total_ns + open
        };
        let count = |k: Kind| self.counts[k as usize].load(Ordering::Relaxed);
        Snapshot {
            wall_ns,
            sum_ns: self.sum_ns.load(Ordering::Relaxed),
            secrets_manager: count(Kind::SecretsManager),
            dynamodb: count(Kind::DynamoDb),
            tencent: count(Kind::Tencent),
            other: count(Kind::Other),
            connections: self.connections.load(Ordering::Relaxed),
        }
    }

    /// Calls per action name since the meter was created (e.g. `secretsmanager.GetSecretValue`).
    pub fn actions(&self) -> BTreeMap<String, u64> {
        self.actions.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
