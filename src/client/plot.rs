//! A small SVG line chart for load sweeps: accepted throughput and p99 latency against
//! offered load. Hand-written SVG, no plotting dependency.

use std::fmt::Write as _;

/// One point of a sweep.
#[derive(Debug, Clone, Copy)]
pub struct SweepPoint {
    /// Offered requests per second.
    pub offered: f64,
    /// Accepted requests per second.
    pub throughput: f64,
    /// p99 latency in milliseconds.
    pub p99_ms: f64,
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 70.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;

/// Renders the sweep as an SVG document with two y axes.
pub fn sweep_svg(title: &str, points: &[SweepPoint]) -> String {
    let max_x = points.iter().map(|p| p.offered).fold(1.0, f64::max) * 1.05;
    let max_tp = points
        .iter()
        .map(|p| p.throughput.max(p.offered))
        .fold(1.0, f64::max)
        * 1.05;
    let max_lat = points.iter().map(|p| p.p99_ms).fold(1.0, f64::max) * 1.1;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |v: f64| LEFT + v / max_x * plot_w;
    let y_tp = |v: f64| TOP + plot_h - v / max_tp * plot_h;
    let y_lat = |v: f64| TOP + plot_h - v / max_lat * plot_h;

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = write!(
        svg,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    // Axes and grid.
    for i in 0..=5 {
        let f = f64::from(i) / 5.0;
        let gy = TOP + plot_h - f * plot_h;
        let gx = LEFT + f * plot_w;
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" y1="{gy}" x2="{}" y2="{gy}" stroke="#ddd"/>"##,
            LEFT + plot_w
        );
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="end" fill="#1f6feb">{:.0}</text>"##,
            LEFT - 6.0,
            gy + 4.0,
            f * max_tp
        );
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" fill="#d1242f">{:.1}</text>"##,
            LEFT + plot_w + 6.0,
            gy + 4.0,
            f * max_lat
        );
        let _ = write!(
            svg,
            r#"<text x="{gx}" y="{}" text-anchor="middle">{:.0}</text>"#,
            TOP + plot_h + 18.0,
            f * max_x
        );
    }
    let _ = write!(
        svg,
        r#"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="black"/>"#
    );
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">offered load (requests/s)</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 18.0
    );
    let _ = write!(
        svg,
        r##"<text transform="translate(18,{}) rotate(-90)" text-anchor="middle" fill="#1f6feb">accepted throughput (requests/s)</text>"##,
        TOP + plot_h / 2.0
    );
    let _ = write!(
        svg,
        r##"<text transform="translate({},{}) rotate(90)" text-anchor="middle" fill="#d1242f">p99 latency (ms)</text>"##,
        WIDTH - 16.0,
        TOP + plot_h / 2.0
    );
    // The ideal line (throughput = offered), then both series.
    let _ = write!(
        svg,
        r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#999" stroke-dasharray="4 4"/>"##,
        x(0.0),
        y_tp(0.0),
        x(max_x.min(max_tp)),
        y_tp(max_x.min(max_tp))
    );
    series(&mut svg, points, "#1f6feb", |p| {
        (x(p.offered), y_tp(p.throughput))
    });
    series(&mut svg, points, "#d1242f", |p| {
        (x(p.offered), y_lat(p.p99_ms))
    });
    svg.push_str("</svg>\n");
    svg
}

fn series(
    svg: &mut String,
    points: &[SweepPoint],
    color: &str,
    at: impl Fn(&SweepPoint) -> (f64, f64),
) {
    let path: Vec<String> = points
        .iter()
        .map(|p| {
            let (px, py) = at(p);
            format!("{px:.1},{py:.1}")
        })
        .collect();
    let _ = write!(
        svg,
        r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
        path.join(" ")
    );
    for p in points {
        let (px, py) = at(p);
        let _ = write!(
            svg,
            r#"<circle cx="{px:.1}" cy="{py:.1}" r="3.5" fill="{color}"/>"#
        );
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_has_both_series_and_escapes_the_title() {
        let points = [
            SweepPoint {
                offered: 100.0,
                throughput: 100.0,
                p99_ms: 2.0,
            },
            SweepPoint {
                offered: 200.0,
                throughput: 150.0,
                p99_ms: 40.0,
            },
        ];
        let svg = sweep_svg("a < b", &points);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 4);
        assert!(svg.contains("a &lt; b"));
    }
}
