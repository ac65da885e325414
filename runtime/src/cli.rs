//! runc 1.1's command line, flag for flag. Engines pass global flags before the subcommand;
//! clap's `global` also accepts them after it, which runc users sometimes do by hand.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "vsrun",
    about = "vsrun: an OCI runtime that turns a bundle into an isolated Linux context",
    disable_version_flag = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Args, Debug, Clone)]
pub struct GlobalOpts {
    /// root directory for storage of container state (tmpfs recommended) [default:
    /// /run/vsrun, or $XDG_RUNTIME_DIR/vsrun in rootless mode]
    #[arg(long = "root", global = true)]
    pub root_flag: Option<PathBuf>,
    /// The state root in use: `--root`, or its default (`rootless::resolve`).
    #[arg(skip)]
    pub root: PathBuf,
    /// write logs to this file instead of stderr
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// log format: text or json
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// enable debug logging
    #[arg(long, global = true)]
    pub debug: bool,
    /// use systemd to manage cgroups
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// path to criu (accepted for compatibility; checkpointing is not supported)
    #[arg(long, global = true)]
    pub criu: Option<PathBuf>,
    /// ignore cgroup permission errors ('true', 'false', or 'auto') [default: auto]. Not
    /// global: `spec` has a `--rootless` of its own, as in runc.
    #[arg(long = "rootless", id = "global_rootless")]
    pub rootless_flag: Option<String>,
    /// Rootless mode in effect (`rootless::resolve`).
    #[arg(skip)]
    pub rootless: bool,
    /// print the version
    #[arg(short = 'v', long = "version")]
    pub version: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// create a container
    Create(CreateArgs),
    /// executes the user defined process in a created container
    Start(IdArg),
    /// create and run a container
    Run(RunArgs),
    /// output the state of a container
    State(IdArg),
    /// kill sends the specified signal (default: SIGTERM) to the container's init process
    Kill(KillArgs),
    /// delete any resources held by the container often used with detached containers
    Delete(DeleteArgs),
    /// lists containers started by vsrun with the given root
    List(ListArgs),
    /// create a new specification file
    Spec(SpecArgs),
    /// show the enabled features
    Features,
    /// execute new process inside the container
    Exec(ExecArgs),
    /// suspend all processes inside the container
    Pause(IdArg),
    /// resume all processes that have been previously paused
    Resume(IdArg),
    /// ps displays the processes running inside a container
    Ps(PsArgs),
    /// update container resource constraints
    Update(UpdateArgs),
    /// display container events such as OOM notifications, cpu, memory, and IO usage statistics
    Events(EventsArgs),
    /// one line per container: processes, memory, CPU time, uptime (like vserver-stat)
    Stat(StatArgs),
}

impl Command {
    /// create, run and exec clone vsrun into a container's namespaces.
    pub fn enters_a_container(&self) -> bool {
        matches!(
            self,
            Command::Create(_) | Command::Run(_) | Command::Exec(_)
        )
    }

    /// Whether the command reads or writes the state root (all but `spec` and `features`).
    pub fn uses_state_root(&self) -> bool {
        !matches!(self, Command::Spec(_) | Command::Features)
    }
}

#[derive(Args, Debug)]
pub struct IdArg {
    pub id: String,
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// path to the root of the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// path to an AF_UNIX socket which will receive the pty master
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// specify the file to write the process id to
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// do not use pivot root to jail process inside rootfs
    #[arg(long)]
    pub no_pivot: bool,
    /// do not create a new session keyring for the container
    #[arg(long)]
    pub no_new_keyring: bool,
    /// pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// detach from the container's process
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// do not delete the container after it exits
    #[arg(long)]
    pub keep: bool,
    /// disable the use of the subreaper used to reap reparented processes (accepted for
    /// compatibility: vsrun never makes itself a subreaper)
    #[arg(long)]
    pub no_subreaper: bool,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// send the signal to all processes in the container
    #[arg(short = 'a', long)]
    pub all: bool,
    pub id: String,
    /// signal name (KILL, SIGKILL) or number; default SIGTERM
    pub signal: Option<String>,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// forcibly delete the container if it is still running (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// select one of: table or json
    #[arg(short = 'f', long, default_value = "table")]
    pub format: String,
    /// display only container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct SpecArgs {
    /// path to the root of the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// generate a configuration for a rootless container
    #[arg(long)]
    pub rootless: bool,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// path to an AF_UNIX socket which will receive the pty master
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// current working directory in the container
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// set environment variables (KEY=VALUE)
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// UID (format: <uid>[:<gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// additional gids
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// path to the process.json
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    /// detach from the container's process
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// specify the file to write the process id to
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// set the asm process label for the process commonly used with selinux
    #[arg(long)]
    pub process_label: Option<String>,
    /// set the apparmor profile for the process
    #[arg(long)]
    pub apparmor: Option<String>,
    /// set the no new privileges value for the process
    #[arg(long)]
    pub no_new_privs: bool,
    /// add a capability to the bounding set for the process
    #[arg(short = 'c', long = "cap")]
    pub cap: Vec<String>,
    /// pass N additional file descriptors to the container
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// run the process in an (existing) sub-cgroup of the container's: `PATH` for every
    /// hierarchy, or `CONTROLLER[,CONTROLLER...]:PATH` (repeatable)
    #[arg(long)]
    pub cgroup: Vec<String>,
    /// allow exec in a paused container
    #[arg(long)]
    pub ignore_paused: bool,
    pub id: String,
    /// command and arguments (without --process)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// select one of: table or json
    #[arg(short = 'f', long, default_value = "table")]
    pub format: String,
    pub id: String,
    /// arguments for ps (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// path to a file with the resources to update, or - for stdin
    #[arg(short = 'r', long)]
    pub resources: Option<PathBuf>,
    /// memory limit (in bytes)
    #[arg(long, allow_negative_numbers = true)]
    pub memory: Option<String>,
    /// memory reservation or soft_limit (in bytes)
    #[arg(long, allow_negative_numbers = true)]
    pub memory_reservation: Option<String>,
    /// total memory usage (memory + swap); -1 for unlimited
    #[arg(long, allow_negative_numbers = true)]
    pub memory_swap: Option<String>,
    /// CPU shares (relative weight vs. other containers). runc 1.1 spells it `--cpu-share`
    #[arg(long, visible_alias = "cpu-share", allow_negative_numbers = true)]
    pub cpu_shares: Option<u64>,
    /// CPU CFS period to be used for hardcapping (in usecs)
    #[arg(long, allow_negative_numbers = true)]
    pub cpu_period: Option<u64>,
    /// CPU CFS hardcap limit (in usecs)
    #[arg(long, allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    /// CPU realtime period (in usecs)
    #[arg(long, allow_negative_numbers = true)]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime runtime (in usecs)
    #[arg(long, allow_negative_numbers = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPU(s) to use
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// memory node(s) to use
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// maximum number of pids allowed in the container
    #[arg(long, allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// block IO weight (10 to 1000)
    #[arg(long, allow_negative_numbers = true)]
    pub blkio_weight: Option<u16>,
    /// kernel memory limit: accepted and ignored with a warning, as runc 1.1 does (the kernel
    /// no longer enforces it)
    #[arg(long, hide = true, allow_negative_numbers = true)]
    pub kernel_memory: Option<String>,
    /// kernel TCP buffer memory limit: accepted and ignored with a warning, as runc 1.1 does
    #[arg(long, hide = true, allow_negative_numbers = true)]
    pub kernel_memory_tcp: Option<String>,
    /// Intel RDT/CAT L3 cache schema (refused: resctrl is not supported)
    #[arg(long)]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT/MBA memory bandwidth schema (refused: resctrl is not supported)
    #[arg(long)]
    pub mem_bw_schema: Option<String>,
    /// disk-space hard limit (bytes, or K/M/G/T) of a container created with org.vsrun.disk-limit
    #[arg(long)]
    pub disk_limit: Option<String>,
    /// inode hard limit of a container created with org.vsrun.disk-limit
    #[arg(long)]
    pub disk_inodes: Option<u64>,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// set the stats collection interval
    #[arg(long, default_value = "5s")]
    pub interval: String,
    /// display the container's stats then exit
    #[arg(long)]
    pub stats: bool,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct StatArgs {
    /// select one of: table or json
    #[arg(short = 'f', long, default_value = "table")]
    pub format: String,
    /// refresh every SECONDS, like top
    #[arg(short = 'w', long)]
    pub watch: Option<f64>,
}
