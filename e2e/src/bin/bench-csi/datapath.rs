//! Data path: sequential reads of one file through the pod's bind mount (the NodePublish target) and
//! through the raw JuiceFS FUSE mount it binds (the volume's `fluid_path`), in three cache states.
//! Reads are buffered `read(2)`s of 1 MiB into one buffer, as `dd bs=1M` does; raw and bind alternate.

use crate::procs::{JuiceFs, Plugin};
use crate::stats;
use crate::volumes::Volume;
use anyhow::{Context, Result, bail, ensure};
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const CHUNK: usize = 1 << 20;

/// Cache state before each read.
#[derive(Clone, Copy)]
pub enum State {
    /// `juicefs warmup --evict` of the file and `posix_fadvise(DONTNEED)`: blocks come from the bucket.
    Cold,
    /// Blocks in JuiceFS's local cache directory (`juicefs warmup`), kernel page cache dropped
    /// (`posix_fadvise(DONTNEED)`) before each read.
    DiskCache,
    /// Nothing dropped; the file read once before.
    PageCache,
}

pub const STATES: [(State, &str); 3] = [
    (State::Cold, "first read (cold: JuiceFS cache evicted, page cache dropped)"),
    (State::DiskCache, "JuiceFS disk cache hit (page cache dropped)"),
    (State::PageCache, "page cache hit (file read just before)"),
];

pub struct Report {
    pub size: u64,
    pub write_mib_s: f64,
    /// Per state, in the order of [`STATES`].
    pub reads: Vec<Cell>,
}

/// The reads of one cache state.
#[derive(Default)]
pub struct Cell {
    /// MiB/s of each round's read through the raw mount.
    pub raw: Vec<f64>,
    /// MiB/s of each round's read through the bind (same index: same round).
    pub bind: Vec<f64>,
    /// The most of the file found in the page cache just before a read (`fincore`), bytes.
    pub resident: u64,
    /// The most of the file found in JuiceFS's cache just before a read (`juicefs warmup --check`), %.
    pub juicefs_cached: f64,
}

/// Mounts JuiceFS (`meta`, its blocks in the local directory `bucket`) at the data volume's
/// `fluid_path` with an empty cache directory, stages and publishes the volume, writes a `size_mib` MiB
/// file through the raw mount and reads it `repeats` times per path and state; unpublishes and
/// unstages again.
pub async fn run(
    plugin: &Plugin,
    meta: &str,
    work: &Path,
    bucket: &Path,
    size_mib: u64,
    repeats: usize,
) -> Result<Report> {
    let volume = Volume::new(plugin, "data");
    let fs = JuiceFs::mount(meta, &volume.fluid_path, &work.join("cache-data"), &work.join("juicefs-data.log"))?;
    let mut node = plugin.node().await?;
    node.node_stage_volume(volume.stage()).await.context("staging the data volume")?;
    let target = plugin.target("pod-data", &volume.id);
    node.node_publish_volume(volume.publish(&target)).await.context("publishing the data volume")?;

    let size = size_mib << 20;
    let raw = fs.mount_point.join("bench-file");
    let bind = target.join("bench-file");
    let bucket = bucket.to_path_buf();
    let report = tokio::task::spawn_blocking(move || measure(&raw, &bind, &bucket, size, repeats)).await??;

    node.node_unpublish_volume(volume.unpublish(&target)).await.context("unpublishing the data volume")?;
    node.node_unstage_volume(volume.unstage()).await.context("unstaging the data volume")?;
    drop(fs);
    Ok(report)
}

fn measure(raw: &Path, bind: &Path, bucket: &Path, size: u64, repeats: usize) -> Result<Report> {
    eprintln!("bench-csi: writing {} MiB through the raw mount", size >> 20);
    let write_mib_s = write(raw, size)?;
    let mut reads = Vec::new();
    for (state, name) in STATES {
        eprintln!("bench-csi: reads, {name}");
        match state {
            State::DiskCache => juicefs(&["warmup"], raw).map(drop)?,
            State::PageCache => drop(read(raw, size)?),
            State::Cold => {}
        }
        let mut cell = Cell::default();
        for i in 0..repeats {
            // Raw first on even rounds, bind first on odd ones: neither gains from going second.
            let order = if i % 2 == 0 { [(raw, false), (bind, true)] } else { [(bind, true), (raw, false)] };
            for (path, via_bind) in order {
                match state {
                    State::Cold => {
                        juicefs(&["warmup", "--evict"], raw)?;
                        drop_page_cache(raw)?;
                        drop_page_cache_under(bucket)?;
                    }
                    State::DiskCache => drop_page_cache(raw)?,
                    State::PageCache => {}
                }
                cell.resident = cell.resident.max(resident_bytes(raw)?);
                cell.juicefs_cached = cell.juicefs_cached.max(juicefs_cached_percent(raw)?);
                let mib_s = stats::mib_per_s(size, read(path, size)?);
                if via_bind { cell.bind.push(mib_s) } else { cell.raw.push(mib_s) }
            }
        }
        reads.push(cell);
    }
    Ok(Report { size, write_mib_s, reads })
}

/// Writes `size` bytes of a non-repeating pattern (so neither compression nor deduplication helps),
/// `fsync`s; MiB/s.
fn write(path: &Path, size: u64) -> Result<f64> {
    let mut buf = vec![0u8; CHUNK];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let t = Instant::now();
    let mut left = size;
    while left > 0 {
        for word in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(CHUNK as u64) as usize;
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.sync_all()?;
    Ok(stats::mib_per_s(size, t.elapsed()))
}

/// Reads the whole file sequentially; fails unless it holds `size` bytes.
fn read(path: &Path, size: u64) -> Result<Duration> {
    let mut buf = vec![0u8; CHUNK];
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let t = Instant::now();
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    let elapsed = t.elapsed();
    ensure!(total == size, "read {total} bytes of {size} from {}", path.display());
    Ok(elapsed)
}

/// `posix_fadvise(POSIX_FADV_DONTNEED)` on the whole file: its clean pages leave the page cache (the
/// bind shares the FUSE mount's inode, so this drops them for both paths), nothing else does.
fn drop_page_cache(path: &Path) -> Result<()> {
    let f = std::fs::File::open(path)?;
    rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed)?;
    Ok(())
}

/// The same for every file below `dir` (the bucket's block files: the "object store" is cold too).
fn drop_page_cache_under(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            drop_page_cache_under(&entry.path())?;
        } else if entry.file_type()?.is_file() {
            drop_page_cache(&entry.path())?;
        }
    }
    Ok(())
}

/// `juicefs <args> <path>`; its log (stderr).
fn juicefs(args: &[&str], path: &Path) -> Result<String> {
    let out = Command::new("juicefs").args(args).arg(path).output()?;
    if !out.status.success() {
        bail!("juicefs {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stderr).into_owned())
}

/// How much of the file is in JuiceFS's cache, %: from the `check cache: … (P%) cached` line that
/// `juicefs warmup --check` logs.
fn juicefs_cached_percent(path: &Path) -> Result<f64> {
    let log = juicefs(&["warmup", "--check"], path)?;
    log.lines()
        .filter(|l| l.contains("check cache:"))
        .find_map(|l| l.rsplit_once("%) cached")?.0.rsplit_once('(')?.1.parse().ok())
        .with_context(|| format!("no cache figure in juicefs warmup --check's log:\n{log}"))
}

/// Bytes of the file in the page cache (`fincore`).
fn resident_bytes(path: &Path) -> Result<u64> {
    let out = Command::new("fincore").args(["--bytes", "--noheadings", "--output", "RES"]).arg(path).output()?;
    ensure!(out.status.success(), "fincore failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse().context("fincore's output")
}

/// The report as a markdown table. The ratio is taken per round (the raw and the bind read of one
/// round run back to back, so they share the machine's load of the moment), then its median.
pub fn markdown(r: &Report, repeats: usize) -> String {
    let mut out = format!(
        "### Data path: sequential read of a {} MiB file ({repeats} rounds per state; MiB/s, median)\n\n\
         | read | raw FUSE mount | pod bind mount (publish target) | bind / raw per round: median (min–max) | \
         before a read (most seen): in page cache, in JuiceFS cache |\n|---|---|---|---|---|\n",
        r.size >> 20
    );
    for ((_, name), cell) in STATES.iter().zip(&r.reads) {
        let ratios: Vec<f64> = cell.bind.iter().zip(&cell.raw).map(|(b, r)| b / r.max(1e-9)).collect();
        let (low, high) = ratios.iter().fold((f64::MAX, 0.0f64), |(l, h), x| (l.min(*x), h.max(*x)));
        out += &format!(
            "| {name} | {:.0} | {:.0} | {:.3} ({low:.3}–{high:.3}) | {} MiB, {:.1} % |\n",
            stats::median(&cell.raw),
            stats::median(&cell.bind),
            stats::median(&ratios),
            cell.resident >> 20,
            cell.juicefs_cached
        );
    }
    out += &format!("\nWrite of the file through the raw mount (`fsync` included): {:.0} MiB/s.\n", r.write_mib_s);
    out
}
