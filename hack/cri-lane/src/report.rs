//! The lines a reader (and hack/engines.sh) reads: one per CRI call, one per check.

use std::fmt::Display;

#[derive(Default)]
pub struct Report {
    pub passed: u32,
    pub failed: u32,
}

impl Report {
    /// A CRI call's outcome: `CRI <Call> -> <summary>`; an error is also a failed check.
    pub fn call<T, E: Display>(
        &mut self,
        name: &str,
        res: Result<T, E>,
        summary: impl FnOnce(&T) -> String,
    ) -> Option<T> {
        match res {
            Ok(v) => {
                println!("CRI {name} -> ok {}", summary(&v));
                self.pass(&format!("{name} succeeds"));
                Some(v)
            }
            Err(e) => {
                println!("CRI {name} -> error");
                self.fail(&format!("{name} succeeds"), &one_line(&e.to_string()));
                None
            }
        }
    }

    pub fn check(&mut self, what: &str, ok: bool, detail: impl FnOnce() -> String) -> bool {
        if ok {
            self.pass(what);
        } else {
            self.fail(what, &detail());
        }
        ok
    }

    /// `got` must equal `want`; the line shows both when it does not.
    pub fn equal<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, got: T, want: T) -> bool {
        let ok = got == want;
        self.check(what, ok, || format!("got {got:?}, want {want:?}"))
    }

    pub fn pass(&mut self, what: &str) {
        self.passed += 1;
        println!("PASS {what}");
    }

    pub fn fail(&mut self, what: &str, why: &str) {
        self.failed += 1;
        println!("FAIL {what}: {why}");
    }
}

pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
