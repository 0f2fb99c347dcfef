//! Line charts as SVG written by hand: axes with ticks, a polyline per series, a legend.
//! Enough for a reader to see a knee or a drift at a glance, without a plotting dependency.

use std::fmt::Write as _;

/// One line of a chart.
#[derive(Debug)]
pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub points: Vec<(f64, f64)>,
}

/// A chart's title and axis labels.
#[derive(Debug)]
pub struct Chart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
}

const W: f64 = 720.0;
const H: f64 = 420.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A "nice" step (1, 2 or 5 × 10^k) for about `n` ticks over `span`.
fn step(span: f64, n: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / n;
    let mag = 10f64.powf(raw.log10().floor());
    let r = raw / mag;
    let nice = if r <= 1.0 {
        1.0
    } else if r <= 2.0 {
        2.0
    } else if r <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn fmt_tick(v: f64) -> String {
    if v.abs() >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// The SVG document of `series` (non-finite points are left out). Both axes start at 0.
pub fn render(chart: &Chart<'_>, series: &[Series]) -> String {
    let finite = |p: &&(f64, f64)| p.0.is_finite() && p.1.is_finite();
    let all: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().filter(finite).copied())
        .collect();
    let x_max = all.iter().map(|p| p.0).fold(0.0, f64::max).max(1e-9);
    let y_max = all.iter().map(|p| p.1).fold(0.0, f64::max).max(1e-9);
    let (xs, ys) = (step(x_max, 8.0), step(y_max, 6.0));
    let (x_top, y_top) = ((x_max / xs).ceil() * xs, (y_max / ys).ceil() * ys);
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let px = |x: f64| LEFT + x / x_top * pw;
    let py = |y: f64| TOP + ph - y / y_top * ph;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">
<rect width="{W}" height="{H}" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        W / 2.0,
        esc(chart.title)
    );
    // Grid and ticks.
    let mut x = 0.0;
    while x <= x_top + xs / 2.0 {
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" y1="{1}" x2="{0:.1}" y2="{2}" stroke="#ddd"/><text x="{0:.1}" y="{3}" text-anchor="middle">{4}</text>"##,
            px(x),
            TOP,
            TOP + ph,
            TOP + ph + 16.0,
            fmt_tick(x)
        );
        x += xs;
    }
    let mut y = 0.0;
    while y <= y_top + ys / 2.0 {
        let _ = writeln!(
            s,
            r##"<line x1="{0}" y1="{1:.1}" x2="{2}" y2="{1:.1}" stroke="#ddd"/><text x="{3}" y="{4:.1}" text-anchor="end">{5}</text>"##,
            LEFT,
            py(y),
            LEFT + pw,
            LEFT - 6.0,
            py(y) + 4.0,
            fmt_tick(y)
        );
        y += ys;
    }
    let _ = writeln!(
        s,
        r#"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="black"/>
<text x="{}" y="{}" text-anchor="middle">{}</text>
<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">{}</text>"#,
        LEFT + pw / 2.0,
        H - 18.0,
        esc(chart.x_label),
        TOP + ph / 2.0,
        TOP + ph / 2.0,
        esc(chart.y_label)
    );
    for (i, se) in series.iter().enumerate() {
        let pts: Vec<String> = se
            .points
            .iter()
            .filter(finite)
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
            se.color,
            pts.join(" ")
        );
        // Markers, so that a single point or a sparse sweep still shows.
        for p in &pts {
            if let Some((cx, cy)) = p.split_once(',') {
                let _ = writeln!(
                    s,
                    r#"<circle cx="{cx}" cy="{cy}" r="2.5" fill="{}"/>"#,
                    se.color
                );
            }
        }
        let ly = TOP + 14.0 + 20.0 * i as f64;
        let lx = LEFT + pw + 12.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="3"/><text x="{}" y="{}">{}</text>"#,
            lx + 24.0,
            se.color,
            lx + 30.0,
            ly + 4.0,
            esc(&se.name)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_axes_series_and_escapes_text() {
        let svg = render(
            &Chart {
                title: "a < b & c",
                x_label: "x",
                y_label: "y",
            },
            &[Series {
                name: "p99".into(),
                color: "red",
                points: vec![(0.0, 1.0), (10.0, 250.0), (f64::NAN, 3.0)],
            }],
        );
        assert!(svg.starts_with("<?xml"));
        assert!(svg.contains("a &lt; b &amp; c"));
        assert!(svg.contains("<polyline"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<circle").count(), 2);
    }

    #[test]
    fn steps_are_nice() {
        assert_eq!(step(100.0, 5.0), 20.0);
        assert_eq!(step(7.0, 6.0), 2.0);
    }
}
