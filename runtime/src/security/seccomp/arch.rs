//! The syscall ABIs a filter can see on this host, and how each names its syscalls.

use super::syscalls;

/// An ABI the kernel reports in `seccomp_data.arch` (x32 shares x86_64's value and is told
/// apart by __X32_SYSCALL_BIT in the syscall number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    X86,
    X32,
    Aarch64,
    Arm,
}

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
const AUDIT_ARCH_ARM: u32 = 0x4000_0028;

pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The runtime-spec's name of each ABI; read both ways (config → ABI, `features`' list).
const SPEC_NAMES: [(oci_spec::runtime::Arch, Arch); 5] = [
    (oci_spec::runtime::Arch::ScmpArchX86, Arch::X86),
    (oci_spec::runtime::Arch::ScmpArchX86_64, Arch::X86_64),
    (oci_spec::runtime::Arch::ScmpArchX32, Arch::X32),
    (oci_spec::runtime::Arch::ScmpArchAarch64, Arch::Aarch64),
    (oci_spec::runtime::Arch::ScmpArchArm, Arch::Arm),
];

/// The ABI vsrun itself runs in: the one every container process starts in.
#[cfg(target_arch = "x86_64")]
pub const NATIVE: Option<Arch> = Some(Arch::X86_64);
#[cfg(target_arch = "aarch64")]
pub const NATIVE: Option<Arch> = Some(Arch::Aarch64);
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub const NATIVE: Option<Arch> = None;

impl Arch {
    /// `architectures[]` entry → ABI, or None for an ABI this host's kernel can never report
    /// (a filter section for it would be dead code, so it is left out).
    pub fn from_oci(a: oci_spec::runtime::Arch) -> Option<Arch> {
        if a == oci_spec::runtime::Arch::ScmpArchNative {
            return NATIVE;
        }
        let (_, arch) = SPEC_NAMES.iter().find(|(name, _)| *name == a)?;
        NATIVE
            .filter(|n| n.family() == arch.family())
            .map(|_| *arch)
    }

    /// The `architectures[]` names a filter on this host can use (`vsrun features`).
    pub fn supported() -> impl Iterator<Item = oci_spec::runtime::Arch> {
        SPEC_NAMES
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| Arch::from_oci(*name).is_some())
    }

    fn family(self) -> u8 {
        match self {
            Arch::X86_64 | Arch::X86 | Arch::X32 => 0,
            Arch::Aarch64 | Arch::Arm => 1,
        }
    }

    pub fn audit(self) -> u32 {
        match self {
            Arch::X86_64 | Arch::X32 => AUDIT_ARCH_X86_64,
            Arch::X86 => AUDIT_ARCH_I386,
            Arch::Aarch64 => AUDIT_ARCH_AARCH64,
            Arch::Arm => AUDIT_ARCH_ARM,
        }
    }

    /// Whether arguments are 64 bits wide. For the 32-bit ABIs (x32 included, as libseccomp
    /// treats it) only the low word of an argument and of the compared value count.
    pub fn args_64(self) -> bool {
        matches!(self, Arch::X86_64 | Arch::Aarch64)
    }

    fn column(self) -> usize {
        match self {
            Arch::X86_64 => syscalls::X86_64,
            Arch::X86 => syscalls::X86,
            Arch::X32 => syscalls::X32,
            Arch::Aarch64 => syscalls::AARCH64,
            Arch::Arm => syscalls::ARM,
        }
    }

    /// Every ABI vsrun knows; `slot` is the position in this list.
    pub const ALL: [Arch; 5] = [Arch::X86_64, Arch::X32, Arch::X86, Arch::Aarch64, Arch::Arm];

    pub fn slot(self) -> usize {
        match self {
            Arch::X86_64 => 0,
            Arch::X32 => 1,
            Arch::X86 => 2,
            Arch::Aarch64 => 3,
            Arch::Arm => 4,
        }
    }
}

/// The numbers of a syscall name on every ABI, or None if no ABI knows the name.
pub fn lookup(name: &str) -> Option<&'static [i32; 5]> {
    syscalls::TABLE
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .ok()
        .map(|i| &syscalls::TABLE[i].1)
}

/// The number of a looked-up syscall on one ABI.
pub fn number(row: &[i32; 5], arch: Arch) -> Option<u32> {
    let n = row[arch.column()];
    (n >= 0).then_some(n as u32)
}

/// i386 reaches the socket and SysV IPC calls through two multiplexers as well as (since
/// Linux 4.3 and 5.1) directly; a rule on `socket` must also catch `socketcall(SYS_SOCKET,
/// ..)`, as libseccomp makes it do. The call number is the multiplexer's first argument.
pub const I386_SOCKETCALL: u32 = 102;
pub const I386_IPC: u32 = 117;

/// (name, multiplexer, call number), sorted by name.
const I386_MULTIPLEXED: [(&str, u32, u32); 32] = [
    ("accept", I386_SOCKETCALL, 5),
    ("accept4", I386_SOCKETCALL, 18),
    ("bind", I386_SOCKETCALL, 2),
    ("connect", I386_SOCKETCALL, 3),
    ("getpeername", I386_SOCKETCALL, 7),
    ("getsockname", I386_SOCKETCALL, 6),
    ("getsockopt", I386_SOCKETCALL, 15),
    ("listen", I386_SOCKETCALL, 4),
    ("msgctl", I386_IPC, 14),
    ("msgget", I386_IPC, 13),
    ("msgrcv", I386_IPC, 12),
    ("msgsnd", I386_IPC, 11),
    ("recv", I386_SOCKETCALL, 10),
    ("recvfrom", I386_SOCKETCALL, 12),
    ("recvmmsg", I386_SOCKETCALL, 19),
    ("recvmsg", I386_SOCKETCALL, 17),
    ("semctl", I386_IPC, 3),
    ("semget", I386_IPC, 2),
    ("semop", I386_IPC, 1),
    ("semtimedop", I386_IPC, 4),
    ("send", I386_SOCKETCALL, 9),
    ("sendmmsg", I386_SOCKETCALL, 20),
    ("sendmsg", I386_SOCKETCALL, 16),
    ("sendto", I386_SOCKETCALL, 11),
    ("setsockopt", I386_SOCKETCALL, 14),
    ("shmat", I386_IPC, 21),
    ("shmctl", I386_IPC, 24),
    ("shmdt", I386_IPC, 22),
    ("shmget", I386_IPC, 23),
    ("shutdown", I386_SOCKETCALL, 13),
    ("socket", I386_SOCKETCALL, 1),
    ("socketpair", I386_SOCKETCALL, 8),
];

/// The i386 multiplexer (socketcall or ipc) and call number that also reach `name`.
pub fn i386_multiplexed(name: &str) -> Option<(u32, u32)> {
    I386_MULTIPLEXED
        .binary_search_by(|(n, _, _)| (*n).cmp(name))
        .ok()
        .map(|i| (I386_MULTIPLEXED[i].1, I386_MULTIPLEXED[i].2))
}
