//! # hive-metrics
//!
//! A metrics::Recorder with bounded-memory percentiles, Prometheus and JSON exposition, monitoring and regression alerts.
//!
//! Not implemented yet: this crate is an empty placeholder until issue #7
//! lands. It exports nothing, so nothing here can pretend to work.
