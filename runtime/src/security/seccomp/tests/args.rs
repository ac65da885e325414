//! Argument comparisons: full 64-bit values, masks, AND within a rule, OR across rules.

use super::*;

// Argument comparisons

/// For each op, getpid(arg0) must be denied exactly when `arg0 <op> value` holds, with values
/// on both sides of the 32-bit boundary.
#[test]
fn comparison_ops_compare_full_64_bit_values() {
    const VALUES: [u64; 9] = [
        0,
        1,
        5,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0005,
        0x8000_0000_0000_0000,
        0xffff_ffff_0000_0000,
        u64::MAX,
    ];
    type Pred = fn(u64, u64) -> bool;
    let ops: [(&str, Pred); 6] = [
        ("SCMP_CMP_NE", |a, v| a != v),
        ("SCMP_CMP_LT", |a, v| a < v),
        ("SCMP_CMP_LE", |a, v| a <= v),
        ("SCMP_CMP_EQ", |a, v| a == v),
        ("SCMP_CMP_GE", |a, v| a >= v),
        ("SCMP_CMP_GT", |a, v| a > v),
    ];
    for (op, pred) in ops {
        for v in [5u64, 0x1_0000_0005, 0xffff_ffff_0000_0000] {
            let f = filter(json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 99,
                               "args": [{ "index": 0, "value": v, "op": op }] }]
            }));
            for a in VALUES {
                let want = if pred(a, v) {
                    RET_ERRNO | 99
                } else {
                    RET_ALLOW
                };
                assert_eq!(
                    run(&f, 39, AUDIT_X86_64, [a, 0, 0, 0, 0, 0]),
                    want,
                    "{op} {v:#x} on {a:#x}"
                );
            }
            expect_in_child(&f, || {
                for a in VALUES {
                    let denied = getpid_with(a) == Err(99);
                    if denied != pred(a, v) {
                        return Err(format!("{op} {v:#x}: getpid({a:#x}) denied={denied}"));
                    }
                }
                Ok(())
            });
        }
    }
}

#[test]
fn masked_eq_matches_only_masked_bits() {
    // docker's clone rule: allowed when no namespace flag (mask 0x7e020000) is set.
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 99,
                       "args": [{ "index": 1, "value": 0xff00_0000_00f0u64, "valueTwo": 0x1200_0000_0030u64,
                                  "op": "SCMP_CMP_MASKED_EQ" }] }]
    }));
    let cases: [(u64, bool); 6] = [
        (0x1200_0000_0030, true),
        (0x12ff_ffff_ff3f, true),
        (0x1200_0000_0031, true),
        (0x1300_0000_0030, false),
        (0x1200_0000_0020, false),
        (0x0000_0000_0030, false),
    ];
    expect_in_child(&f, || {
        for (a, hit) in cases {
            let denied = sys(libc::SYS_getpid as u64, [0, a, 0, 0, 0, 0]) == Err(99);
            if denied != hit {
                return Err(format!("masked_eq on {a:#x}: denied={denied}"));
            }
        }
        Ok(())
    });
    // libseccomp's reading: the datum is masked too, so bits outside the mask never matter.
    let g = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 99,
                       "args": [{ "index": 0, "value": 0xf, "valueTwo": 0xf5, "op": "SCMP_CMP_MASKED_EQ" }] }]
    }));
    assert_eq!(
        run(&g, 39, AUDIT_X86_64, [0x25, 0, 0, 0, 0, 0]),
        RET_ERRNO | 99
    );
    assert_eq!(run(&g, 39, AUDIT_X86_64, [0x24, 0, 0, 0, 0, 0]), RET_ALLOW);
}

#[test]
fn comparisons_in_one_rule_are_anded_and_rules_are_ored() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            { "names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 91,
              "args": [{ "index": 0, "value": 1, "op": "SCMP_CMP_EQ" },
                       { "index": 2, "value": 3, "op": "SCMP_CMP_EQ" }] },
            { "names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 92,
              "args": [{ "index": 5, "value": 7, "op": "SCMP_CMP_EQ" }] }
        ]
    }));
    expect_in_child(&f, || {
        let cases: [([u64; 6], Result<(), i32>); 5] = [
            ([1, 0, 3, 0, 0, 0], Err(91)),
            ([1, 0, 4, 0, 0, 0], Ok(())),
            ([2, 0, 3, 0, 0, 0], Ok(())),
            ([0, 0, 0, 0, 0, 7], Err(92)),
            ([1, 0, 3, 0, 0, 7], Err(91)),
        ];
        for (args, want) in cases {
            let got = sys(libc::SYS_getpid as u64, args).map(|_| ());
            if got != want {
                return Err(format!("getpid{args:?}: {got:?}, wanted {want:?}"));
            }
        }
        Ok(())
    });
}

#[test]
fn one_argument_compared_twice_in_a_rule_is_ored_as_runc_does() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 93,
                       "args": [{ "index": 0, "value": 1, "op": "SCMP_CMP_EQ" },
                                { "index": 0, "value": 2, "op": "SCMP_CMP_EQ" }] }]
    }));
    for (a, want) in [(1, RET_ERRNO | 93), (2, RET_ERRNO | 93), (3, RET_ALLOW)] {
        assert_eq!(
            run(&f, 39, AUDIT_X86_64, [a, 0, 0, 0, 0, 0]),
            want,
            "arg {a}"
        );
    }
}

#[test]
fn unconditional_rule_wins_over_conditional_ones() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            { "names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 7,
              "args": [{ "index": 0, "value": 3, "op": "SCMP_CMP_EQ" }] },
            errno_rule(&["getpid"], 5)
        ]
    }));
    for a in [3, 4] {
        assert_eq!(run(&f, 39, AUDIT_X86_64, [a, 0, 0, 0, 0, 0]), RET_ERRNO | 5);
    }
}

#[test]
fn rules_with_the_default_action_are_dropped() {
    // runc skips them, so the unconditional ALLOW below decides alone.
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            { "names": ["getpid"], "action": "SCMP_ACT_ERRNO",
              "args": [{ "index": 0, "value": 3, "op": "SCMP_CMP_EQ" }] },
            { "names": ["getpid"], "action": "SCMP_ACT_ALLOW" }
        ]
    }));
    assert_eq!(run(&f, 39, AUDIT_X86_64, [3, 0, 0, 0, 0, 0]), RET_ALLOW);
}
