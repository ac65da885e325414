//! Sizes as runc's command line writes them (its RAMInBytes rule): a number, possibly with a
//! fraction, then optionally one space, a binary unit (K, M, G, T, P, any case), an `i` and a
//! `b` (`4096`, `512m`, `512MiB`, `1.5g`, `64 m`, `1p`). A fraction is truncated to whole
//! bytes after scaling, as runc does. One parser for `update`'s memory flags and the disk
//! limit annotation.

/// The number of bytes `v` names.
pub fn parse_bytes(v: &str) -> Result<u64, String> {
    let bad = || format!("{v:?}: not a size (bytes, or a number with K, M, G, T or P)");
    let t = v.trim();
    let digits_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, rest) = t.split_at(digits_end);
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let (shift, tail) = match rest.chars().next().map(|c| c.to_ascii_lowercase()) {
        Some('k') => (10, &rest[1..]),
        Some('m') => (20, &rest[1..]),
        Some('g') => (30, &rest[1..]),
        Some('t') => (40, &rest[1..]),
        Some('p') => (50, &rest[1..]),
        _ => (0, rest),
    };
    let tail = tail.strip_prefix(['i', 'I']).unwrap_or(tail);
    let tail = tail.strip_prefix(['b', 'B']).unwrap_or(tail);
    if !tail.is_empty() || num.is_empty() || !num.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(bad());
    }
    if !num.contains('.') {
        return num
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(1u64 << shift))
            .ok_or_else(bad);
    }
    let f: f64 = num.parse().map_err(|_| bad())?;
    let bytes = f * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes_as_runc_writes_them() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("512K"), Ok(512 << 10));
        assert_eq!(parse_bytes("512m"), Ok(512 << 20));
        assert_eq!(parse_bytes("512mb"), Ok(512 << 20));
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("64 m"), Ok(64 << 20));
        assert_eq!(parse_bytes("1.5g"), Ok(3 << 29));
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert_eq!(parse_bytes("1T"), Ok(1 << 40));
        assert_eq!(parse_bytes("1p"), Ok(1 << 50));
        assert_eq!(parse_bytes("100b"), Ok(100));
        assert_eq!(parse_bytes("0"), Ok(0));
    }

    #[test]
    fn what_runc_refuses_is_refused() {
        for bad in [
            "12Q",
            "",
            "M",
            "b",
            "-1",
            "lots",
            "99999999999T",
            "1.2.3m",
            ".5m",
            "1  m",
            "1mm",
            "20000000P",
            "1x",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }
}
