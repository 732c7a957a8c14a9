//! Prometheus metrics (text exposition format).

/// Request counters and latency histograms.
#[derive(Debug, Default)]
pub struct Metrics {}

impl Metrics {
    /// Records one request.
    pub fn observe(&self, _frontend: &'static str, _route: &'static str, _status: u16, _elapsed: std::time::Duration) {}
}
