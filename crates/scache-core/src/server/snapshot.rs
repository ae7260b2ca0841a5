//! What is cached right now, as a JSON document for operators (`postfix-scache status`): the
//! sizes, every destination with its bindings and every endpoint with its connections, each with
//! its age or remaining time to live. Postfix has nothing like it; it only logs statistics.
//!
//! Labels and properties are the clients' bytes, shown as text (invalid UTF-8 replaced). At most
//! `limit` destinations and `limit` endpoints are listed, so a large cache cannot make a huge reply;
//! the sizes are always complete.

use serde_json::{Value, json};

use crate::cache::{Cache, Millis};

pub fn snapshot<C>(cache: &Cache<C>, now: Millis, limit: usize) -> Value {
    let size = cache.size();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let left = |deadline: Millis| deadline.saturating_sub(now);
    let destinations: Vec<Value> = cache
        .destinations()
        .take(limit)
        .map(|(label, bindings)| {
            let bindings: Vec<Value> = bindings
                .map(|b| json!({ "endpoint": text(b.endpoint), "property": text(b.property), "ttl_ms": left(b.deadline) }))
                .collect();
            json!({ "label": text(label), "bindings": bindings })
        })
        .collect();
    let endpoints: Vec<Value> = cache
        .endpoints()
        .take(limit)
        .map(|(label, sessions)| {
            let connections: Vec<Value> = sessions
                .map(|s| {
                    json!({
                        "property": text(s.property),
                        "age_ms": now.saturating_sub(s.saved_at),
                        "ttl_ms": left(s.deadline),
                    })
                })
                .collect();
            json!({ "label": text(label), "connections": connections })
        })
        .collect();
    json!({
        "destinations_count": size.dest_count,
        "endpoints_count": size.endp_count,
        "connections_count": size.sess_count,
        "destinations": destinations,
        "endpoints": endpoints,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_sizes_entries_and_times() {
        let mut cache = Cache::new();
        cache.save_endp(1_000, 2_000, b"smtp\n192.0.2.1\n25\n0\n", b"reuse_count=0\n", ());
        cache.save_endp(1_500, 2_000, b"smtp\n192.0.2.1\n25\n0\n", b"reuse_count=1\n", ());
        cache.save_dest(1_000, 2_000, b"smtp\nexample.com\n", b"destination=example.com\n", b"E");
        let document = snapshot(&cache, 2_000, 100);
        assert_eq!(document["connections_count"], 2);
        assert_eq!(document["destinations_count"], 1);
        let connections = &document["endpoints"][0]["connections"];
        assert_eq!(connections[0], json!({ "property": "reuse_count=0\n", "age_ms": 1000, "ttl_ms": 1000 }));
        assert_eq!(connections[1]["age_ms"], 500);
        assert_eq!(document["destinations"][0]["bindings"][0]["endpoint"], "E");
    }

    #[test]
    fn lists_at_most_the_limit_but_counts_everything() {
        let mut cache = Cache::new();
        for n in 0..10u8 {
            cache.save_endp(0, 1_000, &[b'a' + n], b"", ());
        }
        let document = snapshot(&cache, 0, 3);
        assert_eq!(document["endpoints"].as_array().unwrap().len(), 3);
        assert_eq!(document["endpoints_count"], 10);
    }
}
