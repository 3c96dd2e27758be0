//! Counters and latency histograms, exposed in the Prometheus text format by `serve`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// How many copies a striped counter keeps: threads add to their own, readers sum them.
const STRIPES: usize = 4;

/// One copy of a striped value, alone on its cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded<T>(T);

/// A value updated from many threads, in [`STRIPES`] copies: each thread adds to one of them,
/// so that worker threads counting at once do not pass one cache line back and forth on
/// every request. Readers add the copies up.
#[derive(Debug)]
struct Striped<T>([Padded<T>; STRIPES]);

impl<T: Default> Default for Striped<T> {
    fn default() -> Self {
        Striped(std::array::from_fn(|_| Padded(T::default())))
    }
}

impl<T> Striped<T> {
    /// The copy of the calling thread.
    fn local(&self) -> &T {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
        }
        &self.0[STRIPE.with(|s| *s)].0
    }

    /// The sum, over every copy, of the counter `field` picks.
    fn sum(&self, field: impl Fn(&T) -> Option<&AtomicU64>) -> u64 {
        self.0
            .iter()
            .filter_map(|p| field(&p.0))
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

/// A counter many threads add to (see [`Striped`]).
#[derive(Debug, Default)]
pub struct Counter(Striped<AtomicU64>);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.local().fetch_add(n, Ordering::Relaxed);
    }

    /// The total.
    pub fn get(&self) -> u64 {
        self.0.sum(|c| Some(c))
    }
}

/// Counters of the HTTP statuses 100 to 599.
#[derive(Debug)]
struct Statuses([AtomicU64; 500]);

impl Default for Statuses {
    fn default() -> Self {
        Statuses(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

/// The counts of one histogram: one per bucket, the last one `+Inf`, and the sum.
#[derive(Debug, Default)]
struct Counts {
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_us: AtomicU64,
}

/// A latency histogram. Each observation increments one bucket and the sum of the calling
/// thread's copy: two uncontended atomic additions, whatever the latency. The cumulative
/// counts Prometheus expects are added up when rendered.
#[derive(Debug, Default)]
pub struct Histogram(Striped<Counts>);

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let i = BUCKETS.partition_point(|b| *b < s);
        let c = self.0.local();
        c.buckets[i].fetch_add(1, Ordering::Relaxed);
        c.sum_us.fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// The count of bucket `i` (not cumulative), over every copy.
    fn bucket(&self, i: usize) -> u64 {
        self.0.sum(|c| c.buckets.get(i))
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut count = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            count += self.bucket(i);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {count}");
        }
        count += self.bucket(BUCKETS.len());
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(
            out,
            "{name}_sum{braces} {}",
            self.0.sum(|c| Some(&c.sum_us)) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// What the runtime counts. One per process, shared by every connection.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Token requests that obtained credentials.
    pub token_success: AtomicU64,
    /// Token requests that failed.
    pub token_failure: AtomicU64,
    /// Credentials served from a cache.
    pub cache_hits: Counter,
    /// Credentials that had to be fetched (or read from the shared cache).
    pub cache_misses: AtomicU64,
    /// Credentials read from the shared cache (Redis).
    pub shared_hits: AtomicU64,
    /// Operations on the shared cache that failed (Redis down or slow).
    pub shared_errors: AtomicU64,
    /// Upstream (API) responses by status, indexed by status − 100.
    upstream: Striped<Statuses>,
    /// Upstream requests that got no response (connection errors, timeouts).
    pub upstream_errors: AtomicU64,
    /// Latency of upstream requests.
    pub upstream_latency: Histogram,
    /// Latency of token requests.
    pub token_latency: Histogram,
    /// Latency of calls served by `serve`, by route.
    routes: Mutex<BTreeMap<&'static str, std::sync::Arc<Histogram>>>,
}

impl Metrics {
    /// Counts an upstream response.
    pub fn upstream(&self, status: u16, latency: Duration) {
        if let Some(c) = self
            .upstream
            .local()
            .0
            .get(usize::from(status).wrapping_sub(100))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.upstream_latency.observe(latency);
    }

    /// The latency histogram of a route of `serve`.
    pub fn route(&self, route: &'static str) -> std::sync::Arc<Histogram> {
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(route)
            .or_default()
            .clone()
    }

    /// Upstream responses of one status so far.
    pub fn upstream_count(&self, status: u16) -> u64 {
        let i = usize::from(status).wrapping_sub(100);
        self.upstream.sum(|s| s.0.get(i))
    }

    /// Everything, in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP connector_token_requests_total Requests to token and auth endpoints, by outcome.\n# TYPE connector_token_requests_total counter\nconnector_token_requests_total{{outcome=\"success\"}} {}\nconnector_token_requests_total{{outcome=\"failure\"}} {}",
            get(&self.token_success),
            get(&self.token_failure)
        );
        for (name, help, value) in [
            (
                "connector_token_cache_hits_total",
                "Credentials served from the cache.",
                &self.cache_hits.get(),
            ),
            (
                "connector_token_cache_misses_total",
                "Credentials not in the cache, or expired.",
                &get(&self.cache_misses),
            ),
            (
                "connector_shared_cache_hits_total",
                "Credentials read from the shared cache.",
                &get(&self.shared_hits),
            ),
            (
                "connector_shared_cache_errors_total",
                "Failed operations on the shared cache.",
                &get(&self.shared_errors),
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP connector_upstream_requests_total Upstream API responses, by status (\"error\": no response).\n# TYPE connector_upstream_requests_total counter"
        );
        for i in 0..500 {
            let status = i + 100;
            let n = self.upstream_count(status as u16);
            if n == 0 {
                continue;
            }
            let _ = writeln!(
                out,
                "connector_upstream_requests_total{{status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "connector_upstream_requests_total{{status=\"error\"}} {}",
            get(&self.upstream_errors)
        );
        let _ = writeln!(
            out,
            "# HELP connector_upstream_request_duration_seconds Latency of upstream API requests.\n# TYPE connector_upstream_request_duration_seconds histogram"
        );
        self.upstream_latency
            .render(&mut out, "connector_upstream_request_duration_seconds", "");
        let _ = writeln!(
            out,
            "# HELP connector_token_request_duration_seconds Latency of token requests.\n# TYPE connector_token_request_duration_seconds histogram"
        );
        self.token_latency
            .render(&mut out, "connector_token_request_duration_seconds", "");
        let _ = writeln!(
            out,
            "# HELP connector_http_request_duration_seconds Latency of the calls served, by route.\n# TYPE connector_http_request_duration_seconds histogram"
        );
        for (route, h) in self.routes.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            h.render(
                &mut out,
                "connector_http_request_duration_seconds",
                &format!("route=\"{route}\""),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.upstream(200, Duration::from_millis(3));
        m.upstream(200, Duration::from_millis(30));
        m.upstream(503, Duration::from_millis(1));
        m.route("run").observe(Duration::from_millis(7));
        let t = m.render();
        assert!(t.contains("connector_upstream_requests_total{status=\"200\"} 2"));
        assert!(t.contains("connector_upstream_requests_total{status=\"503\"} 1"));
        assert!(t.contains("connector_upstream_request_duration_seconds_bucket{le=\"0.005\"} 2"));
        assert!(t.contains("connector_upstream_request_duration_seconds_count 3"));
        assert!(t.contains(
            "connector_http_request_duration_seconds_bucket{route=\"run\",le=\"0.01\"} 1"
        ));
    }

    #[test]
    fn histogram_buckets_are_cumulative_with_edges_inclusive() {
        let h = Histogram::default();
        for ms in [1, 1, 2, 100, 20_000] {
            h.observe(Duration::from_millis(ms));
        }
        let mut t = String::new();
        h.render(&mut t, "x", "");
        for line in [
            "x_bucket{le=\"0.001\"} 2",
            "x_bucket{le=\"0.0025\"} 3",
            "x_bucket{le=\"0.05\"} 3",
            "x_bucket{le=\"0.1\"} 4",
            "x_bucket{le=\"10\"} 4",
            "x_bucket{le=\"+Inf\"} 5",
            "x_count 5",
            "x_sum 20.104",
        ] {
            assert!(t.lines().any(|l| l == line), "{line} not in\n{t}");
        }
    }

    #[test]
    fn striped_counts_add_up_across_threads() {
        let m = Metrics::default();
        std::thread::scope(|s| {
            for _ in 0..6 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        m.cache_hits.add(1);
                        m.upstream(200, Duration::from_millis(2));
                    }
                });
            }
        });
        assert_eq!(m.cache_hits.get(), 6000);
        assert_eq!(m.upstream_count(200), 6000);
        let t = m.render();
        assert!(t.contains("connector_token_cache_hits_total 6000"));
        assert!(t.contains("connector_upstream_requests_total{status=\"200\"} 6000"));
        assert!(t.contains("connector_upstream_request_duration_seconds_bucket{le=\"0.001\"} 0"));
        assert!(
            t.contains("connector_upstream_request_duration_seconds_bucket{le=\"0.0025\"} 6000")
        );
        assert!(t.contains("connector_upstream_request_duration_seconds_sum 12\n"));
    }
}
