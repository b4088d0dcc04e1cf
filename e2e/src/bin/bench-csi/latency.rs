//! CSI call latency with N volumes already published on the node. For each N (ascending), background
//! volumes are staged and published until N are, then one more volume (`probe`) goes through
//! `samples` full cycles — NodeStage (its label missing), NodeStage again (label set), NodePublish,
//! NodeUnpublish, NodeUnstage — each call timed on the client side (gRPC over the unix socket
//! included) and the plugin's API request counters read between calls.

use crate::procs::Plugin;
use crate::stats::{self, Requests};
use crate::volumes::Volume;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const CALLS: [&str; 5] = [
    "NodeStageVolume (label missing)",
    "NodeStageVolume (label set)",
    "NodePublishVolume",
    "NodeUnpublishVolume",
    "NodeUnstageVolume",
];

/// Latencies of each call in [`CALLS`] with `published` volumes published.
pub struct Row {
    pub published: usize,
    pub samples: [Vec<Duration>; 5],
}

pub struct Report {
    pub rows: Vec<Row>,
    /// API requests summed over every cycle, per call in [`CALLS`].
    pub requests: [Requests; 5],
    pub cycles: usize,
    /// Time to stage and publish the background volumes from one count to the next: (from, to, time).
    pub populate: Vec<(usize, usize, Duration)>,
}

/// Runs the cycles for every count in `counts`; `source` is the JuiceFS mount every `fluid_path` binds.
pub async fn run(plugin: &Plugin, source: &Path, counts: &[usize], samples: usize) -> Result<Report> {
    let mut node = plugin.node().await?;
    let mut background: Vec<(Volume, PathBuf)> = Vec::new();
    let probe = Volume::new(plugin, "probe");
    probe.bind_fuse(source)?;
    let mut report = Report { rows: Vec::new(), requests: Default::default(), cycles: 0, populate: Vec::new() };
    let mut counts = counts.to_vec();
    counts.sort_unstable();
    counts.dedup();
    for n in counts {
        let started = Instant::now();
        let before = background.len();
        while background.len() < n {
            let i = background.len();
            let v = Volume::new(plugin, &format!("v{i}"));
            v.bind_fuse(source)?;
            node.node_stage_volume(v.stage()).await.with_context(|| format!("staging {}", v.id))?;
            let target = plugin.target(&format!("pod-{i}"), &v.id);
            node.node_publish_volume(v.publish(&target)).await.with_context(|| format!("publishing {}", v.id))?;
            background.push((v, target));
        }
        if n > before {
            report.populate.push((before, n, started.elapsed()));
        }
        eprintln!("bench-csi: {n} volumes published; {samples} cycles");
        let mut row = Row { published: n, samples: Default::default() };
        for k in 0..samples {
            let target = plugin.target(&format!("probe-{k}"), &probe.id);
            let mut counters = vec![plugin.requests()?];
            for (call, samples) in row.samples.iter_mut().enumerate() {
                let t = Instant::now();
                let answer = match call {
                    0 | 1 => node.node_stage_volume(probe.stage()).await.map(drop),
                    2 => node.node_publish_volume(probe.publish(&target)).await.map(drop),
                    3 => node.node_unpublish_volume(probe.unpublish(&target)).await.map(drop),
                    _ => node.node_unstage_volume(probe.unstage()).await.map(drop),
                };
                samples.push(t.elapsed());
                answer.with_context(|| format!("{} of the probe volume", CALLS[call]))?;
                counters.push(plugin.requests()?);
            }
            for (call, total) in report.requests.iter_mut().enumerate() {
                stats::add_delta(total, &counters[call], &counters[call + 1]);
            }
            report.cycles += 1;
        }
        report.rows.push(row);
    }
    eprintln!("bench-csi: unpublishing and unstaging {} background volumes", background.len());
    for (v, target) in background.iter().rev() {
        node.node_unpublish_volume(v.unpublish(target)).await.with_context(|| format!("unpublishing {}", v.id))?;
        node.node_unstage_volume(v.unstage()).await.with_context(|| format!("unstaging {}", v.id))?;
    }
    Ok(report)
}

/// The report as markdown tables.
pub fn markdown(r: &Report) -> String {
    let mut out = String::from(
        "### CSI call latency (client side, gRPC over the unix socket included)\n\n\
         | volumes already published | call | samples | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|\n",
    );
    for row in &r.rows {
        for (call, s) in CALLS.iter().zip(&row.samples) {
            out += &format!(
                "| {} | {call} | {} | {} | {} | {} |\n",
                row.published,
                s.len(),
                stats::ms(stats::quantile(s, 0.5)),
                stats::ms(stats::quantile(s, 0.99)),
                stats::ms(stats::quantile(s, 1.0))
            );
        }
    }
    out += &format!(
        "\n### API requests the plugin sent per call ({} cycles)\n\n| call | requests per call |\n|---|---|\n",
        r.cycles
    );
    for (call, total) in CALLS.iter().zip(&r.requests) {
        out += &format!("| {call} | {} |\n", stats::per_call(total, r.cycles));
    }
    if !r.populate.is_empty() {
        out += "\n| background volumes staged and published, one after the other | time |\n|---|---|\n";
        for (from, to, d) in &r.populate {
            out += &format!("| {from} → {to} | {:.1} s |\n", d.as_secs_f64());
        }
    }
    out
}
