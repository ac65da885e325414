//! A typed builder for the few eBPF instructions vsrun's cgroup programs need (bound IP's
//! sock_addr and ingress programs, the v2 device filter): moves, context and stack
//! loads/stores, 32-bit AND and shift, 32-bit compares against constants, helper calls and
//! exit, with named labels.
//!
//! Why hand-assembled and not aya or libbpf-rs: both need the BPF programs compiled by a second
//! toolchain at build time (bpf-linker on nightly Rust, or clang for C), and vsrun's programs are
//! small straight-line code whose only variable parts are the container's addresses. The
//! kernel's verifier checks every program at load time anyway; this builder only makes sure the
//! encoding is right (registers typed, jumps by label, no fall-through into data).

/// The eleven registers. R0 return value, R1–R5 helper arguments (clobbered by calls), R6–R9
/// callee-saved, R10 the read-only frame pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
#[allow(dead_code)] // the whole register file, used or not
pub enum Reg {
    R0 = 0,
    R1,
    R2,
    R3,
    R4,
    R5,
    R6,
    R7,
    R8,
    R9,
    R10,
}

/// Width of a memory access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(dead_code)] // every access width
pub enum Size {
    B,
    H,
    W,
    DW,
}

impl Size {
    fn bits(self) -> u8 {
        match self {
            Size::W => 0x00,
            Size::H => 0x08,
            Size::B => 0x10,
            Size::DW => 0x18,
        }
    }
}

/// Kernel helper functions (stable numbers from the uapi `__BPF_FUNC_MAPPER`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Helper {
    /// `long bpf_bind(ctx, struct sockaddr *addr, int len)`: connect4/6 hooks only.
    Bind = 64,
    /// `int bpf_set_retval(int retval)`: the errno a denying cgroup program returns (5.18+).
    SetRetval = 187,
}

pub use crate::syscall::bpf::Insn;

// Instruction classes and fields (uapi linux/bpf_common.h, linux/bpf.h).
const LDX: u8 = 0x01;
const ST: u8 = 0x02;
const STX: u8 = 0x03;
const JMP: u8 = 0x05;
const JMP32: u8 = 0x06;
const ALU: u8 = 0x04;
const ALU64: u8 = 0x07;
const MEM: u8 = 0x60;
const K: u8 = 0x00;
const X: u8 = 0x08;
const ADD: u8 = 0x00;
const AND: u8 = 0x50;
const RSH: u8 = 0x70;
const MOV: u8 = 0xb0;
const JA: u8 = 0x00;
const JEQ: u8 = 0x10;
const JNE: u8 = 0x50;
const JGT: u8 = 0x20;
const CALL: u8 = 0x80;
const EXIT: u8 = 0x90;

fn regs(dst: Reg, src: Reg) -> u8 {
    if cfg!(target_endian = "little") {
        (dst as u8) | ((src as u8) << 4)
    } else {
        ((dst as u8) << 4) | (src as u8)
    }
}

/// A jump target; place it with `Asm::bind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(usize);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsmError {
    /// A jump to a label that was never placed.
    Unbound(usize),
    /// A label placed twice.
    Rebound(usize),
    /// The last instruction can fall through past the end of the program.
    NoExit,
    TooLong(usize),
}

impl std::fmt::Display for AsmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AsmError::Unbound(l) => write!(f, "BPF label {l} used but never placed"),
            AsmError::Rebound(l) => write!(f, "BPF label {l} placed twice"),
            AsmError::NoExit => write!(f, "BPF program does not end in exit or jump"),
            AsmError::TooLong(n) => write!(f, "BPF program too long ({n} instructions)"),
        }
    }
}

#[derive(Default)]
pub struct Asm {
    insns: Vec<Insn>,
    labels: Vec<Option<usize>>,
    /// (instruction index, label) of every jump to patch in `finish`.
    fixups: Vec<(usize, Label)>,
    error: Option<AsmError>,
}

impl Asm {
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> &mut Self {
        self.insns.push(Insn {
            code,
            regs: regs(dst, src),
            off,
            imm,
        });
        self
    }

    pub fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// Place `l` at the next instruction. Placing a label twice is reported by `finish`.
    pub fn bind(&mut self, l: Label) -> &mut Self {
        match self.labels[l.0] {
            Some(_) => self.error = self.error.or(Some(AsmError::Rebound(l.0))),
            None => self.labels[l.0] = Some(self.insns.len()),
        }
        self
    }

    /// Whether any jump targets `l` (the verifier rejects unreachable code, so optional tails
    /// are emitted only when used).
    pub fn is_used(&self, l: Label) -> bool {
        self.fixups.iter().any(|(_, x)| *x == l)
    }

    /// dst = imm (64-bit, sign-extended).
    pub fn mov64_imm(&mut self, dst: Reg, imm: i32) -> &mut Self {
        self.push(ALU64 | MOV | K, dst, Reg::R0, 0, imm)
    }

    /// dst = imm as u32, upper half zeroed: the form for 32-bit context fields.
    pub fn mov32_imm(&mut self, dst: Reg, imm: u32) -> &mut Self {
        self.push(ALU | MOV | K, dst, Reg::R0, 0, imm as i32)
    }

    pub fn mov64_reg(&mut self, dst: Reg, src: Reg) -> &mut Self {
        self.push(ALU64 | MOV | X, dst, src, 0, 0)
    }

    pub fn add64_imm(&mut self, dst: Reg, imm: i32) -> &mut Self {
        self.push(ALU64 | ADD | K, dst, Reg::R0, 0, imm)
    }

    /// dst &= imm (32-bit, upper half zeroed).
    pub fn and32_imm(&mut self, dst: Reg, imm: u32) -> &mut Self {
        self.push(ALU | AND | K, dst, Reg::R0, 0, imm as i32)
    }

    /// dst >>= imm (32-bit, logical, upper half zeroed).
    pub fn rsh32_imm(&mut self, dst: Reg, imm: u32) -> &mut Self {
        self.push(ALU | RSH | K, dst, Reg::R0, 0, imm as i32)
    }

    /// dst = *(size *)(src + off)
    pub fn ldx(&mut self, size: Size, dst: Reg, src: Reg, off: i16) -> &mut Self {
        self.push(LDX | MEM | size.bits(), dst, src, off, 0)
    }

    /// *(size *)(dst + off) = src
    pub fn stx(&mut self, size: Size, dst: Reg, off: i16, src: Reg) -> &mut Self {
        self.push(STX | MEM | size.bits(), dst, src, off, 0)
    }

    /// *(size *)(dst + off) = imm. The verifier allows this on the stack, not on the context.
    pub fn st(&mut self, size: Size, dst: Reg, off: i16, imm: i32) -> &mut Self {
        self.push(ST | MEM | size.bits(), dst, Reg::R0, off, imm)
    }

    fn jump(&mut self, code: u8, dst: Reg, imm: i32, to: Label) -> &mut Self {
        self.fixups.push((self.insns.len(), to));
        self.push(code, dst, Reg::R0, 0, imm)
    }

    /// if (u32)dst == imm goto to. 32-bit compares: a 64-bit JEQ would sign-extend the
    /// immediate, and addresses with the top bit set would never match a zero-extended load.
    pub fn jeq32_imm(&mut self, dst: Reg, imm: u32, to: Label) -> &mut Self {
        self.jump(JMP32 | JEQ | K, dst, imm as i32, to)
    }

    /// if (u32)dst != imm goto to.
    pub fn jne32_imm(&mut self, dst: Reg, imm: u32, to: Label) -> &mut Self {
        self.jump(JMP32 | JNE | K, dst, imm as i32, to)
    }

    /// if dst != imm (64-bit) goto to.
    pub fn jne64_imm(&mut self, dst: Reg, imm: i32, to: Label) -> &mut Self {
        self.jump(JMP | JNE | K, dst, imm, to)
    }

    /// if dst > src (unsigned 64-bit) goto to: the packet bounds check the verifier wants.
    pub fn jgt64_reg(&mut self, dst: Reg, src: Reg, to: Label) -> &mut Self {
        self.fixups.push((self.insns.len(), to));
        self.push(JMP | JGT | X, dst, src, 0, 0)
    }

    pub fn ja(&mut self, to: Label) -> &mut Self {
        self.jump(JMP | JA, Reg::R0, 0, to)
    }

    pub fn call(&mut self, h: Helper) -> &mut Self {
        self.push(JMP | CALL, Reg::R0, Reg::R0, 0, h as i32)
    }

    pub fn exit(&mut self) -> &mut Self {
        self.push(JMP | EXIT, Reg::R0, Reg::R0, 0, 0)
    }

    /// Resolve the labels, for a program of at most BPF_MAXINSNS (4096) instructions.
    pub fn finish(self) -> Result<Vec<Insn>, AsmError> {
        self.finish_within(4096)
    }

    /// Resolve the labels, for a program of at most `max` instructions (a privileged load
    /// may have up to BPF_COMPLEXITY_LIMIT_INSNS, 1,000,000). Jump offsets count from the
    /// instruction after the jump.
    pub fn finish_within(mut self, max: usize) -> Result<Vec<Insn>, AsmError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let n = self.insns.len();
        if n > max {
            return Err(AsmError::TooLong(n));
        }
        match self.insns.last() {
            Some(i) if i.code == JMP | EXIT || i.code == JMP | JA => {}
            _ => return Err(AsmError::NoExit),
        }
        for (at, l) in std::mem::take(&mut self.fixups) {
            let target = self.labels[l.0].ok_or(AsmError::Unbound(l.0))?;
            if target >= n {
                return Err(AsmError::NoExit);
            }
            self.insns[at].off = (target as i64 - at as i64 - 1) as i16;
        }
        Ok(self.insns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(p: &[Insn]) -> Vec<u8> {
        p.iter()
            .flat_map(|i| {
                let mut b = vec![i.code, i.regs];
                b.extend_from_slice(&i.off.to_le_bytes());
                b.extend_from_slice(&i.imm.to_le_bytes());
                b
            })
            .collect()
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn encodes_like_the_kernel_macros() {
        let mut a = Asm::new();
        let done = a.label();
        a.mov64_reg(Reg::R6, Reg::R1) // BPF_MOV64_REG(R6, R1)
            .ldx(Size::W, Reg::R7, Reg::R6, 4) // BPF_LDX_MEM(W, R7, R6, 4)
            .jeq32_imm(Reg::R7, 0x0100_007f, done) // BPF_JMP32_IMM(JEQ, R7, ..)
            .st(Size::H, Reg::R10, -16, 2) // BPF_ST_MEM(H, R10, -16, 2)
            .call(Helper::Bind);
        a.bind(done);
        a.mov64_imm(Reg::R0, 1).exit();
        let p = a.finish().unwrap();
        assert_eq!(
            bytes(&p),
            [
                0xbf, 0x16, 0, 0, 0, 0, 0, 0, //
                0x61, 0x67, 4, 0, 0, 0, 0, 0, //
                0x16, 0x07, 2, 0, 0x7f, 0, 0, 1, //
                0x6a, 0x0a, 0xf0, 0xff, 2, 0, 0, 0, //
                0x85, 0x00, 0, 0, 64, 0, 0, 0, //
                0xb7, 0x00, 0, 0, 1, 0, 0, 0, //
                0x95, 0, 0, 0, 0, 0, 0, 0,
            ]
        );
    }

    #[test]
    fn backward_and_forward_labels_resolve() {
        let mut a = Asm::new();
        let top = a.label();
        let end = a.label();
        a.bind(top);
        a.jne32_imm(Reg::R0, 1, end).ja(top);
        a.bind(end);
        a.exit();
        let p = a.finish().unwrap();
        assert_eq!(p[0].off, 1);
        assert_eq!(p[1].off, -2);
    }

    #[test]
    fn unplaced_label_and_missing_exit_are_errors() {
        let mut a = Asm::new();
        let l = a.label();
        a.ja(l).exit();
        assert_eq!(a.finish(), Err(AsmError::Unbound(0)));
        let mut a = Asm::new();
        a.mov64_imm(Reg::R0, 1);
        assert_eq!(a.finish(), Err(AsmError::NoExit));
        let mut a = Asm::new();
        let l = a.label();
        a.bind(l).bind(l).exit();
        assert_eq!(a.finish(), Err(AsmError::Rebound(0)));
    }
}
