//! `linux.seccomp` → one BPF program: check the config field by field, resolve every syscall
//! name on every ABI the filter covers, then emit an arch dispatch and, per ABI, a binary
//! search over syscall-number ranges whose leaves return an action or test arguments.

use super::arch::{self, Arch, X32_SYSCALL_BIT};
use super::bpf::{self, Builder, Insn, Jmp, Label};
use crate::error::{config, Result};
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction as Act, LinuxSeccompArg, LinuxSeccompOperator as Op,
};

// SECCOMP_RET_* (linux/seccomp.h); the low 16 bits carry ERRNO's errno and TRACE's message.
pub const RET_KILL_THREAD: u32 = 0x0000_0000;
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_TRAP: u32 = 0x0003_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const RET_TRACE: u32 = 0x7ff0_0000;
pub const RET_LOG: u32 = 0x7ffc_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;

/// Every action a rule or the default may name, and the SECCOMP_RET_* it compiles to (ERRNO
/// and TRACE add their data). `vsrun features` lists the actions from this table.
pub const ACTIONS: [(Act, u32); 9] = [
    (Act::ScmpActAllow, RET_ALLOW),
    (Act::ScmpActErrno, RET_ERRNO),
    (Act::ScmpActKill, RET_KILL_THREAD),
    (Act::ScmpActKillProcess, RET_KILL_PROCESS),
    (Act::ScmpActKillThread, RET_KILL_THREAD),
    (Act::ScmpActLog, RET_LOG),
    (Act::ScmpActNotify, RET_USER_NOTIF),
    (Act::ScmpActTrace, RET_TRACE),
    (Act::ScmpActTrap, RET_TRAP),
];

/// Every argument operator and its test on the low word: (operator, jump, swap), where swap
/// means "jump to the false branch when the test holds". SCMP_CMP_MASKED_EQ is `None`: it is
/// compiled apart (and-then-compare). `vsrun features` lists the operators from this table.
pub const OPERATORS: [(Op, Option<(Jmp, bool)>); 7] = [
    (Op::ScmpCmpEq, Some((Jmp::Eq, false))),
    (Op::ScmpCmpGe, Some((Jmp::Ge, false))),
    (Op::ScmpCmpGt, Some((Jmp::Gt, false))),
    (Op::ScmpCmpLe, Some((Jmp::Gt, true))),
    (Op::ScmpCmpLt, Some((Jmp::Ge, true))),
    (Op::ScmpCmpMaskedEq, None),
    (Op::ScmpCmpNe, Some((Jmp::Eq, true))),
];

/// What a syscall of an ABI the filter does not cover gets: libseccomp's default "bad arch"
/// action, SCMP_ACT_KILL (the thread), which runc keeps.
pub const RET_BADARCH: u32 = RET_KILL_THREAD;
const RET_ENOSYS: u32 = RET_ERRNO | libc::ENOSYS as u32;

/// Syscalls the runtime itself makes between loading the filter and handing the listener fd
/// to its parent; sending them to a listener nobody holds yet would hang the init forever.
const NOTIFY_FORBIDDEN: [&str; 2] = ["write", "sendmsg"];

pub struct Program {
    pub insns: Vec<Insn>,
    /// Some rule uses SCMP_ACT_NOTIFY: the filter is loaded with a listener.
    pub notify: bool,
}

/// One argument comparison, values as written in the config.
#[derive(Clone, Copy)]
struct Cmp {
    index: u8,
    op: Op,
    value: u64,
    value_two: u64,
}

/// A rule matches when all of its comparisons hold (none: always).
struct Rule {
    ret: u32,
    conds: std::ops::Range<usize>,
}

/// What a syscall number leads to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ret(u32),
    /// Conditional rules tried in config order, `cands[start..end]` naming them, comparing
    /// 64-bit arguments if `wide`; the default action when none matches.
    Rules {
        start: u32,
        end: u32,
        wide: bool,
    },
}

struct Rules {
    rules: Vec<Rule>,
    cmps: Vec<Cmp>,
    /// Per ABI (indexed like `Arch::ALL`): (syscall number, rule index), config order.
    entries: [Vec<(u32, u32)>; 5],
    /// Per ABI: the largest syscall number the config names, whatever the action (for the
    /// -ENOSYS rule below).
    max: [Option<u32>; 5],
    notify: bool,
}

fn slot(a: Arch) -> usize {
    a.slot()
}

pub fn compile(s: &LinuxSeccomp) -> Result<Program> {
    let native = arch::NATIVE.ok_or_else(|| {
        config(
            "linux.seccomp",
            "seccomp filters are not supported on this host architecture",
        )
    })?;
    let default = default_ret(s)?;
    let (covered, listed) = abis(s, native);
    let r = collect_rules(s, default, &covered)?;

    // runc answers -ENOSYS (instead of the default action) for syscalls newer than every
    // syscall the profile names, so that libc falls back to older calls (clone3 → clone)
    // rather than failing with EPERM. Not when the default already lets syscalls through.
    let enosys = !matches!(
        s.default_action(),
        Act::ScmpActAllow | Act::ScmpActLog | Act::ScmpActTrace
    );
    let stub_max = |a: Arch| -> Option<u32> {
        let i = slot(a);
        if enosys && listed[i] {
            r.max[i]
        } else {
            None
        }
    };

    let mut e = Emitter {
        b: Builder::with_capacity(256),
        rets: Vec::new(),
        r: &r,
        cands: Vec::new(),
    };
    let mut sections: Vec<(u32, Label)> = Vec::new();
    // Emitted last-first: the native section comes first in the program.
    let order = match native {
        Arch::Aarch64 => [Arch::Arm, Arch::Aarch64],
        _ => [Arch::X86, Arch::X86_64],
    };
    for a in order {
        if !covered[slot(a)] {
            continue;
        }
        e.cands.clear();
        let segs = segments(
            &r,
            &mut e.cands,
            a,
            covered[slot(Arch::X32)],
            default,
            &stub_max,
        );
        let root = e.subtree(&segs, default);
        let entry = e.b.load(bpf::OFF_NR, root);
        sections.push((a.audit(), entry));
    }
    let mut next = e.b.ret(RET_BADARCH);
    for (audit, entry) in &sections {
        next = e.b.jump(Jmp::Eq, *audit, *entry, next);
    }
    e.b.load(bpf::OFF_ARCH, next);

    let insns = e.b.finish();
    if insns.len() > bpf::MAX_INSNS {
        return Err(config(
            "linux.seccomp",
            format!(
                "the filter compiles to {} BPF instructions, more than the kernel's limit of {}",
                insns.len(),
                bpf::MAX_INSNS
            ),
        ));
    }
    Ok(Program {
        insns,
        notify: r.notify,
    })
}

/// The SECCOMP_RET_* value of an action. `errno_ret` is allowed only where the kernel has a
/// place for it (runtime-spec: "When the action doesn't support an errno, the runtime MUST
/// print an error and fail").
fn ret_of(a: Act, errno_ret: Option<u32>, errno_field: &str) -> Result<u32> {
    if let Some(e) = errno_ret {
        if !matches!(a, Act::ScmpActErrno | Act::ScmpActTrace) {
            return Err(config(
                errno_field,
                format!(
                    "{a} does not return an errno; only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take one"
                ),
            ));
        }
        if e > 0xffff {
            return Err(config(
                errno_field,
                format!("{e} does not fit in the 16 bits seccomp returns"),
            ));
        }
    }
    let data = errno_ret.unwrap_or(libc::EPERM as u32);
    let Some(&(_, ret)) = ACTIONS.iter().find(|(x, _)| *x == a) else {
        return Err(config(errno_field, format!("action {a} is not supported")));
    };
    Ok(match a {
        Act::ScmpActErrno | Act::ScmpActTrace => ret | data,
        _ => ret,
    })
}

/// The default action's return value; SCMP_ACT_NOTIFY cannot be it.
fn default_ret(s: &LinuxSeccomp) -> Result<u32> {
    if s.default_action() == Act::ScmpActNotify {
        return Err(config(
            "linux.seccomp.defaultAction",
            "SCMP_ACT_NOTIFY cannot be the default action: the runtime's own last syscalls \
             would wait for a listener that does not have the fd yet",
        ));
    }
    ret_of(
        s.default_action(),
        s.default_errno_ret(),
        "linux.seccomp.defaultErrnoRet",
    )
}

/// (covered, listed) per ABI slot. The native ABI is always covered (libseccomp's filter
/// always has it); the listed ones are added, and only they get the -ENOSYS rule, as in runc.
fn abis(s: &LinuxSeccomp, native: Arch) -> ([bool; 5], [bool; 5]) {
    let mut covered = [false; 5];
    let mut listed = [false; 5];
    covered[slot(native)] = true;
    for a in s.architectures().iter().flatten() {
        if let Some(a) = Arch::from_oci(*a) {
            covered[slot(a)] = true;
            listed[slot(a)] = true;
        }
    }
    (covered, listed)
}

/// One ABI's syscall-number space as segments of outcomes: on x86_64 the native numbers, then
/// x32's (its own section when covered, a foreign ABI otherwise).
fn segments(
    r: &Rules,
    cands: &mut Vec<u32>,
    a: Arch,
    x32: bool,
    default: u32,
    stub_max: &dyn Fn(Arch) -> Option<u32>,
) -> Vec<(u32, Outcome)> {
    let mut segs: Vec<(u32, Outcome)> = Vec::new();
    let mut groups = |a: Arch| group(r, a, cands);
    if a != Arch::X86_64 {
        add_domain(&mut segs, 0, u32::MAX, &groups(a), default, stub_max(a));
        return segs;
    }
    let native = groups(Arch::X86_64);
    add_domain(
        &mut segs,
        0,
        X32_SYSCALL_BIT - 1,
        &native,
        default,
        stub_max(a),
    );
    if x32 {
        let g = groups(Arch::X32);
        add_domain(
            &mut segs,
            X32_SYSCALL_BIT,
            u32::MAX,
            &g,
            default,
            stub_max(Arch::X32),
        );
    } else {
        // An x32 syscall in a filter without x32 is a foreign ABI; -1 (what a tracer uses
        // to skip a syscall) is not.
        push(&mut segs, X32_SYSCALL_BIT, Outcome::Ret(RET_BADARCH));
        push(&mut segs, u32::MAX, Outcome::Ret(default));
    }
    segs
}

/// Check every `syscalls[]` entry and turn it into rules, with each name resolved on each
/// covered ABI. Names no ABI knows, or not on a given ABI, are skipped: runc (through
/// libseccomp) ignores them so that one profile serves many kernels.
fn collect_rules(s: &LinuxSeccomp, default: u32, covered: &[bool; 5]) -> Result<Rules> {
    let mut r = Rules {
        rules: Vec::new(),
        cmps: Vec::new(),
        entries: Default::default(),
        max: [None; 5],
        notify: false,
    };
    let x86 = covered[slot(Arch::X86)];
    for (i, sc) in s.syscalls().iter().flatten().enumerate() {
        let field = |rest: &str| format!("linux.seccomp.syscalls[{i}]{rest}");
        let ret = ret_of(sc.action(), sc.errno_ret(), &field(".errnoRet"))?;
        if sc.names().is_empty() {
            return Err(config(field(".names"), "must name at least one syscall"));
        }
        let args = sc.args().as_deref().unwrap_or_default();
        let counts = count_args(args, &field)?;
        if ret == RET_USER_NOTIF {
            r.notify = true;
            check_notify_names(sc.names(), &field)?;
        }
        // A rule whose action is the default one changes nothing; runc drops it (libseccomp
        // refuses it), but its names still count for the -ENOSYS rule.
        let first = r.rules.len() as u32;
        if ret != default {
            push_rules(&mut r, args, &counts, ret);
        }
        let last = r.rules.len() as u32;
        for (j, name) in sc.names().iter().enumerate() {
            if name.is_empty() {
                return Err(config(field(&format!(".names[{j}]")), "empty syscall name"));
            }
            if let Some(row) = arch::lookup(name) {
                for (k, a) in Arch::ALL.iter().enumerate() {
                    if !covered[k] {
                        continue;
                    }
                    if let Some(nr) = arch::number(row, *a) {
                        r.max[k] = Some(r.max[k].map_or(nr, |m| m.max(nr)));
                        r.entries[k].extend((first..last).map(|rule| (nr, rule)));
                    }
                }
            }
            if x86 && first < last && args.is_empty() {
                add_i386_multiplexed(&mut r, name, ret);
            }
        }
    }
    Ok(r)
}

/// How often each argument index is compared; an index past 5 is refused.
fn count_args(args: &[LinuxSeccompArg], field: &dyn Fn(&str) -> String) -> Result<[u8; 6]> {
    let mut counts = [0u8; 6];
    for (j, a) in args.iter().enumerate() {
        if a.index() > 5 {
            return Err(config(
                field(&format!(".args[{j}].index")),
                format!(
                    "{} is not an argument index: syscalls have arguments 0..5",
                    a.index()
                ),
            ));
        }
        counts[a.index()] += 1;
    }
    Ok(counts)
}

fn check_notify_names(names: &[String], field: &dyn Fn(&str) -> String) -> Result<()> {
    for (j, n) in names.iter().enumerate() {
        if NOTIFY_FORBIDDEN.contains(&n.as_str()) {
            return Err(config(
                field(&format!(".names[{j}]")),
                format!(
                    "SCMP_ACT_NOTIFY cannot be used for {n:?}: the runtime needs it to \
                     hand the listener fd over before any agent can answer"
                ),
            ));
        }
    }
    Ok(())
}

/// One entry's comparisons as rules: all ANDed in one rule, unless an argument repeats.
fn push_rules(r: &mut Rules, args: &[LinuxSeccompArg], counts: &[u8; 6], ret: u32) {
    let cmp = |a: &LinuxSeccompArg| Cmp {
        index: a.index() as u8,
        op: a.op(),
        value: a.value(),
        value_two: a.value_two().unwrap_or(0),
    };
    if counts.iter().any(|c| *c > 1) {
        // runc: comparisons of one argument repeated in a rule are ORed, each one
        // becoming a rule of its own (libseccomp compares an argument once per rule).
        for a in args {
            let start = r.cmps.len();
            r.cmps.push(cmp(a));
            r.rules.push(Rule {
                ret,
                conds: start..start + 1,
            });
        }
    } else {
        let start = r.cmps.len();
        r.cmps.extend(args.iter().map(cmp));
        r.rules.push(Rule {
            ret,
            conds: start..r.cmps.len(),
        });
    }
}

/// The multiplexer form of an unconditional rule on i386 (see `arch::I386_SOCKETCALL`). A rule
/// with argument comparisons gets none: socketcall(2) passes the real arguments in memory,
/// which a seccomp filter cannot read.
fn add_i386_multiplexed(r: &mut Rules, name: &str, ret: u32) {
    let Some((nr, call)) = arch::i386_multiplexed(name) else {
        return;
    };
    let cmp = if nr == arch::I386_IPC {
        // The kernel reads the IPC version from the high 16 bits and the call from the low.
        Cmp {
            index: 0,
            op: Op::ScmpCmpMaskedEq,
            value: 0xffff,
            value_two: call.into(),
        }
    } else {
        Cmp {
            index: 0,
            op: Op::ScmpCmpEq,
            value: call.into(),
            value_two: 0,
        }
    };
    let start = r.cmps.len();
    r.cmps.push(cmp);
    r.rules.push(Rule {
        ret,
        conds: start..start + 1,
    });
    let rule = r.rules.len() as u32 - 1;
    r.entries[slot(Arch::X86)].push((nr, rule));
}

/// The rules of one ABI grouped by syscall number, ascending: an unconditional rule decides
/// alone (the first one in config order; libseccomp also lets the most general rule win),
/// otherwise the conditional rules are tried in config order, listed in `cands`.
fn group(r: &Rules, a: Arch, cands: &mut Vec<u32>) -> Vec<(u32, Outcome)> {
    let mut entries = r.entries[slot(a)].clone();
    entries.sort_unstable();
    entries.dedup();
    let mut out = Vec::new();
    let mut i = 0;
    while i < entries.len() {
        let nr = entries[i].0;
        let mut j = i;
        while j < entries.len() && entries[j].0 == nr {
            j += 1;
        }
        let same = &entries[i..j];
        let uncond = same
            .iter()
            .find(|(_, rule)| r.rules[*rule as usize].conds.is_empty());
        match uncond {
            Some((_, rule)) => out.push((nr, Outcome::Ret(r.rules[*rule as usize].ret))),
            None => {
                let start = cands.len() as u32;
                cands.extend(same.iter().map(|(_, rule)| *rule));
                let end = cands.len() as u32;
                let wide = a.args_64();
                out.push((nr, Outcome::Rules { start, end, wide }));
            }
        }
        i = j;
    }
    out
}

/// Append a run of the number space, `lo..=hi`: the grouped syscalls where named, the default
/// action between them, -ENOSYS above `stub_max`.
fn add_domain(
    segs: &mut Vec<(u32, Outcome)>,
    lo: u32,
    hi: u32,
    groups: &[(u32, Outcome)],
    default: u32,
    stub_max: Option<u32>,
) {
    let gap = |segs: &mut Vec<(u32, Outcome)>, a: u32, b: u32| match stub_max {
        Some(m) if m < b => {
            if a <= m {
                push(segs, a, Outcome::Ret(default));
            }
            push(segs, a.max(m + 1), Outcome::Ret(RET_ENOSYS));
        }
        _ => push(segs, a, Outcome::Ret(default)),
    };
    let mut next = Some(lo);
    for (nr, out) in groups {
        let Some(n) = next else { break };
        if *nr > n {
            gap(segs, n, nr - 1);
        }
        push(segs, *nr, *out);
        next = nr.checked_add(1);
    }
    if let Some(n) = next.filter(|n| *n <= hi) {
        gap(segs, n, hi);
    }
}

/// Start a segment at `start` unless it continues the previous one's action.
fn push(segs: &mut Vec<(u32, Outcome)>, start: u32, out: Outcome) {
    match segs.last() {
        Some((_, Outcome::Ret(prev))) if out == Outcome::Ret(*prev) => {}
        _ => segs.push((start, out)),
    }
}

struct Emitter<'a> {
    b: Builder,
    /// `ret` instructions already emitted, reused while in reach.
    rets: Vec<(u32, Label)>,
    r: &'a Rules,
    /// The current ABI's candidate rule lists (see `Outcome::Rules`).
    cands: Vec<u32>,
}

impl Emitter<'_> {
    fn ret(&mut self, k: u32) -> Label {
        let len = self.b.len();
        if let Some((_, l)) = self.rets.iter().find(|(v, l)| *v == k && len - l < 200) {
            return *l;
        }
        let l = self.b.ret(k);
        match self.rets.iter_mut().find(|(v, _)| *v == k) {
            Some(slot) => slot.1 = l,
            None => self.rets.push((k, l)),
        }
        l
    }

    /// A binary search over the segments' start numbers (A holds the syscall number).
    fn subtree(&mut self, segs: &[(u32, Outcome)], default: u32) -> Label {
        if segs.len() == 1 {
            return self.leaf(segs[0].1, default);
        }
        let mid = segs.len() / 2;
        let right = self.subtree(&segs[mid..], default);
        let left = self.subtree(&segs[..mid], default);
        self.b.jump(Jmp::Ge, segs[mid].0, right, left)
    }

    fn leaf(&mut self, out: Outcome, default: u32) -> Label {
        match out {
            Outcome::Ret(k) => self.ret(k),
            Outcome::Rules { start, end, wide } => {
                let mut next = self.ret(default);
                for i in (start..end).rev() {
                    let rule = &self.r.rules[self.cands[i as usize] as usize];
                    let (ret, conds) = (rule.ret, rule.conds.clone());
                    let mut entry = self.ret(ret);
                    for c in conds.rev() {
                        let c = self.r.cmps[c];
                        entry = self.cmp(&c, wide, entry, next);
                    }
                    next = entry;
                }
                next
            }
        }
    }

    /// `if <argument comparison> goto t else goto f`, entered with anything in A.
    fn cmp(&mut self, c: &Cmp, wide: bool, t: Label, f: Label) -> Label {
        let lo = bpf::off_arg_lo(c.index);
        let hi = lo + 4;
        let narrow = |v: u64| if wide { v } else { v & 0xffff_ffff };
        let (v, v2) = (narrow(c.value), narrow(c.value_two));
        let (vhi, vlo) = ((v >> 32) as u32, v as u32);
        let b = &mut self.b;
        if c.op == Op::ScmpCmpMaskedEq {
            // libseccomp's reading: (arg & mask) == (datum & mask).
            let d = v2 & v;
            let (mhi, mlo, dhi, dlo) = (vhi, vlo, (d >> 32) as u32, d as u32);
            let mut entry = t;
            if mlo != 0 {
                let j = b.jump(Jmp::Eq, dlo, entry, f);
                let a = if mlo == u32::MAX { j } else { b.and(mlo, j) };
                entry = b.load(lo, a);
            }
            if wide && mhi != 0 {
                let j = b.jump(Jmp::Eq, dhi, entry, f);
                let a = if mhi == u32::MAX { j } else { b.and(mhi, j) };
                entry = b.load(hi, a);
            }
            return entry;
        }
        // Low word: the operator's row in OPERATORS (every operator but MASKED_EQ has one).
        let (lop, lswap) = low_word_test(c.op);
        let (lt, lf) = if lswap { (f, t) } else { (t, f) };
        let j = b.jump(lop, vlo, lt, lf);
        let low = b.load(lo, j);
        if !wide {
            return low;
        }
        // High word decides unless equal; then the low word does.
        let j = match c.op {
            Op::ScmpCmpEq => b.jump(Jmp::Eq, vhi, low, f),
            Op::ScmpCmpNe => b.jump(Jmp::Eq, vhi, low, t),
            Op::ScmpCmpGt | Op::ScmpCmpGe => {
                let eq = b.jump(Jmp::Eq, vhi, low, f);
                b.jump(Jmp::Gt, vhi, t, eq)
            }
            Op::ScmpCmpLt | Op::ScmpCmpLe => {
                let eq = b.jump(Jmp::Eq, vhi, low, t);
                b.jump(Jmp::Gt, vhi, f, eq)
            }
            Op::ScmpCmpMaskedEq => unreachable!("handled above"),
        };
        b.load(hi, j)
    }
}

/// The low-word test of a comparison operator (OPERATORS); MASKED_EQ never gets here. A
/// new oci-spec operator cannot slip through unnoticed: the high-word `match` in `cmp` is
/// exhaustive and stops the build first.
fn low_word_test(op: Op) -> (Jmp, bool) {
    OPERATORS
        .iter()
        .find_map(|(o, t)| (*o == op).then_some(*t).flatten())
        .unwrap_or((Jmp::Eq, false))
}
