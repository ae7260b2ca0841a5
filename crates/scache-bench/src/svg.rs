//! The chart: save_endp + find_endp cycles/s against K (log scale), one line per server and cache
//! size (ours blue, Postfix red; M = 0 solid, prefilled dashed), written as plain SVG.

use std::fmt::Write;

use crate::load::Mode;
use crate::phases::Comparison;
use crate::report::size;
use crate::servers::Kind;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 460.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;

struct Series {
    label: String,
    color: &'static str,
    dashed: bool,
    /// (K, cycles/s), by increasing K.
    points: Vec<(usize, f64)>,
}

/// The chart for mode A at M = 0 and M = `prefill`.
pub fn throughput_chart(comparisons: &[Comparison], prefill: usize) -> String {
    let series = collect_series(comparisons, prefill);
    let ks: Vec<usize> = series.first().map(|s| s.points.iter().map(|&(k, _)| k).collect()).unwrap_or_default();
    let top = nice_ceiling(series.iter().flat_map(|s| s.points.iter().map(|&(_, y)| y)).fold(0.0, f64::max));
    let axes = Axes { k_min: ks.first().copied().unwrap_or(1), k_max: ks.last().copied().unwrap_or(1), y_max: top };

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="13">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="28" text-anchor="middle" font-size="16">save_endp + find_endp cycles/s against concurrent clients</text>"#,
        WIDTH / 2.0
    );
    svg += &axes.grid(&ks);
    for s in &series {
        svg += &axes.line(s);
    }
    svg += &legend(&series);
    svg += "</svg>\n";
    svg
}

fn collect_series(comparisons: &[Comparison], prefill: usize) -> Vec<Series> {
    let mut series = Vec::new();
    for kind in Kind::BOTH {
        for cached in [0, prefill] {
            let points: Vec<(usize, f64)> = comparisons
                .iter()
                .filter(|c| c.mode == Mode::Endpoint && c.cached == cached)
                .map(|c| (c.clients, c.of(kind).cycles_per_s))
                .collect();
            series.push(Series {
                label: format!("{}, M = {}", kind.name(), size(cached)),
                color: if kind == Kind::Ours { "#1f60c4" } else { "#c4261f" },
                dashed: cached != 0,
                points,
            });
        }
    }
    series
}

/// Maps K (log 2) and cycles/s (linear from 0) to the plot area.
struct Axes {
    k_min: usize,
    k_max: usize,
    y_max: f64,
}

impl Axes {
    fn x(&self, k: usize) -> f64 {
        let span = (self.k_max as f64).log2() - (self.k_min as f64).log2();
        let fraction = if span > 0.0 { ((k as f64).log2() - (self.k_min as f64).log2()) / span } else { 0.5 };
        LEFT + fraction * (WIDTH - LEFT - RIGHT)
    }

    fn y(&self, value: f64) -> f64 {
        HEIGHT - BOTTOM - value / self.y_max * (HEIGHT - TOP - BOTTOM)
    }

    fn grid(&self, ks: &[usize]) -> String {
        let mut out = String::new();
        let step = self.y_max / 5.0;
        for i in 0..=5 {
            let value = step * i as f64;
            let y = self.y(value);
            let _ = writeln!(
                out,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                WIDTH - RIGHT,
                LEFT - 8.0,
                y + 4.0,
                tick_label(value)
            );
        }
        for &k in ks {
            let x = self.x(k);
            let _ = writeln!(
                out,
                r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#eee"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{k}</text>"##,
                HEIGHT - BOTTOM,
                HEIGHT - BOTTOM + 20.0
            );
        }
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="#333"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{0:.1}" stroke="#333"/>"##,
            HEIGHT - BOTTOM,
            WIDTH - RIGHT
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">K (concurrent clients)</text>"#,
            (LEFT + WIDTH - RIGHT) / 2.0,
            HEIGHT - 15.0
        );
        let _ = writeln!(
            out,
            r#"<text x="18" y="{0:.1}" text-anchor="middle" transform="rotate(-90 18 {0:.1})">cycles/s</text>"#,
            (TOP + HEIGHT - BOTTOM) / 2.0
        );
        out
    }

    fn line(&self, series: &Series) -> String {
        let points: Vec<String> =
            series.points.iter().map(|&(k, value)| format!("{:.1},{:.1}", self.x(k), self.y(value))).collect();
        let dash = if series.dashed { r#" stroke-dasharray="7 5""# } else { "" };
        let mut out = format!(
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2.5"{dash}/>"#,
            points.join(" "),
            series.color
        );
        for &(k, value) in &series.points {
            let _ = write!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{}"><title>{}: K={k}, {value:.0}/s</title></circle>"#,
                self.x(k),
                self.y(value),
                series.color,
                series.label
            );
        }
        out + "\n"
    }
}

fn legend(series: &[Series]) -> String {
    let mut out = String::new();
    for (index, s) in series.iter().enumerate() {
        let y = TOP + 12.0 + 20.0 * index as f64;
        let dash = if s.dashed { r#" stroke-dasharray="7 5""# } else { "" };
        let _ = writeln!(
            out,
            r#"<line x1="{0:.1}" y1="{y:.1}" x2="{1:.1}" y2="{y:.1}" stroke="{2}" stroke-width="2.5"{dash}/><text x="{3:.1}" y="{4:.1}">{5}</text>"#,
            LEFT + 15.0,
            LEFT + 50.0,
            s.color,
            LEFT + 58.0,
            y + 4.0,
            s.label
        );
    }
    out
}

/// 0, 500, 2.5k, 10k, …
fn tick_label(value: f64) -> String {
    if value >= 1000.0 { format!("{}k", value / 1000.0) } else { format!("{value:.0}") }
}

/// A round number (1, 2 or 5 times a power of ten, times 5 grid steps) at or above `value`.
fn nice_ceiling(value: f64) -> f64 {
    if value <= 0.0 {
        return 1.0;
    }
    let step = value / 5.0;
    let magnitude = 10f64.powf(step.log10().floor());
    let nice = [1.0, 2.0, 2.5, 5.0, 10.0].into_iter().map(|f| f * magnitude).find(|&s| s >= step).unwrap_or(step);
    nice * 5.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_the_axis_up() {
        assert_eq!(nice_ceiling(7_300.0), 10_000.0);
        assert_eq!(nice_ceiling(31_000.0), 50_000.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(tick_label(12_500.0), "12.5k");
        assert_eq!(tick_label(500.0), "500");
    }
}
