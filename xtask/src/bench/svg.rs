//! Small inline SVG charts for the HTML report: no scripts, no CDN.

use std::fmt::Write as _;

/// Escapes text for HTML and SVG.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Two horizontal bars, hive over its anchor, scaled to the larger; hive's
/// bar is green when its goal is met, red when missed, blue without goal.
pub(crate) fn pair(hive: f64, anchor: f64, met: Option<bool>) -> String {
    let (w, max) = (220.0, hive.abs().max(anchor.abs()).max(f64::MIN_POSITIVE));
    let len = |v: f64| (v.abs() / max * w).max(1.0);
    let colour = match met {
        Some(true) => "#2e7d32",
        Some(false) => "#c62828",
        None => "#1565c0",
    };
    format!(
        "<svg width=\"230\" height=\"26\" role=\"img\" aria-label=\"hive {} vs anchor {}\">\
         <rect x=\"0\" y=\"2\" width=\"{:.1}\" height=\"10\" fill=\"{colour}\"/>\
         <rect x=\"0\" y=\"14\" width=\"{:.1}\" height=\"10\" fill=\"#9e9e9e\"/></svg>",
        hive,
        anchor,
        len(hive),
        len(anchor)
    )
}

/// A series of a grouped bar chart: its name, colour and one value per group.
pub(crate) struct Series<'a> {
    pub name: &'a str,
    pub colour: &'a str,
    pub values: Vec<f64>,
}

/// Vertical bars grouped by `groups`, one bar per series in each group.
pub(crate) fn grouped_bars(groups: &[String], series: &[Series<'_>], unit: &str) -> String {
    let (group_w, bar_w, h, top, left) = (150.0, 24.0, 180.0, 20.0, 60.0);
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let width = left + group_w * groups.len() as f64 + 20.0;
    let mut svg = format!(
        "<svg width=\"{width:.0}\" height=\"{:.0}\" role=\"img\">",
        h + top + 70.0
    );
    axis(&mut svg, left, top, h, max, unit);
    for (g, name) in groups.iter().enumerate() {
        let x0 = left + 10.0 + group_w * g as f64;
        for (i, s) in series.iter().enumerate() {
            let v = s.values.get(g).copied().unwrap_or(0.0);
            let bh = v / max * h;
            let x = x0 + bar_w * i as f64;
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{}\">\
                 <title>{}: {}</title></rect>",
                top + h - bh,
                bar_w - 3.0,
                s.colour,
                escape(s.name),
                super::summary::number(v)
            );
        }
        let _ = write!(
            svg,
            "<text x=\"{x0:.1}\" y=\"{:.1}\" font-size=\"10\" transform=\"rotate(20 {x0:.1} {:.1})\">{}</text>",
            top + h + 14.0,
            top + h + 14.0,
            escape(name)
        );
    }
    legend(&mut svg, series, left, 12.0);
    svg.push_str("</svg>");
    svg
}

/// A line chart of `(x, y)` points.
pub(crate) fn line(points: &[(f64, f64)], x_unit: &str, y_unit: &str) -> String {
    let (w, h, top, left) = (620.0, 200.0, 20.0, 60.0);
    let max_x = points
        .iter()
        .map(|p| p.0)
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let max_y = points
        .iter()
        .map(|p| p.1)
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE)
        * 1.1;
    let mut svg = format!(
        "<svg width=\"{:.0}\" height=\"{:.0}\" role=\"img\">",
        left + w + 20.0,
        h + top + 40.0
    );
    axis(&mut svg, left, top, h, max_y, y_unit);
    let path: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{:.1},{:.1}", left + x / max_x * w, top + h - y / max_y * h))
        .collect();
    let _ = write!(
        svg,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#1565c0\" stroke-width=\"2\"/>\
         <text x=\"{:.0}\" y=\"{:.0}\" font-size=\"11\">{} {}</text></svg>",
        path.join(" "),
        left + w - 60.0,
        top + h + 28.0,
        super::summary::number(max_x),
        escape(x_unit)
    );
    svg
}

/// A tiny line of `values` (a history), the last point marked.
pub(crate) fn sparkline(values: &[f64]) -> String {
    let (w, h) = (120.0, 22.0);
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let (lo, hi) = finite
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let span = (hi - lo).max(f64::MIN_POSITIVE);
    let step = w / (finite.len().max(2) - 1) as f64;
    let pts: Vec<(f64, f64)> = finite
        .iter()
        .enumerate()
        .map(|(i, v)| (i as f64 * step, h - 2.0 - (v - lo) / span * (h - 4.0)))
        .collect();
    let path: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    let last = pts.last().copied().unwrap_or((0.0, h / 2.0));
    format!(
        "<svg width=\"124\" height=\"24\" role=\"img\"><polyline points=\"{}\" fill=\"none\" stroke=\"#555\"/>\
         <circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"#1565c0\"/></svg>",
        path.join(" "),
        last.0,
        last.1
    )
}

fn axis(svg: &mut String, left: f64, top: f64, h: f64, max: f64, unit: &str) {
    let _ = write!(
        svg,
        "<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{:.0}\" stroke=\"#333\"/>\
         <text x=\"2\" y=\"{:.0}\" font-size=\"10\">{}</text>\
         <text x=\"2\" y=\"{:.0}\" font-size=\"10\">0</text>\
         <text x=\"2\" y=\"{:.0}\" font-size=\"10\">{}</text>",
        top + h,
        top + 4.0,
        super::summary::number(max),
        top + h,
        top + h / 2.0,
        escape(unit)
    );
}

fn legend(svg: &mut String, series: &[Series<'_>], left: f64, y: f64) {
    for (i, s) in series.iter().enumerate() {
        let x = left + 10.0 + 130.0 * i as f64;
        let _ = write!(
            svg,
            "<rect x=\"{x:.0}\" y=\"{:.0}\" width=\"10\" height=\"10\" fill=\"{}\"/>\
             <text x=\"{:.0}\" y=\"{y:.0}\" font-size=\"11\">{}</text>",
            y - 9.0,
            s.colour,
            x + 14.0,
            escape(s.name)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_well_formed_svg_without_outside_references() {
        let charts = [
            pair(2.0, 1.0, Some(true)),
            grouped_bars(
                &["all on".into(), "<off>".into()],
                &[Series {
                    name: "p99",
                    colour: "#000",
                    values: vec![1.0, 2.0],
                }],
                "us",
            ),
            line(&[(0.0, 1.0), (1.0, 2.0)], "s", "MB"),
            sparkline(&[1.0, f64::NAN, 3.0]),
            sparkline(&[]),
        ];
        for svg in charts {
            assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
            assert!(
                !svg.contains("http") && !svg.contains("NaN") && !svg.contains("inf"),
                "{svg}"
            );
            assert_eq!(svg.matches("<svg").count(), svg.matches("</svg>").count());
        }
        assert!(grouped_bars(&["<off>".into()], &[], "us").contains("&lt;off&gt;"));
    }
}
