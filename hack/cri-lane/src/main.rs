//! cri-lane: what kubelet does to a pod, sent to containerd's CRI plugin, with the pod's
//! runtime handler pointing runc's shim at vsrun (hack/engines.sh cri, docs/kubernetes.md).
//!
//! Every CRI call prints `CRI <Call> -> ...`, every check `PASS <what>` or `FAIL <what>: why`,
//! so a reader (and the lane, which counts those lines) sees which step failed. Exit status 0
//! only when every check passed.

mod conn;
mod containers;
mod host;
mod opts;
mod pod;
mod report;
mod scenario;
mod units;

use std::process::ExitCode;

fn main() -> ExitCode {
    let opts = match opts::Opts::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("cri-lane: {e}\n{}", opts::USAGE);
            return ExitCode::from(2);
        }
    };
    // One thread: the lane is a sequence of calls, and CI has two cores to share.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cri-lane: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut report = report::Report::default();
    rt.block_on(scenario::run(&opts, &mut report));
    println!(
        "cri-lane: {} passed, {} failed",
        report.passed, report.failed
    );
    if report.failed == 0 && report.passed > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
