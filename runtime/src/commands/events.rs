//! `vsrun events --stats` (one JSON object) and the `--interval` stream, in runc's shape:
//! `{"type":"stats","id":…,"data":{"cpu":…,"cpuset":…,"memory":…,"pids":…,"blkio":…,"hugetlb":…}}`.

use crate::cli::{EventsArgs, GlobalOpts};
use crate::error::{config, state, Result};
use crate::state::{Container, Status};
use libcgroups::stats::{BlkioDeviceStat, MemoryData, Stats};
use serde_json::{json, Map, Value};
use std::io::Write;
use std::time::Duration;

pub fn run(g: &GlobalOpts, args: &EventsArgs) -> Result<i32> {
    let interval = parse_interval(&args.interval)?;
    loop {
        let st = Container::open(&g.root, &args.id)?.load()?;
        let dir = g.root.join(&args.id);
        if crate::state::status(&dir, &st) == Status::Stopped {
            return Err(state(format!("container {:?} is stopped", args.id)));
        }
        let s = crate::cgroups::stats(&st.cgroup_path, st.systemd_cgroup, &st.id, st.rootless)?;
        let mut d = data(&s);
        d["cpuset"] = crate::cgroups::cpuset(&st.cgroup_path, st.systemd_cgroup);
        let line = json!({"type": "stats", "id": st.id, "data": d});
        // A reader that went away (`| head`) ends the stream quietly instead of a panic.
        let mut out = std::io::stdout();
        if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
            return Ok(0);
        }
        if args.stats {
            return Ok(0);
        }
        std::thread::sleep(interval);
    }
}

fn parse_interval(s: &str) -> Result<Duration> {
    let bad = || {
        config(
            "--interval",
            format!("{s:?}: expected a duration like 5s or 500ms"),
        )
    };
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = num.parse().map_err(|_| bad())?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        _ => return Err(bad()),
    };
    if d.is_zero() {
        return Err(bad());
    }
    Ok(d)
}

fn mem(m: &MemoryData) -> Value {
    json!({"limit": m.limit, "usage": m.usage, "max": m.max_usage, "failcnt": m.fail_count})
}

fn blkio(list: &[BlkioDeviceStat]) -> Value {
    Value::Array(
        list.iter()
            .map(|d| json!({"major": d.major, "minor": d.minor, "op": d.op_type.clone().unwrap_or_default(), "value": d.value}))
            .collect(),
    )
}

pub fn data(s: &Stats) -> Value {
    let u = &s.cpu.usage;
    let t = &s.cpu.throttling;
    let mut huge = Map::new();
    for (size, h) in &s.hugetlb {
        huge.insert(
            size.clone(),
            json!({"usage": h.usage, "max": h.max_usage, "failcnt": h.fail_count}),
        );
    }
    json!({
        "cpu": {
            "usage": {
                "total": u.usage_total, "percpu": u.per_core_usage_total,
                "percpu_kernel": u.per_core_usage_kernel, "percpu_user": u.per_core_usage_user,
                "kernel": u.usage_kernel, "user": u.usage_user
            },
            "throttling": {"periods": t.periods, "throttledPeriods": t.throttled_periods, "throttledTime": t.throttled_time}
        },
        "memory": {
            "cache": s.memory.cache,
            "usage": mem(&s.memory.memory),
            "swap": mem(&s.memory.memswap),
            "kernel": mem(&s.memory.kernel),
            "kernelTCP": mem(&s.memory.kernel_tcp),
            "raw": s.memory.stats
        },
        "pids": {"current": s.pids.current, "limit": s.pids.limit},
        "blkio": {
            "ioServiceBytesRecursive": blkio(&s.blkio.service_bytes),
            "ioServicedRecursive": blkio(&s.blkio.serviced),
            "ioQueueRecursive": blkio(&s.blkio.queued),
            "ioServiceTimeRecursive": blkio(&s.blkio.service_time),
            "ioWaitTimeRecursive": blkio(&s.blkio.wait_time),
            "ioMergedRecursive": blkio(&s.blkio.merged),
            "ioTimeRecursive": blkio(&s.blkio.time),
            "sectorsRecursive": blkio(&s.blkio.sectors)
        },
        "hugetlb": huge,
        // runc's keys for what vsrun has no counterpart of (Intel RDT, the network
        // namespace's interfaces), as runc prints them when it has none either
        "intel_rdt": {},
        "network_interfaces": null
    })
}
