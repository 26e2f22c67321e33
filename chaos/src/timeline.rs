//! An SVG timeline of a run: the faults, each member's state (up, killed, paused, cut off) and
//! leadership, successful writes per time slice, failed operations, and the windows in which no
//! write succeeded. Plain SVG written by hand (no plotting dependency): one file that any
//! browser opens.

use std::fmt::Write as _;
use std::path::Path;

use crate::check::availability::Availability;
use crate::history::{History, Input, Output};

const W: f64 = 1600.0;
const LEFT: f64 = 120.0;
const RIGHT: f64 = 20.0;
const ROW: f64 = 20.0;

struct Scale {
    end: f64,
}

impl Scale {
    fn x(&self, t: u64) -> f64 {
        LEFT + (t as f64 / self.end).clamp(0.0, 1.0) * (W - LEFT - RIGHT)
    }
}

fn color(kind: &str) -> &'static str {
    match kind {
        "leader-kill" | "random-kill" => "#d62728",
        "pause" => "#ff7f0e",
        "partition-leader" | "one-way-leader-out" | "one-way-leader-in" | "partition-minority" => {
            "#9467bd"
        }
        "flaky-network" => "#8c564b",
        "member-replace" => "#e377c2",
        "rolling-restart" => "#7f7f7f",
        "apiserver-kill" => "#bcbd22",
        _ => "#17becf",
    }
}

/// How a fault shows on a member's row.
fn member_state(kind: &str) -> Option<(&'static str, &'static str)> {
    match kind {
        "leader-kill" | "random-kill" | "rolling-restart" => Some(("#999999", "down")),
        "member-replace" => Some(("#e377c2", "replaced")),
        "pause" => Some(("#ff7f0e", "paused")),
        "partition-leader" | "partition-minority" => Some(("#9467bd", "cut off")),
        "one-way-leader-out" | "one-way-leader-in" => Some(("#c5b0d5", "one-way cut")),
        _ => None,
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn render(h: &History, avail: &Availability, members: usize) -> String {
    let end = h.end.max(1) as f64;
    let sc = Scale { end };
    let rows_top = 40.0;
    let fault_row = rows_top;
    let member_top = fault_row + ROW + 10.0;
    let writes_top = member_top + members as f64 * (ROW + 4.0) + 10.0;
    let writes_h = 60.0;
    let failed_top = writes_top + writes_h + 10.0;
    let axis_y = failed_top + ROW + 12.0;
    let height = axis_y + 60.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="18" font-size="14">strata chaos: {} operations, {} faults, {} leader changes over {:.1} s</text>"#,
        h.ops.len() + h.kube_ops.len(),
        h.faults.len(),
        h.leaders.len(),
        end / 1e9
    );
    // Unavailable windows behind everything.
    for (a, b) in &avail.windows {
        let (x1, x2) = (sc.x(*a), sc.x(*b));
        let _ = writeln!(
            s,
            r##"<rect x="{x1:.1}" y="{rows_top}" width="{:.1}" height="{:.1}" fill="#ff0000" opacity="0.12"><title>no successful write for {:.0} ms</title></rect>"##,
            (x2 - x1).max(1.0),
            axis_y - rows_top,
            (*b - *a) as f64 / 1e6
        );
    }
    // Faults.
    let _ = writeln!(
        s,
        r#"<text x="4" y="{:.1}">faults</text>"#,
        fault_row + 14.0
    );
    for f in &h.faults {
        let x1 = sc.x(f.start);
        let x2 = sc.x(f.end.unwrap_or(h.end));
        let _ = writeln!(
            s,
            r#"<rect x="{x1:.1}" y="{fault_row}" width="{:.1}" height="{ROW}" fill="{}" opacity="0.8"><title>{} {} ({:.3} s - {:.3} s)</title></rect>"#,
            (x2 - x1).max(1.5),
            color(&f.kind),
            esc(&f.kind),
            esc(&f.target),
            f.start as f64 / 1e9,
            f.end.unwrap_or(h.end) as f64 / 1e9
        );
        if x2 - x1 > 60.0 {
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" fill="white">{}</text>"#,
                x1 + 3.0,
                fault_row + 14.0,
                esc(&f.kind)
            );
        }
    }
    // Members: up (green), fault states, leadership.
    for m in 0..members {
        let y = member_top + m as f64 * (ROW + 4.0);
        let _ = writeln!(s, r#"<text x="4" y="{:.1}">n{}</text>"#, y + 14.0, m + 1);
        let _ = writeln!(
            s,
            r##"<rect x="{LEFT}" y="{y:.1}" width="{:.1}" height="{ROW}" fill="#2ca02c" opacity="0.35"/>"##,
            W - LEFT - RIGHT
        );
        for f in h.faults.iter().filter(|f| f.members.contains(&m)) {
            if let Some((c, what)) = member_state(&f.kind) {
                let x1 = sc.x(f.start);
                let x2 = sc.x(f.end.unwrap_or(h.end));
                let _ = writeln!(
                    s,
                    r#"<rect x="{x1:.1}" y="{y:.1}" width="{:.1}" height="{ROW}" fill="{c}"><title>n{} {what} ({})</title></rect>"#,
                    (x2 - x1).max(1.5),
                    m + 1,
                    esc(&f.kind)
                );
            }
        }
        for (i, l) in h.leaders.iter().enumerate() {
            if l.leader != Some(m) {
                continue;
            }
            let until = h.leaders.get(i + 1).map_or(h.end, |n| n.at);
            let (x1, x2) = (sc.x(l.at), sc.x(until));
            let _ = writeln!(
                s,
                r##"<rect x="{x1:.1}" y="{:.1}" width="{:.1}" height="5" fill="#1f3b73"><title>n{} leader</title></rect>"##,
                y + ROW - 5.0,
                (x2 - x1).max(1.0),
                m + 1
            );
        }
    }
    // Successful writes per slice.
    let bins = 400usize;
    let mut counts = vec![0u32; bins];
    let mut failed: Vec<(u64, bool)> = Vec::new();
    for o in &h.ops {
        match (&o.output, o.ret) {
            (Output::Unknown { .. }, _) => failed.push((o.call, true)),
            (Output::Refused { .. }, _) => failed.push((o.call, false)),
            (_, Some(ret)) if !matches!(o.input, Input::Get { .. }) => {
                let b = ((ret as f64 / end) * bins as f64) as usize;
                counts[b.min(bins - 1)] += 1;
            }
            _ => {}
        }
    }
    let max = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let slice_s = end / 1e9 / bins as f64;
    let _ = writeln!(
        s,
        r#"<text x="4" y="{:.1}">writes/s</text>"#,
        writes_top + 14.0
    );
    let _ = writeln!(
        s,
        r#"<text x="4" y="{:.1}" fill="grey">max {:.0}</text>"#,
        writes_top + 28.0,
        max / slice_s
    );
    let bw = (W - LEFT - RIGHT) / bins as f64;
    for (i, c) in counts.iter().enumerate() {
        if *c == 0 {
            continue;
        }
        let hgt = *c as f64 / max * writes_h;
        let _ = writeln!(
            s,
            r##"<rect x="{:.2}" y="{:.1}" width="{:.2}" height="{hgt:.1}" fill="#1f77b4"/>"##,
            LEFT + i as f64 * bw,
            writes_top + writes_h - hgt,
            bw.max(0.5)
        );
    }
    // Failed operations: red = unknown outcome, orange = refused.
    let _ = writeln!(
        s,
        r#"<text x="4" y="{:.1}">failed ops</text>"#,
        failed_top + 14.0
    );
    // At most 20 000 ticks, spread over the whole run.
    let step = failed.len() / 20_000 + 1;
    for (t, unknown) in failed.iter().step_by(step) {
        let x = sc.x(*t);
        let c = if *unknown { "#d62728" } else { "#ff7f0e" };
        let _ = writeln!(
            s,
            r#"<line x1="{x:.1}" x2="{x:.1}" y1="{failed_top}" y2="{:.1}" stroke="{c}" stroke-width="1" opacity="0.6"/>"#,
            failed_top + ROW
        );
    }
    // Time axis.
    let _ = writeln!(
        s,
        r#"<line x1="{LEFT}" x2="{:.1}" y1="{axis_y}" y2="{axis_y}" stroke="black"/>"#,
        W - RIGHT
    );
    let secs = end / 1e9;
    let step = [1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0]
        .into_iter()
        .find(|st| secs / st <= 20.0)
        .unwrap_or(1200.0);
    let mut t = 0.0;
    while t <= secs {
        let x = sc.x((t * 1e9) as u64);
        let _ = writeln!(
            s,
            r#"<line x1="{x:.1}" x2="{x:.1}" y1="{axis_y}" y2="{:.1}" stroke="black"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{t:.0}s</text>"#,
            axis_y + 5.0,
            axis_y + 18.0
        );
        t += step;
    }
    let legend = [
        ("#2ca02c", "up"),
        ("#999999", "killed"),
        ("#ff7f0e", "paused"),
        ("#9467bd", "cut off"),
        ("#e377c2", "replaced"),
        ("#1f3b73", "leader"),
        ("#ff9999", "no write succeeded"),
        ("#d62728", "unknown outcome"),
    ];
    let mut x = LEFT;
    for (c, label) in legend {
        let _ = writeln!(
            s,
            r#"<rect x="{x:.1}" y="{:.1}" width="12" height="12" fill="{c}"/><text x="{:.1}" y="{:.1}">{label}</text>"#,
            axis_y + 32.0,
            x + 16.0,
            axis_y + 42.0
        );
        x += 20.0 + label.len() as f64 * 7.0;
    }
    s.push_str("</svg>\n");
    s
}

pub fn write(path: &Path, h: &History, avail: &Availability, members: usize) -> Result<(), String> {
    std::fs::write(path, render(h, avail, members)).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{FaultRecord, LeaderChange};

    #[test]
    fn renders_faults_leaders_and_windows() {
        let h = History {
            faults: vec![FaultRecord {
                kind: "leader-kill".into(),
                target: "n1 <leader>".into(),
                start: 1_000_000_000,
                end: Some(2_000_000_000),
                members: vec![0],
            }],
            leaders: vec![
                LeaderChange {
                    at: 0,
                    leader: Some(0),
                },
                LeaderChange {
                    at: 1_500_000_000,
                    leader: Some(1),
                },
            ],
            end: 3_000_000_000,
            ..Default::default()
        };
        let a = Availability {
            windows: vec![(1_000_000_000, 1_400_000_000)],
            ..Default::default()
        };
        let svg = render(&h, &a, 3);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("n1 &lt;leader&gt;"));
        assert!(svg.contains("n2 leader"));
        assert!(svg.contains("no successful write for 400 ms"));
    }
}
