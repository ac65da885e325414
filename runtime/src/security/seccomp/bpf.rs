//! A classic-BPF emitter for seccomp programs, built back to front.
//!
//! Every jump in a seccomp program goes forward, so emitting the program from its last
//! instruction to its first makes every target known (and its distance fixed) at the moment a
//! jump is emitted. A conditional jump has 8-bit offsets; when a target is farther than 255
//! instructions the emitter puts a `ja` (32-bit offset) trampoline right after the jump. No
//! second pass, no label patching.

/// One `struct sock_filter`; defined beside the seccomp(2) wrapper that hands it to the kernel.
pub use crate::syscall::seccomp::SockFilter as Insn;

// Opcodes (linux/bpf_common.h): BPF_LD | BPF_W | BPF_ABS, BPF_ALU | BPF_AND | BPF_K, ...
const LD_W_ABS: u16 = 0x20;
const ALU_AND_K: u16 = 0x04 | 0x50;
const JMP_JA: u16 = 0x05;
const RET_K: u16 = 0x06;

/// A conditional jump `A <op> k` (unsigned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jmp {
    Eq = 0x15,
    Gt = 0x25,
    Ge = 0x35,
}

/// The kernel's limit on a filter's length (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

/// Offsets into `struct seccomp_data`.
pub const OFF_NR: u32 = 0;
pub const OFF_ARCH: u32 = 4;
/// Low (little-endian) word of argument `i`; the high word is 4 bytes further.
pub fn off_arg_lo(i: u8) -> u32 {
    16 + 8 * u32::from(i)
}

/// An emitted instruction, named by its index from the end of the program.
pub type Label = usize;

/// The program under construction, last instruction first.
#[derive(Default)]
pub struct Builder {
    rev: Vec<Insn>,
}

impl Builder {
    pub fn with_capacity(n: usize) -> Builder {
        Builder {
            rev: Vec::with_capacity(n),
        }
    }

    pub fn len(&self) -> usize {
        self.rev.len()
    }

    fn push(&mut self, i: Insn) -> Label {
        self.rev.push(i);
        self.rev.len() - 1
    }

    /// The label the next emitted instruction falls through to.
    fn last(&self) -> Option<Label> {
        self.rev.len().checked_sub(1)
    }

    /// Distance of a jump placed at the next free slot to `target`.
    fn dist(&self, target: Label) -> usize {
        self.rev.len() - target - 1
    }

    pub fn ret(&mut self, k: u32) -> Label {
        self.push(Insn {
            code: RET_K,
            jt: 0,
            jf: 0,
            k,
        })
    }

    /// Make the next emitted instruction continue at `next`: free when `next` is the
    /// instruction emitted last, a `ja` otherwise.
    fn flow_to(&mut self, next: Label) {
        if self.last() != Some(next) {
            self.ja(next);
        }
    }

    pub fn ja(&mut self, target: Label) -> Label {
        let k = self.dist(target) as u32;
        self.push(Insn {
            code: JMP_JA,
            jt: 0,
            jf: 0,
            k,
        })
    }

    /// `A = seccomp_data[off]`, then continue at `next`.
    pub fn load(&mut self, off: u32, next: Label) -> Label {
        self.flow_to(next);
        self.push(Insn {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: off,
        })
    }

    /// `A &= k`, then continue at `next`.
    pub fn and(&mut self, k: u32, next: Label) -> Label {
        self.flow_to(next);
        self.push(Insn {
            code: ALU_AND_K,
            jt: 0,
            jf: 0,
            k,
        })
    }

    /// `if A <op> k goto t else goto f`, with trampolines for targets out of 8-bit reach.
    pub fn jump(&mut self, op: Jmp, k: u32, mut t: Label, mut f: Label) -> Label {
        if self.dist(t) > 255 {
            t = self.ja(t);
        }
        if self.dist(f) > 255 {
            f = self.ja(f);
        }
        // A trampoline for `f` moved `t` one further away; it is a trampoline itself or was
        // within reach by a margin the check above did not see, so check once more.
        if self.dist(t) > 255 {
            t = self.ja(t);
        }
        let (jt, jf) = (self.dist(t) as u8, self.dist(f) as u8);
        self.push(Insn {
            code: op as u16,
            jt,
            jf,
            k,
        })
    }

    /// The program in execution order.
    pub fn finish(mut self) -> Vec<Insn> {
        self.rev.reverse();
        self.rev
    }
}

/// A userspace run of a seccomp program over one `seccomp_data`, for tests and measurements:
/// the kernel's checker accepts exactly the instructions `Builder` emits.
#[cfg(all(test, target_arch = "x86_64"))]
pub fn run(prog: &[Insn], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    let mut a: u32 = 0;
    let mut pc = 0usize;
    loop {
        let i = prog[pc];
        match i.code {
            LD_W_ABS => {
                let o = i.k as usize;
                a = u32::from_le_bytes([data[o], data[o + 1], data[o + 2], data[o + 3]]);
            }
            ALU_AND_K => a &= i.k,
            JMP_JA => pc += i.k as usize,
            RET_K => return i.k,
            c => {
                let hit = match c {
                    0x15 => a == i.k,
                    0x25 => a > i.k,
                    0x35 => a >= i.k,
                    _ => panic!("unexpected opcode {c:#x} at {pc}"),
                };
                pc += usize::from(if hit { i.jt } else { i.jf });
            }
        }
        pc += 1;
    }
}
