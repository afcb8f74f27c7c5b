//! Prometheus text exposition format 0.0.4.
//!
//! Counters get a `_total` suffix if they lack one; histograms with bucket
//! bounds (by default those named `*_seconds`) are exposed as histograms
//! (`_bucket{le}`, `_sum`, `_count`: `histogram_quantile` works on them),
//! the others as summaries (quantiles 0.5, 0.95, 0.99, 0.999 over the
//! recent window, plus cumulative `_sum` and `_count`); names and label names are sanitised, label values and
//! help texts escaped.

use std::fmt::Write;

use crate::snapshot::{Labels, Snapshot};

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric or label name made valid: `[a-zA-Z_:][a-zA-Z0-9_:]*` (no `:`
/// in label names).
fn sanitize(name: &str, allow_colon: bool) -> String {
    sanitized(name, allow_colon).into_owned()
}

/// [`sanitize`] without allocating when the name is already valid.
fn sanitized(name: &str, allow_colon: bool) -> std::borrow::Cow<'_, str> {
    let valid = |i: usize, c: char| {
        c.is_ascii_alphabetic()
            || c == '_'
            || (allow_colon && c == ':')
            || (i > 0 && c.is_ascii_digit())
    };
    if !name.is_empty() && name.chars().enumerate().all(|(i, c)| valid(i, c)) {
        return std::borrow::Cow::Borrowed(name);
    }
    std::borrow::Cow::Owned(rewrite(name, allow_colon))
}

fn rewrite(name: &str, allow_colon: bool) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, c) in name.chars().enumerate() {
        let ok = c.is_ascii_alphabetic()
            || c == '_'
            || (allow_colon && c == ':')
            || (i > 0 && c.is_ascii_digit());
        out.push(if ok { c } else { '_' });
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

fn escape_label_value(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return std::borrow::Cow::Borrowed(v);
    }
    std::borrow::Cow::Owned(
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n"),
    )
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

fn number(v: f64) -> String {
    let mut out = String::new();
    write_number(&mut out, v);
    out
}

/// Writes `v` as the text format spells it.
fn write_number(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else if v == v.trunc() && v.abs() < 1e15 && (v != 0.0 || v.is_sign_positive()) {
        // Whole numbers (counts, most gauges) without float formatting:
        // the text `{v}` would give.
        if v < 0.0 {
            out.push('-');
        }
        write_u64(out, v.abs() as u64);
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Writes `v` in decimal (what `{v}` gives, without the formatter).
fn write_u64(out: &mut String, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut n = 0;
    loop {
        if let Some(d) = digits.get_mut(n) {
            *d = b'0' + (v % 10) as u8;
        }
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for d in digits.iter().take(n).rev() {
        out.push(char::from(*d));
    }
}

/// A series' labels as `k="v",...` (sanitised, escaped), written once and
/// reused for each of its lines.
fn label_text(labels: &Labels) -> String {
    let mut out = String::new();
    for (k, v) in labels {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&sanitized(k, false));
        out.push_str("=\"");
        out.push_str(&escape_label_value(v));
        out.push('"');
    }
    out
}

/// A sample line's value.
enum Value {
    Int(u64),
    Float(f64),
}

/// Writes one sample line: `name{labels,extra} value`.
fn line(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &str,
    extra: Option<(&str, &str)>,
    value: Value,
) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() || extra.is_some() {
        out.push('{');
        out.push_str(labels);
        if let Some((k, v)) = extra {
            if !labels.is_empty() {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            out.push_str(v);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    match value {
        Value::Int(v) => write_u64(out, v),
        Value::Float(v) => write_number(out, v),
    }
    out.push('\n');
}

/// Writes `# HELP` and `# TYPE` once per family.
fn header(
    out: &mut String,
    seen: &mut Option<String>,
    name: &str,
    help: Option<&String>,
    kind: &str,
) {
    if seen.as_deref() == Some(name) {
        return;
    }
    *seen = Some(name.to_string());
    // Prometheus tooling expects help on every family: undescribed metrics
    // say so rather than invent a description.
    match help {
        Some(help) => {
            let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
        }
        None => {
            let _ = writeln!(out, "# HELP {name} {name} (no description given)");
        }
    }
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The exposition name of a metric: sanitised, and ending in its unit
/// (`_seconds`, `_bytes`) when one was described and the name lacks it.
fn exposed(name: &str, snapshot: &Snapshot) -> String {
    with_unit(sanitize(name, true), snapshot.units.get(name))
}

fn with_unit(base: String, unit: Option<&String>) -> String {
    match unit.map(String::as_str) {
        Some(unit @ ("seconds" | "bytes")) if !base.ends_with(&format!("_{unit}")) => {
            format!("{base}_{unit}")
        }
        _ => base,
    }
}

/// The `le` texts of the last bucket layout written: series of one family
/// share their bounds, so each bound is formatted once.
#[derive(Default)]
struct Bounds {
    values: Vec<f64>,
    texts: Vec<String>,
}

impl Bounds {
    fn texts(&mut self, buckets: &[(f64, u64)]) -> &[String] {
        let same = self.values.len() == buckets.len()
            && self.values.iter().zip(buckets).all(|(a, (b, _))| a == b);
        if !same {
            self.values = buckets.iter().map(|(b, _)| *b).collect();
            self.texts = self.values.iter().map(|b| number(*b)).collect();
        }
        &self.texts
    }
}

/// Renders `snapshot` in the text exposition format.
pub fn render(snapshot: &Snapshot) -> String {
    let mut out = String::with_capacity(
        96 * (snapshot.counters.len() + snapshot.gauges.len()) + 1024 * snapshot.histograms.len(),
    );
    let help = |name: &str| snapshot.descriptions.get(name);

    // Families are written once per exposed name (`a.b` and `a_b` are one).
    let mut family = None;
    let mut seen = None;
    let mut name = String::new();
    for c in &snapshot.counters {
        if seen.as_deref() != Some(c.name.as_str()) {
            // The unit goes before `_total`: `sent_bytes_total`.
            let bare = c.name.strip_suffix("_total").unwrap_or(&c.name);
            let unit = snapshot
                .units
                .get(&c.name)
                .or_else(|| snapshot.units.get(bare));
            name = format!("{}_total", with_unit(sanitize(bare, true), unit));
            header(&mut out, &mut family, &name, help(&c.name), "counter");
            seen = Some(c.name.clone());
        }
        let labels = label_text(&c.labels);
        line(&mut out, &name, "", &labels, None, Value::Int(c.value));
    }
    let mut seen = None;
    for g in &snapshot.gauges {
        if seen.as_deref() != Some(g.name.as_str()) {
            name = exposed(&g.name, snapshot);
            header(&mut out, &mut family, &name, help(&g.name), "gauge");
            seen = Some(g.name.clone());
        }
        let labels = label_text(&g.labels);
        line(&mut out, &name, "", &labels, None, Value::Float(g.value));
    }
    let mut seen = None;
    let mut bounds = Bounds::default();
    for h in &snapshot.histograms {
        let kind = if h.buckets.is_empty() {
            "summary"
        } else {
            "histogram"
        };
        if seen.as_ref() != Some(&(h.name.as_str(), kind)) {
            name = exposed(&h.name, snapshot);
            header(&mut out, &mut family, &name, help(&h.name), kind);
            seen = Some((h.name.as_str(), kind));
        }
        let labels = label_text(&h.labels);
        if !h.buckets.is_empty() {
            for ((_, below), le) in h.buckets.iter().zip(bounds.texts(&h.buckets)) {
                line(
                    &mut out,
                    &name,
                    "_bucket",
                    &labels,
                    Some(("le", le)),
                    Value::Int(*below),
                );
            }
            line(
                &mut out,
                &name,
                "_bucket",
                &labels,
                Some(("le", "+Inf")),
                Value::Int(h.count),
            );
            line(&mut out, &name, "_sum", &labels, None, Value::Float(h.sum));
            line(
                &mut out,
                &name,
                "_count",
                &labels,
                None,
                Value::Int(h.count),
            );
            continue;
        }
        // Quantiles over the recent window (NaN when it saw no sample);
        // the whole run's until a window exists. `_sum`, `_count` cumulative.
        let quantiles = match &h.window {
            Some(w) if w.count == 0 => [f64::NAN; 4],
            Some(w) => [w.p50, w.p95, w.p99, w.p999],
            None => [h.p50, h.p95, h.p99, h.p999],
        };
        for (q, v) in ["0.5", "0.95", "0.99", "0.999"].into_iter().zip(quantiles) {
            line(
                &mut out,
                &name,
                "",
                &labels,
                Some(("quantile", q)),
                Value::Float(v),
            );
        }
        line(&mut out, &name, "_sum", &labels, None, Value::Float(h.sum));
        line(
            &mut out,
            &name,
            "_count",
            &labels,
            None,
            Value::Int(h.count),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sanitised_and_values_escaped() {
        assert_eq!(sanitize("http.requests-total", true), "http_requests_total");
        assert_eq!(sanitize("9lives", true), "_lives");
        assert_eq!(sanitize("a:b", false), "a_b");
        assert_eq!(
            escape_label_value("say \"hi\"\\\n"),
            "say \\\"hi\\\"\\\\\\n"
        );
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(0.25), "0.25");
    }

    #[test]
    fn numbers_read_as_the_formatter_writes_them() {
        for v in [
            0.0,
            -0.0,
            1.0,
            -7.0,
            400.0,
            1e14,
            1e15,
            1e300,
            0.5,
            -2.5e-7,
            123456789.0,
        ] {
            assert_eq!(number(v), format!("{v}"), "{v}");
        }
        for v in [0u64, 9, 10, 99, 100, 12_345, u64::MAX] {
            let mut out = String::new();
            write_u64(&mut out, v);
            assert_eq!(out, v.to_string());
        }
    }
}
