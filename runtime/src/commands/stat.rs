//! `vsrun stat`: vserver-stat for OCI containers. One line per container under `--root`:
//! CTX (short id), PROC (processes in its cgroup), VSZ, RSS, userTIME, sysTIME, UPTIME, DISK
//! (used/limit of its project quota, `-` without org.vsrun.disk-limit), NAME.
//! It only reads — state.json without the lock, cgroup and /proc files — so it never waits on
//! a lifecycle command and never changes anything; a container that disappears while it is
//! being read is skipped.

use crate::cli::{GlobalOpts, StatArgs};
use crate::error::{config, Result};
use crate::state::{self, State};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Engine annotations that carry a human name, most specific first.
const NAME_ANNOTATIONS: &[&str] = &[
    "io.kubernetes.cri.container-name",
    "io.kubernetes.cri-o.ContainerName",
    "io.kubernetes.container.name",
    "io.podman.annotations.name",
    "nerdctl/name",
    NAME_ANNOTATION,
];

/// vsrun's own annotation for the name `stat` shows, when no engine's is set.
pub const NAME_ANNOTATION: &str = "org.vsrun.name";

pub struct Row {
    pub id: String,
    pub status: &'static str,
    pub procs: usize,
    pub vsz: u64,
    pub rss: u64,
    pub user: Duration,
    pub sys: Duration,
    pub uptime: Duration,
    pub disk: Option<crate::disk::Usage>,
    pub name: String,
}

pub fn run(g: &GlobalOpts, args: &StatArgs) -> Result<i32> {
    if args.format != "table" && args.format != "json" {
        return Err(config(
            "--format",
            format!("{:?}: must be table or json", args.format),
        ));
    }
    loop {
        let rows = collect(&g.root);
        let out = if args.format == "json" {
            to_json(&rows)
        } else {
            table(&rows)
        };
        if let Some(secs) = args.watch {
            // Clear the screen like top does, then print the frame in one write.
            print!("\x1b[H\x1b[2J{out}");
            use std::io::Write;
            let _ = std::io::stdout().flush();
            std::thread::sleep(Duration::from_secs_f64(secs.max(0.1)));
        } else {
            print!("{out}");
            return Ok(0);
        }
    }
}

pub fn collect(root: &Path) -> Vec<Row> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs.iter().filter_map(|d| row(d)).collect()
}

fn row(dir: &Path) -> Option<Row> {
    let st: State = state::load(dir).ok()?;
    let status = state::status(dir, &st).as_str();
    let pids = cgroup_pids(&st);
    let (mut vsz, mut rss) = (0u64, 0u64);
    for pid in &pids {
        if let Some((v, r)) = mem_of(*pid) {
            vsz += v;
            rss += r;
        }
    }
    let (user, sys) = cpu_times(&st).unwrap_or_default();
    let uptime = created_at(&st.created)
        .and_then(|c| SystemTime::now().duration_since(c).ok())
        .unwrap_or_default();
    let name = NAME_ANNOTATIONS
        .iter()
        .find_map(|k| st.annotations.get(*k).filter(|v| !v.is_empty()).cloned())
        .unwrap_or_else(|| st.id.clone());
    Some(Row {
        id: st.id,
        status,
        procs: pids.len(),
        vsz,
        rss,
        user,
        sys,
        uptime,
        disk: st.disk.as_ref().and_then(crate::disk::usage),
        name,
    })
}

/// The hierarchy that lists the container's processes: pids on v1, the unified dir on v2.
fn cgroup_dir(st: &State, controller: &str) -> PathBuf {
    let path = crate::cgroups::fs_path(&st.cgroup_path, st.systemd_cgroup);
    let rel = path.strip_prefix("/").unwrap_or(&path);
    let v1 = Path::new("/sys/fs/cgroup").join(controller).join(rel);
    if v1.exists() {
        v1
    } else {
        Path::new("/sys/fs/cgroup").join(rel)
    }
}

fn cgroup_pids(st: &State) -> Vec<i32> {
    std::fs::read_to_string(cgroup_dir(st, "pids").join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// (vsize bytes, rss bytes) from /proc/<pid>/stat.
fn mem_of(pid: i32) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f: Vec<&str> = s[s.rfind(')')? + 2..].split(' ').collect();
    let page = 4096u64;
    Some((
        f.get(20)?.parse().ok()?,
        f.get(21)?.parse::<u64>().ok()? * page,
    ))
}

/// User and system CPU of the whole cgroup (exited processes included): cpuacct.stat on v1
/// (USER_HZ ticks), cpu.stat on v2 (microseconds).
fn cpu_times(st: &State) -> Option<(Duration, Duration)> {
    let v1 = cgroup_dir(st, "cpuacct").join("cpuacct.stat");
    if let Ok(text) = std::fs::read_to_string(&v1) {
        let hz = 100u64;
        let get = |k: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(k)?.trim().parse().ok())
                .unwrap_or(0)
        };
        return Some((
            Duration::from_millis(get("user ") * 1000 / hz),
            Duration::from_millis(get("system ") * 1000 / hz),
        ));
    }
    let text = std::fs::read_to_string(cgroup_dir(st, "").join("cpu.stat")).ok()?;
    let get = |k: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(k)?.trim().parse().ok())
            .unwrap_or(0)
    };
    Some((
        Duration::from_micros(get("user_usec ")),
        Duration::from_micros(get("system_usec ")),
    ))
}

/// Parse vsrun's own `created` (RFC 3339, UTC, nanoseconds).
fn created_at(s: &str) -> Option<SystemTime> {
    let (date, time) = s.trim_end_matches('Z').split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    let days = crate::timefmt::days_from_civil(y, m as u32, day as u32);
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    let nanos: u32 = format!("{frac:0<9}")[..9].parse().ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::new(secs.max(0) as u64, nanos))
}

fn human_bytes(b: u64) -> String {
    let units = ["", "K", "M", "G", "T"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b}")
    } else {
        format!("{v:.1}{}", units[i])
    }
}

/// vserver-stat's CPU time: `1m02s37` (minutes, seconds, hundredths).
fn cpu_time(d: Duration) -> String {
    let cs = d.as_millis() / 10;
    format!("{}m{:02}s{:02}", cs / 6000, (cs / 100) % 60, cs % 100)
}

/// vserver-stat's uptime: `2h05m09`, `3d04h05` past a day, `0m40s12` under an hour.
fn uptime(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=3599 => format!("{}m{:02}s{:02}", s / 60, s % 60, d.subsec_millis() / 10),
        3600..=86_399 => format!("{}h{:02}m{:02}", s / 3600, (s / 60) % 60, s % 60),
        _ => format!("{}d{:02}h{:02}", s / 86_400, (s / 3600) % 24, (s / 60) % 60),
    }
}

pub fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<12} {:>5} {:>7} {:>7} {:>10} {:>10} {:>10} {:>15} {}\n",
        "CTX", "PROC", "VSZ", "RSS", "userTIME", "sysTIME", "UPTIME", "DISK", "NAME"
    );
    for r in rows {
        let ctx: String = r.id.chars().take(12).collect();
        out.push_str(&format!(
            "{:<12} {:>5} {:>7} {:>7} {:>10} {:>10} {:>10} {:>15} {}\n",
            ctx,
            r.procs,
            human_bytes(r.vsz),
            human_bytes(r.rss),
            cpu_time(r.user),
            cpu_time(r.sys),
            uptime(r.uptime),
            disk_cell(r.disk.as_ref()),
            r.name
        ));
    }
    out
}

/// `used/limit`, e.g. `1.5M/10.0M`; `-` for a container without a disk limit.
fn disk_cell(d: Option<&crate::disk::Usage>) -> String {
    d.map(|d| format!("{}/{}", human_bytes(d.used), human_bytes(d.limit)))
        .unwrap_or_else(|| "-".into())
}

fn to_json(rows: &[Row]) -> String {
    let v: Vec<_> = rows
        .iter()
        .map(|r| {
            json!({
                "ctx": r.id.chars().take(12).collect::<String>(), "id": r.id, "status": r.status,
                "proc": r.procs, "vsz": r.vsz, "rss": r.rss,
                "userTime": r.user.as_secs_f64(), "sysTime": r.sys.as_secs_f64(),
                "uptime": r.uptime.as_secs_f64(), "name": r.name,
                "disk": r.disk.as_ref().map(|d| json!({
                    "used": d.used, "limit": d.limit, "inodes": d.inodes, "inodeLimit": d.inode_limit
                }))
            })
        })
        .collect();
    format!("{}\n", serde_json::Value::Array(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_render_like_vserver_stat() {
        assert_eq!(cpu_time(Duration::from_millis(62_370)), "1m02s37");
        assert_eq!(uptime(Duration::from_millis(40_120)), "0m40s12");
        assert_eq!(
            uptime(Duration::from_secs(2 * 3600 + 5 * 60 + 9)),
            "2h05m09"
        );
        assert_eq!(
            uptime(Duration::from_secs(3 * 86_400 + 4 * 3600 + 5 * 60)),
            "3d04h05"
        );
        assert_eq!(human_bytes(1536 * 1024), "1.5M");
    }

    #[test]
    fn created_round_trips_through_timefmt() {
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_764_000_000, 123_456_789);
        assert_eq!(created_at(&crate::timefmt::rfc3339(t)), Some(t));
    }
}
