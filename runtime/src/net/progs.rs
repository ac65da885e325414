//! The programs of a bound context — eight sock_addr hooks and an ingress filter — generated
//! for its address list. All of them are straight-line compares against constants: the
//! addresses are baked in, so no BPF map (and no map lifetime to manage) is needed.
//!
//! Semantics (issue 7, "Bound IP"): bind to a listed address passes, to the wildcard is rewritten
//! to the first listed address of the family, anything else is EPERM. connect pins the source
//! with bpf_bind (or checks an explicit earlier bind) and rewrites 127.0.0.1/::1 (and the
//! "this host" forms 0.0.0.0/::) to the context's own first address. UDP sendmsg does the same
//! through msg_src_ip4/6; recvmsg shows replies from that first address as coming from
//! localhost again, so a resolver that sent to 127.0.0.1 accepts the answer.
//!
//! The sock_addr hooks cannot see every way a socket gets an address: listen(2) or an
//! unconnected UDP send on a never-bound socket auto-binds it to the wildcard, where it would
//! receive what is sent to the host's addresses. A cgroup_skb ingress filter closes that: a
//! packet delivered to a context's socket must be for a listed address (or multicast or
//! broadcast). There is no egress filter: it would only matter for raw sockets, which need
//! CAP_NET_RAW, and with that AF_PACKET bypasses any cgroup filter anyway — a bound context
//! should not hold CAP_NET_RAW.

use super::cgroup2::Hook;
use crate::bpf::asm::{Asm, AsmError, Helper, Insn, Label, Reg, Size};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The context's addresses, each family in annotation order (the first is the default).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Addrs {
    pub v4: Vec<Ipv4Addr>,
    pub v6: Vec<Ipv6Addr>,
}

// struct bpf_sock_addr offsets (uapi).
const USER_IP4: i16 = 4;
const USER_IP6: i16 = 8;
const FAMILY: i16 = 28;
const MSG_SRC_IP4: i16 = 40;
const MSG_SRC_IP6: i16 = 44;
const SK: i16 = 64;
// struct __sk_buff: protocol (the ethertype, network order, in a u32), packet bounds.
const SKB_PROTOCOL: i16 = 16;
const SKB_DATA: i16 = 76;
const SKB_DATA_END: i16 = 80;
// struct bpf_sock offsets (uapi).
const SK_SRC_IP4: i16 = 24;
const SK_SRC_IP6: i16 = 28;
const SK_SRC_PORT: i16 = 44;

const AF_INET: i32 = libc::AF_INET;
const AF_INET6: i32 = libc::AF_INET6;

/// An IPv4 address as the context holds it: network byte order in a u32 read natively.
fn w4(a: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(a.octets())
}

fn w6(a: Ipv6Addr) -> [u32; 4] {
    let o = a.octets();
    [0, 1, 2, 3].map(|i| u32::from_ne_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]]))
}

/// ::ffff:a.b.c.d
fn mapped(a: Ipv4Addr) -> [u32; 4] {
    w6(a.to_ipv6_mapped())
}

const ANY6: [u32; 4] = [0; 4];
fn lo4() -> u32 {
    w4(Ipv4Addr::LOCALHOST)
}
fn lo6() -> [u32; 4] {
    w6(Ipv6Addr::LOCALHOST)
}
/// Third word of every v4-mapped address (bytes 00 00 ff ff).
fn mapped_w2() -> u32 {
    u32::from_ne_bytes([0, 0, 0xff, 0xff])
}

/// An assembler with the shared exits: allow (return 1) and deny with a chosen errno
/// (bpf_set_retval, then return 0), emitted once each at the end.
struct Gen {
    a: Asm,
    allow: Label,
    denies: BTreeMap<i32, Label>,
    deny_r0: Option<Label>,
}

impl Gen {
    fn new() -> Gen {
        let mut a = Asm::new();
        let allow = a.label();
        a.mov64_reg(Reg::R6, Reg::R1);
        Gen {
            a,
            allow,
            denies: BTreeMap::new(),
            deny_r0: None,
        }
    }

    fn deny(&mut self, errno: i32) -> Label {
        if let Some(l) = self.denies.get(&errno) {
            return *l;
        }
        let l = self.a.label();
        self.denies.insert(errno, l);
        l
    }

    /// Deny with the (negative) error bpf_bind left in R0.
    fn deny_r0(&mut self) -> Label {
        match self.deny_r0 {
            Some(l) => l,
            None => {
                let l = self.a.label();
                self.deny_r0 = Some(l);
                l
            }
        }
    }

    fn goto_allow(&mut self) {
        let l = self.allow;
        self.a.ja(l);
    }

    fn goto_deny(&mut self, errno: i32) {
        let l = self.deny(errno);
        self.a.ja(l);
    }

    fn finish(mut self) -> Result<Vec<Insn>, AsmError> {
        let a = &mut self.a;
        if a.is_used(self.allow) {
            a.bind(self.allow).mov64_imm(Reg::R0, 1).exit();
        }
        for (errno, l) in &self.denies {
            a.bind(*l)
                .mov64_imm(Reg::R1, -errno)
                .call(Helper::SetRetval)
                .mov64_imm(Reg::R0, 0)
                .exit();
        }
        if let Some(l) = self.deny_r0 {
            a.bind(l)
                .mov64_reg(Reg::R1, Reg::R0)
                .call(Helper::SetRetval)
                .mov64_imm(Reg::R0, 0)
                .exit();
        }
        self.a.finish()
    }

    /// R7 = the u32 at base+off.
    fn load(&mut self, base: Reg, off: i16) {
        self.a.ldx(Size::W, Reg::R7, base, off);
    }

    /// Jump to `to` if R7 equals any of `vals`.
    fn r7_in(&mut self, vals: &[u32], to: Label) {
        for v in vals {
            self.a.jeq32_imm(Reg::R7, *v, to);
        }
    }

    /// Jump to `to` if the 16 bytes at base+off equal `addr`.
    fn ip6_is(&mut self, base: Reg, off: i16, addr: [u32; 4], to: Label) {
        let miss = self.a.label();
        for (i, w) in addr.iter().enumerate() {
            self.a
                .ldx(Size::W, Reg::R7, base, off + 4 * i as i16)
                .jne32_imm(Reg::R7, *w, miss);
        }
        self.a.ja(to).bind(miss);
    }

    fn ip6_in(&mut self, base: Reg, off: i16, addrs: &[[u32; 4]], to: Label) {
        for a in addrs {
            self.ip6_is(base, off, *a, to);
        }
    }

    /// Jump to `to` if the address at base+off is v4-mapped (::ffff:0:0/96).
    fn is_mapped(&mut self, base: Reg, off: i16, to: Label) {
        let miss = self.a.label();
        self.a
            .ldx(Size::W, Reg::R7, base, off)
            .jne32_imm(Reg::R7, 0, miss)
            .ldx(Size::W, Reg::R7, base, off + 4)
            .jne32_imm(Reg::R7, 0, miss)
            .ldx(Size::W, Reg::R7, base, off + 8)
            .jne32_imm(Reg::R7, mapped_w2(), miss)
            .ja(to)
            .bind(miss);
    }

    /// ctx field = value (context stores must come from a register).
    fn store4(&mut self, off: i16, v: u32) {
        self.a
            .mov32_imm(Reg::R7, v)
            .stx(Size::W, Reg::R6, off, Reg::R7);
    }

    fn store6(&mut self, off: i16, v: [u32; 4]) {
        for (i, w) in v.iter().enumerate() {
            self.store4(off + 4 * i as i16, *w);
        }
    }

    /// Source pinning for an AF_INET socket: an address-bound socket must be on a listed
    /// address; an unbound one is bound to `to` (port 0: BIND_FORCE_ADDRESS_NO_PORT, the port
    /// is still picked at connect). A socket bound to the wildcard with a port (a UDP socket
    /// auto-bound by an earlier unconnected send) cannot be rebound and would get the host's
    /// route source: denied.
    fn pin4(&mut self, allowed: &[u32], to: u32) {
        let unbound = self.a.label();
        let allow = self.allow;
        let eperm = self.deny(libc::EPERM);
        let bind_err = self.deny_r0();
        self.a.ldx(Size::DW, Reg::R8, Reg::R6, SK);
        self.load(Reg::R8, SK_SRC_IP4);
        self.a.jeq32_imm(Reg::R7, 0, unbound);
        self.r7_in(allowed, allow);
        self.a.ja(eperm).bind(unbound);
        self.load(Reg::R8, SK_SRC_PORT);
        self.a
            .jne32_imm(Reg::R7, 0, eperm)
            // struct sockaddr_in at fp-16
            .st(Size::H, Reg::R10, -16, AF_INET)
            .st(Size::H, Reg::R10, -14, 0)
            .st(Size::W, Reg::R10, -12, to as i32)
            .st(Size::DW, Reg::R10, -8, 0)
            .mov64_reg(Reg::R1, Reg::R6)
            .mov64_reg(Reg::R2, Reg::R10)
            .add64_imm(Reg::R2, -16)
            .mov64_imm(Reg::R3, 16)
            .call(Helper::Bind)
            .jne64_imm(Reg::R0, 0, bind_err)
            .ja(allow);
    }

    /// Source pinning for an AF_INET6 socket (also for v4-mapped destinations).
    fn pin6(&mut self, allowed: &[[u32; 4]], to: [u32; 4]) {
        let unbound = self.a.label();
        let allow = self.allow;
        let eperm = self.deny(libc::EPERM);
        let bind_err = self.deny_r0();
        self.a.ldx(Size::DW, Reg::R8, Reg::R6, SK);
        self.ip6_is(Reg::R8, SK_SRC_IP6, ANY6, unbound);
        self.ip6_in(Reg::R8, SK_SRC_IP6, allowed, allow);
        self.a.ja(eperm).bind(unbound);
        self.load(Reg::R8, SK_SRC_PORT);
        self.a.jne32_imm(Reg::R7, 0, eperm);
        // struct sockaddr_in6 at fp-32: family, port, flowinfo, addr, scope_id (+4 padding)
        self.a
            .st(Size::H, Reg::R10, -32, AF_INET6)
            .st(Size::H, Reg::R10, -30, 0)
            .st(Size::W, Reg::R10, -28, 0);
        for (i, w) in to.iter().enumerate() {
            self.a.st(Size::W, Reg::R10, -24 + 4 * i as i16, *w as i32);
        }
        self.a
            .st(Size::DW, Reg::R10, -8, 0)
            .mov64_reg(Reg::R1, Reg::R6)
            .mov64_reg(Reg::R2, Reg::R10)
            .add64_imm(Reg::R2, -32)
            .mov64_imm(Reg::R3, 28)
            .call(Helper::Bind)
            .jne64_imm(Reg::R0, 0, bind_err)
            .ja(allow);
    }
}

pub fn generate(hook: Hook, addrs: &Addrs) -> Result<Vec<Insn>, AsmError> {
    let v4: Vec<u32> = addrs.v4.iter().copied().map(w4).collect();
    let v6: Vec<[u32; 4]> = addrs.v6.iter().copied().map(w6).collect();
    let m4: Vec<[u32; 4]> = addrs.v4.iter().copied().map(mapped).collect();
    let mut g = Gen::new();
    match hook {
        Hook::Bind4 => bind4(&mut g, &v4),
        Hook::Bind6 => bind6(&mut g, &v4, &v6, &m4),
        Hook::Connect4 => connect4(&mut g, &v4, &m4),
        Hook::Connect6 => connect6(&mut g, &v6, &m4),
        Hook::Sendmsg4 => sendmsg4(&mut g, &v4),
        Hook::Sendmsg6 => sendmsg6(&mut g, &v6),
        Hook::Recvmsg4 => recvmsg4(&mut g, &v4),
        Hook::Recvmsg6 => recvmsg6(&mut g, &v6, &m4),
        Hook::Ingress => ingress(&mut g, &v4, &v6),
    }
    g.finish()
}

fn bind4(g: &mut Gen, v4: &[u32]) {
    let wild = g.a.label();
    let allow = g.allow;
    g.load(Reg::R6, USER_IP4);
    g.a.jeq32_imm(Reg::R7, 0, wild);
    g.r7_in(v4, allow);
    g.goto_deny(libc::EPERM);
    g.a.bind(wild);
    match v4.first() {
        Some(first) => {
            g.store4(USER_IP4, *first);
            g.goto_allow();
        }
        None => g.goto_deny(libc::EADDRNOTAVAIL),
    }
}

/// `::` goes to the first IPv6 address, or — with IPv4 addresses only — to the v4-mapped form
/// of the first IPv4 address: dual-stack listeners (Go, Java, node and busybox listen on `[::]`
/// by default) then keep working and serve IPv4 on the context's address. An IPV6_V6ONLY
/// socket gets EINVAL from that bind, which is the truth: there is no IPv6 address to serve.
fn bind6(g: &mut Gen, v4: &[u32], v6: &[[u32; 4]], m4: &[[u32; 4]]) {
    let wild = g.a.label();
    let mapped_l = g.a.label();
    let mapped_wild = g.a.label();
    let allow = g.allow;
    g.ip6_is(Reg::R6, USER_IP6, ANY6, wild);
    g.is_mapped(Reg::R6, USER_IP6, mapped_l);
    g.ip6_in(Reg::R6, USER_IP6, v6, allow);
    g.goto_deny(libc::EPERM);

    g.a.bind(mapped_l);
    g.load(Reg::R6, USER_IP6 + 12);
    g.a.jeq32_imm(Reg::R7, 0, mapped_wild);
    g.r7_in(v4, allow);
    g.goto_deny(libc::EPERM);
    g.a.bind(mapped_wild);
    match m4.first() {
        Some(first) => {
            g.store6(USER_IP6, *first);
            g.goto_allow();
        }
        None => g.goto_deny(libc::EADDRNOTAVAIL),
    }

    g.a.bind(wild);
    match (v6.first(), m4.first()) {
        (Some(first), _) | (None, Some(first)) => {
            g.store6(USER_IP6, *first);
            g.goto_allow();
        }
        (None, None) => g.goto_deny(libc::EADDRNOTAVAIL),
    }
}

/// Also runs for an AF_INET address passed to connect on a dual-stack UDP socket; the socket's
/// family (ctx->family) then is AF_INET6 and the pin uses the v4-mapped form.
fn connect4(g: &mut Gen, v4: &[u32], m4: &[[u32; 4]]) {
    let Some(&first) = v4.first() else {
        g.goto_deny(libc::ENETUNREACH);
        return;
    };
    let rewrite = g.a.label();
    let pin = g.a.label();
    let pin_v6sock = g.a.label();
    g.load(Reg::R6, USER_IP4);
    g.r7_in(&[lo4(), 0], rewrite);
    g.a.ja(pin).bind(rewrite);
    g.store4(USER_IP4, first);
    g.a.bind(pin);
    g.load(Reg::R6, FAMILY);
    g.a.jeq32_imm(Reg::R7, AF_INET6 as u32, pin_v6sock);
    g.pin4(v4, first);
    g.a.bind(pin_v6sock);
    g.pin6(m4, m4[0]);
}

fn connect6(g: &mut Gen, v6: &[[u32; 4]], m4: &[[u32; 4]]) {
    let mapped_l = g.a.label();
    g.is_mapped(Reg::R6, USER_IP6, mapped_l);
    match v6.first() {
        None => g.goto_deny(libc::ENETUNREACH),
        Some(&first) => {
            let rewrite = g.a.label();
            let pin = g.a.label();
            g.ip6_in(Reg::R6, USER_IP6, &[lo6(), ANY6], rewrite);
            g.a.ja(pin).bind(rewrite);
            g.store6(USER_IP6, first);
            g.a.bind(pin);
            g.pin6(v6, first);
        }
    }
    g.a.bind(mapped_l);
    match m4.first() {
        None => g.goto_deny(libc::ENETUNREACH),
        Some(&first) => {
            let rewrite = g.a.label();
            let pin = g.a.label();
            g.load(Reg::R6, USER_IP6 + 12);
            g.r7_in(&[lo4(), 0], rewrite);
            g.a.ja(pin).bind(rewrite);
            g.store6(USER_IP6, first);
            g.a.bind(pin);
            g.pin6(m4, first);
        }
    }
}

/// Unconnected UDP sends (connected ones were pinned at connect). A source that is already a
/// listed address (the socket's bound one, or IP_PKTINFO) is kept; any other is replaced.
fn sendmsg4(g: &mut Gen, v4: &[u32]) {
    let Some(&first) = v4.first() else {
        g.goto_deny(libc::ENETUNREACH);
        return;
    };
    let rewrite = g.a.label();
    let src = g.a.label();
    let allow = g.allow;
    g.load(Reg::R6, USER_IP4);
    g.r7_in(&[lo4(), 0], rewrite);
    g.a.ja(src).bind(rewrite);
    g.store4(USER_IP4, first);
    g.a.bind(src);
    g.load(Reg::R6, MSG_SRC_IP4);
    g.r7_in(v4, allow);
    g.store4(MSG_SRC_IP4, first);
    g.goto_allow();
}

/// v4-mapped destinations never get here: udpv6_sendmsg hands them to the IPv4 path, where
/// sendmsg4 runs.
fn sendmsg6(g: &mut Gen, v6: &[[u32; 4]]) {
    let Some(&first) = v6.first() else {
        g.goto_deny(libc::ENETUNREACH);
        return;
    };
    let rewrite = g.a.label();
    let src = g.a.label();
    let allow = g.allow;
    g.ip6_in(Reg::R6, USER_IP6, &[lo6(), ANY6], rewrite);
    g.a.ja(src).bind(rewrite);
    g.store6(USER_IP6, first);
    g.a.bind(src);
    g.ip6_in(Reg::R6, MSG_SRC_IP6, v6, allow);
    g.store6(MSG_SRC_IP6, first);
    g.goto_allow();
}

/// The sender's address as recvfrom/recvmsg report it: the context's first address reads as
/// localhost (the inverse of the connect/sendmsg rewrite). recvmsg programs must return 1.
fn recvmsg4(g: &mut Gen, v4: &[u32]) {
    if let Some(&first) = v4.first() {
        let allow = g.allow;
        g.load(Reg::R6, USER_IP4);
        g.a.jne32_imm(Reg::R7, first, allow);
        g.store4(USER_IP4, lo4());
    }
    g.goto_allow();
}

fn recvmsg6(g: &mut Gen, v6: &[[u32; 4]], m4: &[[u32; 4]]) {
    let allow = g.allow;
    let mut tails = Vec::new();
    for (own, lo) in [
        (v6.first(), lo6()),
        (m4.first(), mapped(Ipv4Addr::LOCALHOST)),
    ] {
        if let Some(&own) = own {
            let l = g.a.label();
            g.ip6_is(Reg::R6, USER_IP6, own, l);
            tails.push((l, lo));
        }
    }
    g.goto_allow();
    for (l, lo) in tails {
        g.a.bind(l);
        g.store6(USER_IP6, lo);
        g.a.ja(allow);
    }
}

/// The destination of a packet for one of the context's sockets. cgroup_skb's data starts at
/// the network header; direct packet reads (bounds-checked against data_end) instead of
/// bpf_skb_load_bytes, because this runs for every packet.
fn ingress(g: &mut Gen, v4: &[u32], v6: &[[u32; 4]]) {
    let allow = g.allow;
    let drop = g.a.label();
    let (is4, is6) = (g.a.label(), g.a.label());
    g.load(Reg::R6, SKB_PROTOCOL);
    g.a.jeq32_imm(Reg::R7, u32::from(0x0800u16.to_be()), is4)
        .jeq32_imm(Reg::R7, u32::from(0x86ddu16.to_be()), is6)
        .ja(allow);

    // R8 = data, R9 = data_end; header length checked before any read.
    let header = |g: &mut Gen, len: i32| {
        g.a.ldx(Size::W, Reg::R8, Reg::R6, SKB_DATA)
            .ldx(Size::W, Reg::R9, Reg::R6, SKB_DATA_END)
            .mov64_reg(Reg::R2, Reg::R8)
            .add64_imm(Reg::R2, len)
            .jgt64_reg(Reg::R2, Reg::R9, drop);
    };

    g.a.bind(is4);
    header(g, 20);
    g.load(Reg::R8, 16);
    g.r7_in(v4, allow);
    // 255.255.255.255, or 224.0.0.0/4 (first octet 1110xxxx)
    g.a.jeq32_imm(Reg::R7, u32::MAX, allow)
        .ldx(Size::B, Reg::R7, Reg::R8, 16)
        .and32_imm(Reg::R7, 0xf0)
        .jeq32_imm(Reg::R7, 0xe0, allow)
        .ja(drop);

    g.a.bind(is6);
    header(g, 40);
    g.ip6_in(Reg::R8, 24, v6, allow);
    // ff00::/8
    g.a.ldx(Size::B, Reg::R7, Reg::R8, 24)
        .jeq32_imm(Reg::R7, 0xff, allow);
    g.a.bind(drop).mov64_imm(Reg::R0, 0).exit();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs() -> Addrs {
        Addrs {
            v4: vec!["127.1.0.2".parse().unwrap(), "192.0.2.200".parse().unwrap()],
            v6: vec!["fd00:5::2".parse().unwrap()],
        }
    }

    #[test]
    fn every_hook_assembles_for_every_family_mix() {
        let full = addrs();
        let only4 = Addrs {
            v6: vec![],
            ..full.clone()
        };
        let only6 = Addrs {
            v4: vec![],
            ..full.clone()
        };
        for a in [full, only4, only6] {
            for h in Hook::ALL {
                let p = generate(h, &a).unwrap_or_else(|e| panic!("{h:?} {a:?}: {e}"));
                assert!(p.len() < 400, "{h:?}: {} instructions", p.len());
                assert_all_reachable(&p, &format!("{h:?} {a:?}"));
            }
        }
    }

    /// The verifier's first check (check_cfg): every instruction reachable from the first.
    fn assert_all_reachable(p: &[Insn], what: &str) {
        let mut seen = vec![false; p.len()];
        let mut todo = vec![0usize];
        while let Some(i) = todo.pop() {
            if i >= p.len() || seen[i] {
                continue;
            }
            seen[i] = true;
            let (class, op) = (p[i].code & 0x07, p[i].code & 0xf0);
            let target = (i as i64 + 1 + p[i].off as i64) as usize;
            match (class, op) {
                (0x05, 0x90) => {}
                (0x05, 0x00) => todo.push(target),
                (0x05 | 0x06, 0x80) => todo.push(i + 1),
                (0x05 | 0x06, _) => todo.extend([i + 1, target]),
                _ => todo.push(i + 1),
            }
        }
        if let Some(i) = seen.iter().position(|s| !s) {
            panic!("{what}: instruction {i} is unreachable");
        }
    }

    #[test]
    fn addresses_are_compared_in_network_order() {
        assert_eq!(
            w4(Ipv4Addr::new(127, 0, 0, 1)).to_ne_bytes(),
            [127, 0, 0, 1]
        );
        let m = mapped(Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(m[2], mapped_w2());
        assert_eq!(m[3].to_ne_bytes(), [192, 0, 2, 1]);
    }
}
