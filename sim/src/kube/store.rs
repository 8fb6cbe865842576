//! Objects, the cluster-wide resourceVersion, and the watch history ring.
//!
//! Every write bumps one counter (like etcd's revision) and appends an event to a bounded ring;
//! watchers subscribe to a broadcast channel *under the same lock* as writes, so a watch that
//! starts from a resourceVersion replays the ring and then follows live events without a gap.
//! `floor` is the oldest resourceVersion a watch may still start from: all events after it are
//! in the ring. Compaction (or ring overflow) raises it; older versions answer 410 Gone.

use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::broadcast;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One stored change. `old` is the previous state of a modified object, so selector watches can
/// turn "stopped matching" into DELETED and "started matching" into ADDED, as the API server does.
#[derive(Debug)]
pub struct Change {
    pub rv: u64,
    pub res: String,
    pub ns: String,
    pub kind: EventType,
    pub obj: Value,
    pub old: Option<Value>,
}

type Key = (String, String);

pub struct Store {
    rv: u64,
    objects: BTreeMap<String, BTreeMap<Key, Value>>,
    /// What the Services hold, as the API server's allocators know it (ClusterIP and node-port
    /// bitmaps): kept beside the objects so an allocation is a lookup, not a scan of every
    /// Service (which made creating N Services O(N²)).
    allocated: Allocated,
    history: VecDeque<Arc<Change>>,
    history_cap: usize,
    floor: u64,
    tx: broadcast::Sender<Arc<Change>>,
}

/// ClusterIPs and node ports in use, with how many Services hold each (a count, so a broken
/// duplicate cannot free a value its twin still holds).
#[derive(Default)]
struct Allocated {
    ips: HashMap<String, usize>,
    node_ports: HashMap<u64, usize>,
}

impl Allocated {
    fn values(svc: &Value) -> (Option<String>, Vec<u64>) {
        let ip = svc.pointer("/spec/clusterIP").and_then(Value::as_str).filter(|ip| !ip.is_empty() && *ip != "None").map(str::to_owned);
        let ports = svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .map(|ps| ps.iter().filter_map(|p| p.get("nodePort").and_then(Value::as_u64)).collect())
            .unwrap_or_default();
        (ip, ports)
    }

    fn add(&mut self, svc: &Value) {
        let (ip, ports) = Self::values(svc);
        if let Some(ip) = ip {
            *self.ips.entry(ip).or_default() += 1;
        }
        for p in ports {
            *self.node_ports.entry(p).or_default() += 1;
        }
    }

    fn remove(&mut self, svc: &Value) {
        fn dec<K: std::hash::Hash + Eq>(m: &mut HashMap<K, usize>, k: K) {
            if let Some(n) = m.get_mut(&k) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&k);
                }
            }
        }
        let (ip, ports) = Self::values(svc);
        if let Some(ip) = ip {
            dec(&mut self.ips, ip);
        }
        for p in ports {
            dec(&mut self.node_ports, p);
        }
    }
}

const SERVICES: &str = "/services";

fn set_rv(obj: &mut Value, rv: u64) {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
}

impl Store {
    pub fn new(history_cap: usize) -> Self {
        let (tx, _) = broadcast::channel(4096);
        Self {
            rv: 0,
            objects: BTreeMap::new(),
            allocated: Allocated::default(),
            history: VecDeque::new(),
            history_cap: history_cap.max(1),
            floor: 0,
            tx,
        }
    }

    /// Empties the store. The resourceVersion keeps rising (clients may hold old ones) and every
    /// version issued before the reset becomes too old for a watch.
    pub fn clear(&mut self) {
        self.objects.clear();
        self.allocated = Allocated::default();
        self.history.clear();
        self.rv += 1;
        self.floor = self.rv;
    }

    pub fn rv(&self) -> u64 {
        self.rv
    }
    pub fn floor(&self) -> u64 {
        self.floor
    }
    pub fn history_len(&self) -> usize {
        self.history.len()
    }

    pub fn get(&self, res: &str, ns: &str, name: &str) -> Option<&Value> {
        self.objects.get(res)?.get(&(ns.to_string(), name.to_string()))
    }

    /// Objects of a resource in key order (namespace, name), optionally in one namespace.
    pub fn list<'a>(&'a self, res: &str, ns: Option<&'a str>) -> impl Iterator<Item = (&'a Key, &'a Value)> + 'a {
        self.objects.get(res).into_iter().flat_map(move |m| m.iter().filter(move |((n, _), _)| ns.is_none_or(|want| n == want)))
    }

    pub fn count(&self) -> usize {
        self.objects.values().map(BTreeMap::len).sum()
    }

    /// Some Service holds this ClusterIP.
    pub fn cluster_ip_in_use(&self, ip: &str) -> bool {
        self.allocated.ips.contains_key(ip)
    }

    /// Some Service holds this node port.
    pub fn node_port_in_use(&self, port: u64) -> bool {
        self.allocated.node_ports.contains_key(&port)
    }

    fn record(&mut self, change: Change) {
        let change = Arc::new(change);
        self.history.push_back(change.clone());
        while self.history.len() > self.history_cap {
            if let Some(gone) = self.history.pop_front() {
                self.floor = gone.rv;
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(change);
    }

    /// Stores a new object (the caller checked it does not exist) and returns it with its version.
    pub fn create(&mut self, res: &str, ns: &str, name: &str, mut obj: Value) -> Value {
        self.rv += 1;
        set_rv(&mut obj, self.rv);
        if res == SERVICES {
            self.allocated.add(&obj);
        }
        if let Some(replaced) = self.objects.entry(res.to_string()).or_default().insert((ns.to_string(), name.to_string()), obj.clone())
            && res == SERVICES
        {
            self.allocated.remove(&replaced);
        }
        self.record(Change { rv: self.rv, res: res.into(), ns: ns.into(), kind: EventType::Added, obj: obj.clone(), old: None });
        obj
    }

    /// Replaces an existing object; returns the stored version.
    pub fn update(&mut self, res: &str, ns: &str, name: &str, mut obj: Value) -> Value {
        self.rv += 1;
        set_rv(&mut obj, self.rv);
        let old = self.objects.entry(res.to_string()).or_default().insert((ns.to_string(), name.to_string()), obj.clone());
        if res == SERVICES {
            self.allocated.add(&obj);
            if let Some(o) = &old {
                self.allocated.remove(o);
            }
        }
        self.record(Change { rv: self.rv, res: res.into(), ns: ns.into(), kind: EventType::Modified, obj: obj.clone(), old });
        obj
    }

    /// Removes an object; the DELETED event carries the object at the deletion's version.
    pub fn delete(&mut self, res: &str, ns: &str, name: &str) -> Option<Value> {
        let mut obj = self.objects.get_mut(res)?.remove(&(ns.to_string(), name.to_string()))?;
        if res == SERVICES {
            self.allocated.remove(&obj);
        }
        self.rv += 1;
        set_rv(&mut obj, self.rv);
        self.record(Change { rv: self.rv, res: res.into(), ns: ns.into(), kind: EventType::Deleted, obj: obj.clone(), old: None });
        Some(obj)
    }

    /// Changes after `rv`, or Err(floor) if some of them were forgotten.
    pub fn changes_since(&self, rv: u64) -> Result<Vec<Arc<Change>>, u64> {
        if rv < self.floor {
            return Err(self.floor);
        }
        Ok(self.history.iter().filter(|c| c.rv > rv).cloned().collect())
    }

    /// Forgets all history and advances the version by one (as an unrelated write elsewhere
    /// in the cluster would), so *every* version handed out so far is too old to watch from.
    pub fn compact(&mut self) {
        self.history.clear();
        self.rv += 1;
        self.floor = self.rv;
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(name: &str) -> Value {
        json!({"metadata": {"name": name}})
    }

    #[test]
    fn versions_history_and_floor() {
        let mut s = Store::new(2);
        s.create("/services", "a", "x", obj("x"));
        s.create("/services", "a", "y", obj("y"));
        assert_eq!(s.get("/services", "a", "y").unwrap()["metadata"]["resourceVersion"], "2");
        assert_eq!(s.changes_since(0).unwrap().len(), 2);
        s.update("/services", "a", "x", obj("x"));
        // Ring of 2: the event at rv 1 is gone, so rv 0 is too old but rv 1 is fine.
        assert_eq!(s.changes_since(0).unwrap_err(), 1);
        assert_eq!(s.changes_since(1).unwrap().len(), 2);
        let d = s.delete("/services", "a", "x").unwrap();
        assert_eq!(d["metadata"]["resourceVersion"], "4");
        s.compact();
        assert!(s.changes_since(4).is_err());
        assert!(s.changes_since(5).unwrap().is_empty());
        assert_eq!(s.list("/services", Some("a")).count(), 1);
    }
}
