//! Query parameters read as the daemon reads them: Go's `url.ParseQuery`
//! (`&`-separated, `+` and `%XX` unescaped, every value of a repeated key kept
//! in order, `FormValue` taking the first; a `;` anywhere is an error) and
//! moby's form helpers.

use std::collections::BTreeMap;

/// moby's `BoolValue`: false only for "", "0", "no", "false" and "none" (any
/// case, spaces trimmed); anything else is true.
pub fn bool_value(value: &str) -> bool {
    !matches!(value.trim().to_lowercase().as_str(), "" | "0" | "no" | "false" | "none")
}

/// Go's `url.ParseQuery`: every value of each key, in order (`FormValue`
/// returns the first).
pub fn parse_query(query: &str) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut form: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in query.split('&') {
        if pair.contains(';') {
            return Err("invalid semicolon separator in query".to_owned());
        }
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = unescape(key).ok_or_else(|| format!("invalid URL escape in query key {key:?}"))?;
        let value = unescape(value).ok_or_else(|| format!("invalid URL escape in query value {value:?}"))?;
        form.entry(key).or_default().push(value);
    }
    Ok(form)
}

/// Go's `QueryUnescape`: `+` is a space, `%XX` a byte; any other `%` is an error.
fn unescape(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(
                    u8::from_str_radix(hex, 16)
                        .ok()
                        .filter(|_| hex.bytes().all(|b| b.is_ascii_hexdigit()))?,
                );
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// The `w` and `h` of a resize query as the daemon reads them (the first
/// value of each, a decimal integer as Go's `strconv.Atoi` takes it), as
/// `(width, height)`; `None` when the daemon would refuse them or they are negative.
pub fn terminal_size(query: Option<&str>) -> Option<(u64, u64)> {
    let form = parse_query(query?).ok()?;
    let number = |key: &str| {
        let text = form.get(key)?.first()?;
        let digits = text.strip_prefix('+').unwrap_or(text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<u64>().ok()
    };
    Some((number("w")?, number("h")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_sizes_read_as_the_daemon_reads_them() {
        assert_eq!(terminal_size(Some("h=24&w=80")), Some((80, 24)));
        assert_eq!(terminal_size(Some("h=24&w=80&h=50&w=200")), Some((80, 24)), "the first value counts");
        assert_eq!(terminal_size(Some("%68=30&%77=100")), Some((100, 30)), "keys are unescaped");
        assert_eq!(terminal_size(Some("h=010&w=0090")), Some((90, 10)));
        assert_eq!(terminal_size(Some("h=%2B5&w=6")), Some((6, 5)), "Atoi takes a sign");
        assert_eq!(terminal_size(Some("h=+5&w=6")), None, "`+` is a space, which Atoi refuses");
        assert_eq!(terminal_size(Some("h=-1&w=6")), None);
        assert_eq!(terminal_size(Some("h=5")), None);
        assert_eq!(terminal_size(Some("h=5;w=6")), None);
    }
}
