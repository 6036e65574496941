//! Who gets a connection slot when there are more connections than the daemon can hold.
//!
//! Each connection holds a slot (a file descriptor kept for the store, models and index). When
//! every slot is taken, the oldest connection that has not yet sent a request gives its slot to
//! the newcomer and is closed: a flood of idle connections cycles through the slots instead of
//! locking every real client out, and a client that asks at once (health, a diagnosis) is
//! served. When every slot serves a request, a few spare slots answer one request each with a
//! short header timeout; beyond those the new connection is closed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// Connections served at once beyond the regular ones, one request each with a short header
/// timeout: health and a stop still answer while active requests fill the regular slots.
pub const SPARE_CONNECTIONS: usize = 32;

/// Regular connection slots: half the open-file limit (RocksDB, models and the index need the
/// rest), between 64 and 16,384.
pub fn connection_slots() -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(1024);
    ((soft / 2) as usize).clamp(64, 16_384)
}

/// One accepted connection's hold on a slot.
pub struct Held {
    inner: Mutex<HeldState>,
    /// Told to close when its slot is given away.
    pub close: Notify,
    /// Served on a spare slot (one request, short header timeout).
    pub spare: bool,
}

struct HeldState {
    permit: Option<OwnedSemaphorePermit>,
    /// It has sent a request: never evicted.
    asked: bool,
}

impl Held {
    /// The connection sent a request: its slot is no longer given away.
    pub fn asked(&self) {
        self.lock().asked = true;
    }

    /// The connection ended: its slot frees.
    pub fn release(&self) {
        self.lock().permit.take();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HeldState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Its slot, if it still has one and has not asked anything yet.
    fn give_up(&self) -> Option<OwnedSemaphorePermit> {
        let mut g = self.lock();
        if g.asked {
            return None;
        }
        g.permit.take()
    }
}

/// The slots and the connections waiting for their first request, oldest first.
pub struct Slots {
    regular: Arc<Semaphore>,
    spare: Arc<Semaphore>,
    capacity: usize,
    idle: Mutex<VecDeque<Arc<Held>>>,
}

impl Slots {
    /// `regular` slots and [`SPARE_CONNECTIONS`] spare ones.
    pub fn new(regular: usize) -> Slots {
        Slots {
            regular: Arc::new(Semaphore::new(regular)),
            spare: Arc::new(Semaphore::new(SPARE_CONNECTIONS)),
            capacity: regular,
            idle: Mutex::new(VecDeque::new()),
        }
    }

    /// A slot for a new connection: a free one, else the oldest idle connection's (which is
    /// told to close), else a spare one; `None` when every slot serves a request.
    pub fn admit(&self) -> Option<Arc<Held>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let regular = self.regular.clone().try_acquire_owned().ok().or_else(|| {
            while let Some(old) = idle.pop_front() {
                if let Some(p) = old.give_up() {
                    old.close.notify_one();
                    return Some(p);
                }
            }
            None
        });
        let (permit, spare) = match regular {
            Some(p) => (p, false),
            None => (self.spare.clone().try_acquire_owned().ok()?, true),
        };
        let held = Arc::new(Held {
            inner: Mutex::new(HeldState {
                permit: Some(permit),
                asked: false,
            }),
            close: Notify::new(),
            spare,
        });
        if !spare {
            // Entries of connections that asked or ended are dropped now and then, so the
            // queue stays within twice the slots.
            if idle.len() >= 2 * self.capacity {
                idle.retain(|h| {
                    let g = h.lock();
                    !g.asked && g.permit.is_some()
                });
            }
            idle.push_back(held.clone());
        }
        Some(held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_idle_connection_gives_its_slot_to_the_newest() {
        let s = Slots::new(2);
        let a = s.admit().unwrap();
        let b = s.admit().unwrap();
        b.asked();
        // Full: `a` never asked, so it makes room; `b` is serving and keeps its slot.
        let c = s.admit().unwrap();
        assert!(!c.spare);
        assert!(a.give_up().is_none(), "a's slot went to c");
        assert!(b.lock().permit.is_some());
        // `c` asks too: nothing idle is left, so the next one gets a spare slot ...
        c.asked();
        let spares: Vec<_> = (0..SPARE_CONNECTIONS).map(|_| s.admit().unwrap()).collect();
        assert!(spares.iter().all(|h| h.spare));
        // ... and once those are taken, nothing.
        assert!(s.admit().is_none());
        // A connection that ends frees its slot for the next.
        b.release();
        assert!(!s.admit().unwrap().spare);
    }

    #[test]
    fn the_idle_queue_stays_bounded() {
        let s = Slots::new(4);
        for _ in 0..1000 {
            let h = s.admit().unwrap();
            h.asked();
            h.release();
        }
        assert!(s.idle.lock().unwrap().len() <= 8);
    }
}
