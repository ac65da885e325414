// Embed the git commit in `vsrun --version`, as runc does.
fn main() {
    let commit = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=12"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=VSRUN_COMMIT={commit}");
    println!("cargo:rerun-if-changed=../.git/HEAD");
    println!("cargo:rerun-if-changed=../.git/index");
    pack_relative_relocs();
}

// The static-pie release build relocates itself at every start (and vsrun starts twice: the
// seal's re-exec). Packed relative relocations (DT_RELR, glibc >= 2.36) shrink the table the
// loader walks from 24 bytes an entry to a bitmap: fewer pages read, a smaller binary
// (README "Benchmarks"). Only for the static build: a dynamic one would then need a glibc
// with GLIBC_ABI_DT_RELR wherever the spec-tests run.
fn pack_relative_relocs() {
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    if features.split(',').any(|f| f == "crt-static") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
