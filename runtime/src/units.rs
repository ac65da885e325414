//! Sizes as runc's command line and vsrun's annotations write them: bytes, or a number with
//! a binary suffix (`512K`, `10m`, `2G`, `1T`; a trailing `b` as in `512mb` is allowed, as
//! runc's memory flags allow it). One parser for `update`'s memory flags and the disk limit.

/// The number of bytes `v` names. Only whole numbers: `1.5G` is refused rather than rounded.
pub fn parse_bytes(v: &str) -> Result<u64, String> {
    let t = v.trim();
    let t = t.strip_suffix(['b', 'B']).unwrap_or(t);
    let (num, shift) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 10),
        Some('M') => (&t[..t.len() - 1], 20),
        Some('G') => (&t[..t.len() - 1], 30),
        Some('T') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    let bad = || format!("{v:?}: not a size (bytes, or a number with K, M, G or T)");
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes_take_binary_suffixes_and_refuse_the_rest() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("512K"), Ok(512 << 10));
        assert_eq!(parse_bytes("512m"), Ok(512 << 20));
        assert_eq!(parse_bytes("512mb"), Ok(512 << 20));
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert_eq!(parse_bytes("1T"), Ok(1 << 40));
        assert_eq!(parse_bytes("0"), Ok(0));
        for bad in ["12Q", "", "M", "b", "-1", "1.5G", "lots", "99999999999T"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }
}
