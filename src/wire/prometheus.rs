//! Writing the Prometheus text exposition format, version 0.0.4.
//!
//! Before working on this file, read the format's description in the
//! Prometheus documentation ("Exposition formats", text-based format) and
//! its naming conventions ("Metric and label naming"). In short: UTF-8
//! lines ending in `\n`; per metric family one `# HELP name text`, one
//! `# TYPE name counter|gauge|histogram`, then its samples
//! `name{label="value",...} number`. The content type to serve it with is
//! [`CONTENT_TYPE`].
//!
//! Names follow the conventions: a `pushwire_` prefix, base units in the
//! name (`_seconds`, `_bytes`), `_total` on counters. They are the
//! program's own constants, so they are checked in debug builds only.
//!
//! Not supported: OpenMetrics, timestamps, summaries, exemplars.

use std::time::Duration;

/// The `Content-Type` of a 0.0.4 exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's `# TYPE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
}

impl MetricType {
    fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
        }
    }
}

/// A metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn valid_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_' || b == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// A label name: `[a-zA-Z_][a-zA-Z0-9_]*`, and not starting with `__`
/// (reserved for Prometheus' own use).
pub fn valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    !name.starts_with("__")
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Appends an exposition to a buffer, one metric family at a time.
#[derive(Debug)]
pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> Writer<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Writer<'a> {
        Writer { out }
    }

    /// `# HELP` and `# TYPE` for a family; its samples follow.
    pub fn family(&mut self, name: &str, help: &str, kind: MetricType) {
        debug_assert!(valid_metric_name(name), "metric name {name:?}");
        self.out.extend_from_slice(b"# HELP ");
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b' ');
        // "In the HELP docstring, backslash and line feed are escaped";
        // a double quote is not (there are no quotes around it).
        escape(self.out, help, false);
        self.out.extend_from_slice(b"\n# TYPE ");
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b' ');
        self.out.extend_from_slice(kind.as_str().as_bytes());
        self.out.push(b'\n');
    }

    /// One sample line: `name{labels} value`.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.sample_with(name, labels, None, |out| write_f64(out, value));
    }

    /// One sample line with an integer value (counts, bytes), written
    /// exactly however large.
    pub fn sample_u64(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.sample_with(name, labels, None, |out| write_u64(out, value));
    }

    /// A counter family with one unlabelled sample.
    pub fn counter(&mut self, name: &str, help: &str, value: u64) {
        debug_assert!(name.ends_with("_total"), "counter {name:?} without _total");
        self.family(name, help, MetricType::Counter);
        self.sample_u64(name, &[], value);
    }

    /// A gauge family with one unlabelled sample.
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, help, MetricType::Gauge);
        self.sample(name, &[], value);
    }

    /// The samples of one histogram (its family line written before):
    /// `name_bucket{le="b"}` for each upper bound, cumulative, then
    /// `le="+Inf"`, `name_sum` and `name_count`. `counts[i]` is the number
    /// of observations in bucket `i` alone (`<= bounds[i]` and `>` the
    /// bound before); `counts[bounds.len()]` those above the last bound. A
    /// missing count is taken as 0, an extra one is ignored.
    pub fn histogram_samples(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        bounds: &[f64],
        counts: &[u64],
        sum: f64,
    ) {
        let count_at = |i: usize| counts.get(i).copied().unwrap_or(0);
        let mut cumulative = 0u64;
        let mut le = Vec::new();
        for (i, &bound) in bounds.iter().enumerate() {
            cumulative = cumulative.saturating_add(count_at(i));
            le.clear();
            write_f64(&mut le, bound);
            // write_f64 writes ASCII only.
            let le = std::str::from_utf8(&le).unwrap_or("NaN");
            self.sample_with(name, labels, Some(("_bucket", le)), |out| {
                write_u64(out, cumulative)
            });
        }
        cumulative = cumulative.saturating_add(count_at(bounds.len()));
        self.sample_with(name, labels, Some(("_bucket", "+Inf")), |out| {
            write_u64(out, cumulative)
        });
        self.sample_with(name, labels, Some(("_sum", "")), |out| write_f64(out, sum));
        // The count is the +Inf bucket, by definition.
        self.sample_with(name, labels, Some(("_count", "")), |out| {
            write_u64(out, cumulative)
        });
    }

    /// A histogram family with one unlabelled histogram.
    pub fn histogram(&mut self, name: &str, help: &str, h: &LatencyHistogram) {
        self.family(name, help, MetricType::Histogram);
        h.write_samples(self, name, &[]);
    }

    /// `name[suffix]{labels[,le="…"]} value\n`. `suffix` is `(suffix, le)`
    /// with an empty `le` for none.
    fn sample_with(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        suffix: Option<(&str, &str)>,
        value: impl FnOnce(&mut Vec<u8>),
    ) {
        debug_assert!(valid_metric_name(name), "metric name {name:?}");
        let out = &mut *self.out;
        out.extend_from_slice(name.as_bytes());
        let le = match suffix {
            Some((suffix, le)) => {
                out.extend_from_slice(suffix.as_bytes());
                (!le.is_empty()).then_some(le)
            }
            None => None,
        };
        let all = labels.iter().copied().chain(le.map(|le| ("le", le)));
        for (i, (label, value)) in all.enumerate() {
            debug_assert!(label == "le" || valid_label_name(label), "label {label:?}");
            out.push(if i == 0 { b'{' } else { b',' });
            out.extend_from_slice(label.as_bytes());
            out.extend_from_slice(b"=\"");
            escape(out, value, true);
            out.push(b'"');
        }
        if !labels.is_empty() || le.is_some() {
            out.push(b'}');
        }
        out.push(b' ');
        value(out);
        out.push(b'\n');
    }
}

/// The format's escapes: `\\` and `\n` everywhere, `\"` inside a label
/// value ("label_value can be any sequence of UTF-8 characters, but the
/// backslash, double-quote, and line feed characters have to be escaped").
fn escape(out: &mut Vec<u8>, s: &str, quote: bool) {
    for &b in s.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'"' if quote => out.extend_from_slice(b"\\\""),
            _ => out.push(b),
        }
    }
}

/// A float as the format writes it: Go's `ParseFloat` syntax, with `+Inf`,
/// `-Inf` and `NaN` for the special values.
fn write_f64(out: &mut Vec<u8>, v: f64) {
    use std::io::Write as _;
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v == f64::INFINITY {
        out.extend_from_slice(b"+Inf");
    } else if v == f64::NEG_INFINITY {
        out.extend_from_slice(b"-Inf");
    } else {
        // Rust's shortest round-trip form: `1`, `0.25`, `1e-7`.
        let _ = write!(out, "{v}");
    }
}

fn write_u64(out: &mut Vec<u8>, v: u64) {
    use std::io::Write as _;
    let _ = write!(out, "{v}");
}

/// Upper bounds of [`LatencyHistogram`]'s buckets, in seconds: 100 µs to
/// 10 s in 1-2.5-5 steps, which covers publish→write latency from an idle
/// loopback to a subscriber about to be dropped as slow.
pub const LATENCY_BOUNDS_SECS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The same bounds in nanoseconds, for recording without floating point.
const LATENCY_BOUNDS_NANOS: [u64; 16] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// A histogram of durations over [`LATENCY_BOUNDS_SECS`]. Recording is a
/// search over 16 integers and two additions; nothing allocates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    /// Per bucket (not cumulative); the last is above 10 s.
    counts: [u64; 17],
    /// In nanoseconds; saturates after 584 years of total latency.
    sum_nanos: u64,
}

impl LatencyHistogram {
    pub fn new() -> LatencyHistogram {
        LatencyHistogram::default()
    }

    pub fn record(&mut self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        // Buckets are `le`: a value equal to a bound belongs to it.
        let i = LATENCY_BOUNDS_NANOS.partition_point(|&b| b < nanos);
        self.counts[i] = self.counts[i].saturating_add(1);
        self.sum_nanos = self.sum_nanos.saturating_add(nanos);
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().fold(0u64, |n, &c| n.saturating_add(c))
    }

    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.sum_nanos)
    }

    /// Its `_bucket`, `_sum` and `_count` lines.
    pub fn write_samples(&self, w: &mut Writer<'_>, name: &str, labels: &[(&str, &str)]) {
        let sum_secs = self.sum_nanos as f64 / 1e9;
        w.histogram_samples(name, labels, &LATENCY_BOUNDS_SECS, &self.counts, sum_secs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut Writer<'_>)) -> String {
        let mut out = Vec::new();
        f(&mut Writer::new(&mut out));
        String::from_utf8(out).unwrap()
    }

    /// The documentation's own example, less its timestamps (which we do
    /// not write) and its column alignment.
    #[test]
    fn documented_counter_example() {
        let got = text(|w| {
            w.family(
                "http_requests_total",
                "The total number of HTTP requests.",
                MetricType::Counter,
            );
            w.sample_u64(
                "http_requests_total",
                &[("method", "post"), ("code", "200")],
                1027,
            );
            w.sample_u64(
                "http_requests_total",
                &[("method", "post"), ("code", "400")],
                3,
            );
        });
        assert_eq!(
            got,
            "# HELP http_requests_total The total number of HTTP requests.\n\
             # TYPE http_requests_total counter\n\
             http_requests_total{method=\"post\",code=\"200\"} 1027\n\
             http_requests_total{method=\"post\",code=\"400\"} 3\n"
        );
    }

    #[test]
    fn documented_escaping_example() {
        let got = text(|w| {
            w.sample(
                "msdos_file_access_time_seconds",
                &[
                    ("path", "C:\\DIR\\FILE.TXT"),
                    ("error", "Cannot find file:\n\"FILE.TXT\""),
                ],
                1.458255915e9,
            )
        });
        // The documentation writes the value as 1.458255915e9; both are
        // the same float to a Go ParseFloat.
        assert_eq!(
            got,
            "msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",\
             error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1458255915\n"
        );
    }

    #[test]
    fn documented_histogram_example() {
        let got = text(|w| {
            w.family(
                "http_request_duration_seconds",
                "A histogram of the request duration.",
                MetricType::Histogram,
            );
            w.histogram_samples(
                "http_request_duration_seconds",
                &[],
                &[0.05, 0.1, 0.2, 0.5, 1.0],
                &[
                    24054,
                    33444 - 24054,
                    100392 - 33444,
                    129389 - 100392,
                    133988 - 129389,
                    144320 - 133988,
                ],
                53423.0,
            );
        });
        assert_eq!(
            got,
            "# HELP http_request_duration_seconds A histogram of the request duration.\n\
             # TYPE http_request_duration_seconds histogram\n\
             http_request_duration_seconds_bucket{le=\"0.05\"} 24054\n\
             http_request_duration_seconds_bucket{le=\"0.1\"} 33444\n\
             http_request_duration_seconds_bucket{le=\"0.2\"} 100392\n\
             http_request_duration_seconds_bucket{le=\"0.5\"} 129389\n\
             http_request_duration_seconds_bucket{le=\"1\"} 133988\n\
             http_request_duration_seconds_bucket{le=\"+Inf\"} 144320\n\
             http_request_duration_seconds_sum 53423\n\
             http_request_duration_seconds_count 144320\n"
        );
    }

    #[test]
    fn help_escapes_backslash_and_newline_only() {
        let got = text(|w| w.gauge("pushwire_x", "a \\ b\n\"c\"", 0.5));
        assert_eq!(
            got,
            "# HELP pushwire_x a \\\\ b\\n\"c\"\n# TYPE pushwire_x gauge\npushwire_x 0.5\n"
        );
    }

    /// Reads a label value back the way Prometheus' parser does: the
    /// reverse of `escape`.
    fn unescape(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some(c) => out.push(c),
                    None => out.push('\\'),
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn label_values_round_trip() {
        for value in [
            "",
            "plain",
            "a\"b",
            "back\\slash",
            "two\nlines",
            "\\n",
            "é ∑ 😀",
            "\\\"\n",
        ] {
            let got = text(|w| w.sample_u64("pushwire_t", &[("v", value)], 1));
            let inner = got
                .strip_prefix("pushwire_t{v=\"")
                .and_then(|s| s.strip_suffix("\"} 1\n"))
                .unwrap();
            assert!(!inner.contains('\n'), "{inner:?}");
            assert_eq!(unescape(inner), value);
        }
    }

    #[test]
    fn special_values() {
        let got = text(|w| {
            w.sample("a", &[], f64::INFINITY);
            w.sample("a", &[], f64::NEG_INFINITY);
            w.sample("a", &[], f64::NAN);
            w.sample("a", &[], 1e-7);
            w.sample_u64("a", &[], u64::MAX);
        });
        assert_eq!(
            got,
            "a +Inf\na -Inf\na NaN\na 0.0000001\na 18446744073709551615\n"
        );
    }

    #[test]
    fn counter_and_names() {
        let got = text(|w| w.counter("pushwire_published_total", "Messages published.", 7));
        assert_eq!(
            got,
            "# HELP pushwire_published_total Messages published.\n\
             # TYPE pushwire_published_total counter\n\
             pushwire_published_total 7\n"
        );
        assert!(valid_metric_name("pushwire:rate_5m"));
        assert!(!valid_metric_name("1abc"));
        assert!(!valid_metric_name("a-b"));
        assert!(!valid_metric_name(""));
        assert!(valid_label_name("transport"));
        assert!(!valid_label_name("__name__"));
        assert!(!valid_label_name("a:b"));
    }

    #[test]
    fn latency_histogram() {
        let mut h = LatencyHistogram::new();
        h.record(Duration::from_micros(50)); // <= 0.0001
        h.record(Duration::from_micros(100)); // == 0.0001: `le` includes it
        h.record(Duration::from_micros(101)); // <= 0.00025
        h.record(Duration::from_millis(3)); // <= 0.005
        h.record(Duration::from_secs(11)); // +Inf only
        assert_eq!(h.count(), 5);
        assert_eq!(h.sum(), Duration::from_nanos(11_003_251_000));
        let got = text(|w| {
            w.family(
                "pushwire_delivery_seconds",
                "Publish to write.",
                MetricType::Histogram,
            );
            h.write_samples(w, "pushwire_delivery_seconds", &[("transport", "sse")]);
        });
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(lines.len(), 2 + 17 + 2);
        assert_eq!(
            lines[2],
            "pushwire_delivery_seconds_bucket{transport=\"sse\",le=\"0.0001\"} 2"
        );
        assert_eq!(
            lines[3],
            "pushwire_delivery_seconds_bucket{transport=\"sse\",le=\"0.00025\"} 3"
        );
        assert_eq!(
            lines[7],
            "pushwire_delivery_seconds_bucket{transport=\"sse\",le=\"0.005\"} 4"
        );
        assert_eq!(
            lines[17],
            "pushwire_delivery_seconds_bucket{transport=\"sse\",le=\"10\"} 4"
        );
        assert_eq!(
            lines[18],
            "pushwire_delivery_seconds_bucket{transport=\"sse\",le=\"+Inf\"} 5"
        );
        assert_eq!(
            lines[19],
            "pushwire_delivery_seconds_sum{transport=\"sse\"} 11.003251"
        );
        assert_eq!(
            lines[20],
            "pushwire_delivery_seconds_count{transport=\"sse\"} 5"
        );
        // Huge durations saturate rather than wrap.
        let mut h = LatencyHistogram::new();
        h.record(Duration::MAX);
        h.record(Duration::MAX);
        assert_eq!(h.count(), 2);
        assert_eq!(h.sum(), Duration::from_nanos(u64::MAX));
    }

    #[test]
    fn bounds_agree() {
        for (secs, nanos) in LATENCY_BOUNDS_SECS.iter().zip(LATENCY_BOUNDS_NANOS) {
            assert_eq!((secs * 1e9).round() as u64, nanos);
        }
    }
}
