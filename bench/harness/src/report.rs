//! Percentiles, markdown tables and the SVG latency plot (written by hand: no plotting library).

use std::fmt::Write as _;

/// Nearest-rank summary of a sample.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    pub n: usize,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

pub fn summarize(values: &[f64]) -> Summary {
    if values.is_empty() {
        return Summary::default();
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |p: f64| {
        let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    };
    Summary {
        n: sorted.len(),
        min: sorted[0],
        p50: at(50.0),
        p90: at(90.0),
        p99: at(99.0),
        max: sorted[sorted.len() - 1],
        mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
    }
}

impl Summary {
    pub fn to_json(self) -> serde_json::Value {
        serde_json::json!({"n": self.n, "min": self.min, "p50": self.p50, "p90": self.p90, "p99": self.p99,
                           "max": self.max, "mean": self.mean})
    }
}

/// A markdown table.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Self { header: header.iter().map(|h| (*h).to_owned()).collect(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "| {} |", self.header.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(self.header.len()));
        for row in &self.rows {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        out
    }
}

/// One line of the latency plot.
pub struct Series<'a> {
    pub label: &'a str,
    pub color: &'a str,
    /// Latencies in microseconds.
    pub values: Vec<f64>,
}

/// An empirical CDF of latencies on a logarithmic time axis, as a standalone SVG document.
pub fn latency_cdf_svg(title: &str, series: &[Series<'_>]) -> String {
    let (w, h) = (860.0_f64, 480.0_f64);
    let (left, right, top, bottom) = (70.0, 40.0, 40.0, 60.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let all = series.iter().flat_map(|s| s.values.iter().copied()).filter(|v| *v > 0.0);
    let (lo, hi) = all.fold((f64::MAX, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if hi > 0.0 { (lo, hi) } else { (1.0, 10.0) };
    let (lo_exp, hi_exp) = (lo.log10().floor(), hi.log10().ceil().max(lo.log10().floor() + 1.0));
    let x = |v: f64| left + (v.max(10f64.powf(lo_exp)).log10() - lo_exp) / (hi_exp - lo_exp) * pw;
    let y = |q: f64| top + (1.0 - q) * ph;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(svg, r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{title}</text>"#, w / 2.0);
    // Grid: decades and 2x/5x on x, every 10 % on y.
    let mut e = lo_exp;
    while e <= hi_exp {
        for m in [1.0, 2.0, 5.0] {
            let v = m * 10f64.powf(e);
            if v < 10f64.powf(lo_exp) || v > 10f64.powf(hi_exp) {
                continue;
            }
            let xv = x(v);
            let stroke = if m == 1.0 { "#bbb" } else { "#e4e4e4" };
            let _ =
                writeln!(svg, r#"<line x1="{xv:.1}" y1="{top}" x2="{xv:.1}" y2="{}" stroke="{stroke}"/>"#, top + ph);
            let label = if v >= 1000.0 { format!("{} ms", v / 1000.0) } else { format!("{v} µs") };
            let _ = writeln!(svg, r#"<text x="{xv:.1}" y="{}" text-anchor="middle">{label}</text>"#, top + ph + 16.0);
        }
        e += 1.0;
    }
    for i in 0..=10 {
        let q = f64::from(i) / 10.0;
        let yv = y(q);
        let _ = writeln!(svg, r##"<line x1="{left}" y1="{yv:.1}" x2="{}" y2="{yv:.1}" stroke="#e4e4e4"/>"##, left + pw);
        let _ = writeln!(svg, r#"<text x="{}" y="{:.1}" text-anchor="end">{}%</text>"#, left - 6.0, yv + 4.0, i * 10);
    }
    let _ = writeln!(svg, r#"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">invocation latency (runtime emulator: /next answered → response received), log scale</text>"#,
        left + pw / 2.0,
        h - 18.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">share of invocations at or below</text>"#,
        top + ph / 2.0,
        top + ph / 2.0
    );
    for s in series {
        let mut sorted = s.values.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len() as f64;
        let mut points = String::new();
        for (i, v) in sorted.iter().enumerate() {
            let _ = write!(points, "{:.1},{:.1} ", x(*v), y((i as f64 + 1.0) / n));
        }
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
            s.color,
            points.trim_end()
        );
    }
    // The legend sits top left, on a white box over the grid and the lines.
    let _ = writeln!(
        svg,
        r##"<rect x="{}" y="{}" width="470" height="{}" fill="white" fill-opacity="0.92" stroke="#ccc"/>"##,
        left + 6.0,
        top + 6.0,
        18.0 * series.len() as f64 + 8.0
    );
    for (k, s) in series.iter().enumerate() {
        let ly = top + 18.0 + 18.0 * k as f64;
        let _ = writeln!(
            svg,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="3"/>"#,
            left + 12.0,
            left + 36.0,
            s.color
        );
        let p50 = summarize(&s.values).p50;
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}">{} (n={}, p50 {:.0} µs)</text>"#,
            left + 42.0,
            ly + 4.0,
            s.label,
            s.values.len(),
            p50
        );
    }
    svg.push_str("</svg>\n");
    svg
}

pub fn ms(d: f64) -> String {
    if d >= 100.0 {
        format!("{d:.0} ms")
    } else if d >= 10.0 {
        format!("{d:.1} ms")
    } else {
        format!("{d:.2} ms")
    }
}

pub fn ratio(ours: f64, base: f64) -> String {
    if base > 0.0 { format!("{:.2}×", ours / base) } else { "–".into() }
}
