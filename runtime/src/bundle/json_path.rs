//! The path of the field a JSON parse error points at (`process.rlimits[0].type`), found from
//! the error's line and column in the text.
//!
//! serde_json gives every error of a `from_slice` parse its position, and the position of a
//! type or value error is at (or just after) the offending value. Walking the text up to that
//! point with a stack of the objects and arrays it is in gives the field, in the notation
//! engines and serde_path_to_error use. Done here rather than by wrapping the deserializer
//! (serde_path_to_error): that wrapper is instantiated for every type of the config and was
//! about 320 KB of the binary, all for the error path (README "Benchmarks").

enum Frame {
    /// The key whose value is being read (`None` while a key is expected), and whether its
    /// `:` has been read: a key refused before it is an enum's variant name (`{"a": ..}`
    /// where a unit variant goes), and the error is the whole object's.
    Object(Option<String>, bool),
    Array(usize),
}

/// The field at 1-based `line` and serde_json's `column`: the bytes read on that line, the
/// last of them the one the error was found at (a value's last byte, the `}` of an object
/// missing a field).
/// "" when the position is not inside any object.
pub(super) fn field_at(data: &[u8], line: usize, column: usize) -> String {
    let line_start = data
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(line.saturating_sub(2))
        .map_or(0, |(i, _)| i + 1);
    let start = if line <= 1 { 0 } else { line_start };
    // A value refused for its type is reported before its first byte (serde_json peeks at
    // it), so a `[` or `{` at the end is the container the value is in.
    let end = (start + column).min(data.len());
    render(&frames(&data[..end]))
}

fn frames(text: &[u8]) -> Vec<Frame> {
    let mut stack = Vec::new();
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'{' => stack.push(Frame::Object(None, false)),
            b'[' => stack.push(Frame::Array(0)),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Array(n)) => *n += 1,
                Some(Frame::Object(key, colon)) => (*key, *colon) = (None, false),
                None => {}
            },
            b':' => {
                if let Some(Frame::Object(_, colon)) = stack.last_mut() {
                    *colon = true;
                }
            }
            b'"' => {
                let (s, next) = string(text, i + 1);
                if let Some(Frame::Object(key @ None, _)) = stack.last_mut() {
                    *key = Some(s);
                }
                i = next;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    stack
}

/// The string starting after the quote at `from`, and the index after its closing quote.
/// Escapes other than `\"` and `\\` are kept as written: a key with them is rare, and the
/// path only has to name it.
fn string(text: &[u8], from: usize) -> (String, usize) {
    let mut out = Vec::new();
    let mut i = from;
    while i < text.len() {
        match text[i] {
            b'"' => return (String::from_utf8_lossy(&out).into_owned(), i + 1),
            b'\\' if i + 1 < text.len() && matches!(text[i + 1], b'"' | b'\\') => {
                out.push(text[i + 1]);
                i += 2;
                continue;
            }
            b => out.push(b),
        }
        i += 1;
    }
    (String::from_utf8_lossy(&out).into_owned(), i)
}

fn render(mut stack: &[Frame]) -> String {
    if let Some((Frame::Object(Some(_), false), outer)) = stack.split_last() {
        stack = outer;
    }
    let mut path = String::new();
    for frame in stack {
        match frame {
            Frame::Object(Some(key), _) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Frame::Object(None, _) => {}
            Frame::Array(n) => path.push_str(&format!("[{n}]")),
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::field_at;

    fn at(text: &str, needle: &str, after: bool) -> String {
        let i = text.find(needle).unwrap() + if after { needle.len() } else { 1 };
        let line = 1 + text[..i].matches('\n').count();
        let column = i - text[..i].rfind('\n').map_or(0, |n| n + 1);
        field_at(text.as_bytes(), line, column)
    }

    #[test]
    fn names_the_value_being_read() {
        let t = r#"{"process": {"rlimits": [{"hard": 1}, {"type": 5, "hard": 2}]}}"#;
        assert_eq!(at(t, "5", false), "process.rlimits[1].type");
        assert_eq!(at(t, "2", true), "process.rlimits[1].hard");
        // a missing field: serde_json points at the closing brace of its object
        assert_eq!(at(t, "1}", true), "process.rlimits[0]");
    }

    #[test]
    fn arrays_keys_with_quotes_and_lines() {
        let t = "{\n \"linux\": {\n  \"sysctl\": {\"a\\\"b\": 1},\n  \"x\": [\"ok\", {}]\n }\n}";
        assert_eq!(at(t, "1}", false), "linux.sysctl.a\"b");
        assert_eq!(at(t, "{}", false), "linux.x[1]");
        assert_eq!(at(t, "\"ok\"", true), "linux.x[0]");
    }

    #[test]
    fn compact_arrays_of_objects_name_the_element() {
        // `"env":[{` with a map where a string goes: serde_json stops before the `{`
        let t = r#"{"process":{"env":[{"A":"1"}]}}"#;
        assert_eq!(at(t, "[", true), "process.env[0]");
        // and a map where a string goes, for a field: before the `{`, after the `:`
        let t = r#"{"process":{"cwd":{"A":"1"}}}"#;
        assert_eq!(at(t, "cwd\":", true), "process.cwd");
        // an enum given a map: serde reads the key as the variant and refuses it
        let t = r#"{"linux":{"namespaces":[{"type":{"a":"1"}}]}}"#;
        assert_eq!(at(t, "{\"a\"", true), "linux.namespaces[0].type");
    }
}
