//! Host ports for host-network worker and FUSE pods. Pods of different datasets share a node's
//! network, so each runtime gets its own metrics ports from the controller's range (`--host-port-range`)
//! and keeps them in `status.hostPorts` for its whole life: restart-safe (a new leader reads them back
//! from the runtimes it watches), released when the runtime is gone. No two runtimes this controller
//! sees ever hold the same port, so their pods never clash on a node.

use ferrofluid_api::juicefs_runtime::HostPorts;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

/// An inclusive port range, `first-last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl std::str::FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, b) = s.split_once('-').ok_or_else(|| format!("{s:?}: expected FIRST-LAST, e.g. 20000-25999"))?;
        let parse = |p: &str| p.trim().parse::<u16>().map_err(|_| format!("{s:?}: {p:?} is not a port number"));
        let (first, last) = (parse(a)?, parse(b)?);
        if first == 0 || first > last {
            return Err(format!("{s:?}: need 1 <= FIRST <= LAST"));
        }
        Ok(Self { first, last })
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl PortRange {
    fn contains(&self, port: i32) -> bool {
        (i32::from(self.first)..=i32::from(self.last)).contains(&port)
    }
}

/// Which of a runtime's pods use the host network (and so need a host port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Wanted {
    pub worker: bool,
    pub fuse: bool,
}

/// Every port of the range is taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no free host port left in {range} ({held} held by other runtimes); widen --host-port-range")]
pub struct Exhausted {
    pub range: PortRange,
    pub held: usize,
}

fn ports_of(p: &HostPorts) -> impl Iterator<Item = i32> {
    [p.worker_metrics, p.fuse_metrics].into_iter().flatten()
}

/// Pure: the ports a runtime should hold, given its `current` ones and the ports `taken` by others.
/// A current port is kept while it is in range and not taken; a missing one is the lowest free port.
pub fn choose(
    range: PortRange,
    wanted: Wanted,
    current: HostPorts,
    taken: &BTreeSet<i32>,
) -> Result<HostPorts, Exhausted> {
    let mut used = taken.clone();
    let keep = |port: Option<i32>, want: bool, used: &mut BTreeSet<i32>| -> Option<i32> {
        let p = port.filter(|p| want && range.contains(*p) && !used.contains(p))?;
        used.insert(p);
        Some(p)
    };
    let mut out = HostPorts {
        worker_metrics: keep(current.worker_metrics, wanted.worker, &mut used),
        fuse_metrics: keep(current.fuse_metrics, wanted.fuse, &mut used),
    };
    let next_free = |used: &mut BTreeSet<i32>| -> Result<i32, Exhausted> {
        let p = (i32::from(range.first)..=i32::from(range.last))
            .find(|p| !used.contains(p))
            .ok_or(Exhausted { range, held: taken.len() })?;
        used.insert(p);
        Ok(p)
    };
    if wanted.worker && out.worker_metrics.is_none() {
        out.worker_metrics = Some(next_free(&mut used)?);
    }
    if wanted.fuse && out.fuse_metrics.is_none() {
        out.fuse_metrics = Some(next_free(&mut used)?);
    }
    Ok(out)
}

/// Another runtime's claim on ports, as the watch cache shows it.
#[derive(Debug, Clone)]
pub struct Claim {
    pub uid: String,
    /// `(creation timestamp, uid)`: on a duplicate (e.g. a status restored by hand) the older keeps it.
    pub age_key: (String, String),
    pub ports: HostPorts,
}

/// The controller's allocator: the ports it handed out that the watch cache may not show yet, by runtime
/// UID, so that two runtimes reconciled at the same time never get the same port.
pub struct Allocator {
    pub range: PortRange,
    recent: Mutex<BTreeMap<String, HostPorts>>,
}

impl Allocator {
    pub fn new(range: PortRange) -> Self {
        Self { range, recent: Mutex::new(BTreeMap::new()) }
    }

    /// Ports for the runtime `me` (its UID and age key), which currently holds `current`; `others` are
    /// every other runtime's claims from the watch cache.
    pub fn assign(
        &self,
        me: (&str, &(String, String)),
        current: HostPorts,
        wanted: Wanted,
        others: &[Claim],
    ) -> Result<HostPorts, Exhausted> {
        let (uid, age) = me;
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        // Forget hand-outs to runtimes that no longer exist (every live runtime is in `others` or is `me`).
        let live: BTreeSet<&str> = others.iter().map(|c| c.uid.as_str()).chain([uid]).collect();
        recent.retain(|u, _| live.contains(u.as_str()));
        let mut taken: BTreeSet<i32> = BTreeSet::new();
        for c in others {
            // A port this runtime already holds stays with it unless an older runtime claims it too.
            let theirs = ports_of(&c.ports).filter(|p| !ports_of(&current).any(|q| q == *p) || c.age_key < *age);
            taken.extend(theirs);
        }
        for (u, p) in recent.iter() {
            if u != uid {
                taken.extend(ports_of(p));
            }
        }
        let chosen = choose(self.range, wanted, current, &taken)?;
        recent.insert(uid.to_string(), chosen);
        Ok(chosen)
    }

    /// Drops what was handed out to a runtime that is being deleted.
    pub fn release(&self, uid: &str) {
        self.recent.lock().unwrap_or_else(|e| e.into_inner()).remove(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(first: u16, last: u16) -> PortRange {
        PortRange { first, last }
    }

    const BOTH: Wanted = Wanted { worker: true, fuse: true };

    #[test]
    fn parses_ranges() {
        assert_eq!("20000-25999".parse(), Ok(range(20000, 25999)));
        assert_eq!("7-7".parse(), Ok(range(7, 7)));
        for bad in ["", "20000", "5-4", "0-10", "a-b", "1-70000"] {
            assert!(bad.parse::<PortRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn lowest_free_ports_and_stable_ones() {
        let taken = BTreeSet::from([100, 102]);
        let got = choose(range(100, 110), BOTH, HostPorts::default(), &taken).expect("free");
        assert_eq!(got, HostPorts { worker_metrics: Some(101), fuse_metrics: Some(103) });
        // Kept as long as they are free and in range.
        assert_eq!(choose(range(100, 110), BOTH, got, &taken), Ok(got));
        // Out of range (the range changed) or taken by someone else: moved.
        let stale = HostPorts { worker_metrics: Some(50), fuse_metrics: Some(102) };
        assert_eq!(
            choose(range(100, 110), BOTH, stale, &taken),
            Ok(HostPorts { worker_metrics: Some(101), fuse_metrics: Some(103) })
        );
        // Not wanted: released.
        let only_fuse = Wanted { worker: false, fuse: true };
        assert_eq!(
            choose(range(100, 110), only_fuse, got, &taken),
            Ok(HostPorts { worker_metrics: None, fuse_metrics: Some(103) })
        );
        assert_eq!(choose(range(100, 110), Wanted::default(), got, &taken), Ok(HostPorts::default()));
    }

    #[test]
    fn exhaustion_is_reported() {
        let err = choose(range(1, 3), BOTH, HostPorts::default(), &BTreeSet::from([1, 2])).expect_err("full");
        assert_eq!(err.range, range(1, 3));
        assert!(err.to_string().contains("1-3"));
    }

    fn claim(uid: &str, created: &str, worker: Option<i32>, fuse: Option<i32>) -> Claim {
        Claim {
            uid: uid.into(),
            age_key: (created.into(), uid.into()),
            ports: HostPorts { worker_metrics: worker, fuse_metrics: fuse },
        }
    }

    #[test]
    fn concurrent_assignments_never_collide() {
        let a = Allocator::new(range(10, 13));
        let age = ("2026-01-01T00:00:00Z".to_string(), "x".to_string());
        // Neither is in the other's watch cache yet: the allocator's memory keeps them apart.
        let x = a.assign(("x", &age), HostPorts::default(), BOTH, &[]).expect("x");
        let y = a.assign(("y", &age), HostPorts::default(), BOTH, &[claim("x", "t", None, None)]).expect("y");
        let all: BTreeSet<i32> = ports_of(&x).chain(ports_of(&y)).collect();
        assert_eq!(all.len(), 4);
        let z = a.assign(
            ("z", &age),
            HostPorts::default(),
            BOTH,
            &[claim("x", "t", None, None), claim("y", "t", None, None)],
        );
        assert!(z.is_err(), "range of 4 is full");
        // Once x is gone (absent from the cache and released), its ports are free again.
        a.release("x");
        let z = a.assign(("z", &age), HostPorts::default(), BOTH, &[claim("y", "t", y.worker_metrics, y.fuse_metrics)]);
        assert_eq!(z.map(|p| ports_of(&p).collect::<BTreeSet<_>>()), Ok(ports_of(&x).collect()));
    }

    #[test]
    fn a_restarted_controller_reads_claims_back() {
        let a = Allocator::new(range(10, 20));
        let mine = HostPorts { worker_metrics: Some(12), fuse_metrics: Some(15) };
        let age = ("2026-01-02T00:00:00Z".to_string(), "me".to_string());
        let others = [claim("o", "2026-01-03T00:00:00Z", Some(10), Some(11))];
        assert_eq!(a.assign(("me", &age), mine, BOTH, &others), Ok(mine));
        let fresh = a.assign(
            ("n", &age),
            HostPorts::default(),
            BOTH,
            &[claim("me", "t", Some(12), Some(15)), others[0].clone()],
        );
        assert_eq!(fresh, Ok(HostPorts { worker_metrics: Some(13), fuse_metrics: Some(14) }));
    }

    #[test]
    fn on_a_duplicate_the_older_runtime_keeps_the_port() {
        let a = Allocator::new(range(10, 20));
        let dup = HostPorts { worker_metrics: None, fuse_metrics: Some(15) };
        let older = claim("old", "2026-01-01T00:00:00Z", None, Some(15));
        let young_age = ("2026-01-05T00:00:00Z".to_string(), "young".to_string());
        let moved =
            a.assign(("young", &young_age), dup, Wanted { worker: false, fuse: true }, &[older]).expect("moved");
        assert_ne!(moved.fuse_metrics, Some(15));
        let old_age = ("2026-01-01T00:00:00Z".to_string(), "old".to_string());
        let b = Allocator::new(range(10, 20));
        let young = claim("young", "2026-01-05T00:00:00Z", None, Some(15));
        assert_eq!(b.assign(("old", &old_age), dup, Wanted { worker: false, fuse: true }, &[young]), Ok(dup));
    }
}
