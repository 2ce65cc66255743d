//! `environment.properties`: the subset of the Java properties format that Allure
//! adapters write.

/// Parses `environment.properties` into `(key, value)` pairs in file order.
///
/// Supported: `#` and `!` comment lines, blank lines, the separators `=`, `:` and
/// whitespace (`key value`), surrounding whitespace trimmed from keys and values,
/// the escapes `\t \n \r \f \uXXXX` (any other escaped character stands for itself,
/// e.g. `\\ \= \: \#` and `\ ` for a space), and line continuations (a line ending
/// in an odd number of backslashes continues on the next line, whose leading
/// whitespace is dropped).
///
/// Never fails: text that is not UTF-8 is read as ISO-8859-1 (the historical
/// encoding of properties files), entries with an empty key are skipped, and when a
/// key repeats, the last value wins and keeps the position of the first occurrence.
pub fn parse_environment_properties(bytes: &[u8]) -> Vec<(String, String)> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    };

    let mut entries: Vec<(String, String)> = Vec::new();
    for line in logical_lines(&text) {
        let (key, value) = split_entry(&line);
        if key.is_empty() {
            continue;
        }
        match entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => entries.push((key, value)),
        }
    }
    entries
}

/// Joins continued lines and drops comments and blank lines. Escapes stay in place.
fn logical_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current: Option<String> = None;
    for raw in text.lines() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let piece = raw.trim_start_matches(is_blank);
        let mut line = match current.take() {
            Some(mut pending) => {
                pending.push_str(piece);
                pending
            }
            None => {
                if piece.is_empty() || piece.starts_with('#') || piece.starts_with('!') {
                    continue;
                }
                piece.to_string()
            }
        };
        if ends_with_odd_backslashes(&line) {
            line.pop();
            current = Some(line);
        } else {
            lines.push(line);
        }
    }
    if let Some(last) = current {
        lines.push(last);
    }
    lines
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0C')
}

fn ends_with_odd_backslashes(s: &str) -> bool {
    s.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// Splits a logical line at the first unescaped separator and unescapes both parts.
fn split_entry(line: &str) -> (String, String) {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let mut key_end = chars.len();
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            c if c == '=' || c == ':' || is_blank(c) => {
                key_end = i;
                break;
            }
            _ => i += 1,
        }
    }
    let key_end = key_end.min(chars.len());
    let mut value_start = key_end;
    while value_start < chars.len() && is_blank(chars[value_start]) {
        value_start += 1;
    }
    if value_start < chars.len() && (chars[value_start] == '=' || chars[value_start] == ':') {
        value_start += 1;
        while value_start < chars.len() && is_blank(chars[value_start]) {
            value_start += 1;
        }
    }
    let key = unescape(&chars[..key_end]);
    let value = unescape(trim_unescaped_end(&chars[value_start..]));
    (key.trim().to_string(), value)
}

/// Drops trailing blanks unless they are escaped (`\ `).
fn trim_unescaped_end(chars: &[char]) -> &[char] {
    let mut end = chars.len();
    while end > 0 && is_blank(chars[end - 1]) {
        let backslashes = chars[..end - 1]
            .iter()
            .rev()
            .take_while(|&&c| c == '\\')
            .count();
        if backslashes % 2 == 1 {
            break;
        }
        end -= 1;
    }
    &chars[..end]
}

fn unescape(chars: &[char]) -> String {
    let mut out = String::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(&next) = chars.get(i) else {
            break;
        };
        i += 1;
        match next {
            't' => out.push('\t'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            'f' => out.push('\x0C'),
            'u' => {
                let hex: String = chars[i..].iter().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(decoded) if hex.len() == 4 => {
                        out.push(decoded);
                        i += 4;
                    }
                    _ => out.push('u'),
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn separators_comments_and_blank_lines() {
        let text = "# comment\n! another\n\nos=Linux\nbrowser : Chrome 120\njava 17\n  spaced  =  value  \n";
        assert_eq!(
            parse_environment_properties(text.as_bytes()),
            pairs(&[
                ("os", "Linux"),
                ("browser", "Chrome 120"),
                ("java", "17"),
                ("spaced", "value"),
            ])
        );
    }

    #[test]
    fn escapes() {
        let text = "a\\=b=c\\:d\nkey\\ with\\ space=v\ntab=x\\ty\\nz\nslash=C:\\\\dir\nuni=\\u00e9t\\u00E9\nbad=\\uZZ\ntrail=x\\ \n";
        assert_eq!(
            parse_environment_properties(text.as_bytes()),
            pairs(&[
                ("a=b", "c:d"),
                ("key with space", "v"),
                ("tab", "x\ty\nz"),
                ("slash", "C:\\dir"),
                ("uni", "été"),
                ("bad", "uZZ"),
                ("trail", "x "),
            ])
        );
    }

    #[test]
    fn continuations() {
        let text = "list=a,\\\n    b,\\\r\n    c\nescaped=ends\\\\\nnext=1\ndangling=x\\";
        assert_eq!(
            parse_environment_properties(text.as_bytes()),
            pairs(&[
                ("list", "a,b,c"),
                ("escaped", "ends\\"),
                ("next", "1"),
                ("dangling", "x"),
            ])
        );
    }

    #[test]
    fn key_only_empty_key_and_duplicates() {
        let text = "flag\n=orphan\nk=1\nother=2\nk=3\n";
        assert_eq!(
            parse_environment_properties(text.as_bytes()),
            pairs(&[("flag", ""), ("k", "3"), ("other", "2")])
        );
    }

    #[test]
    fn latin1_bom_and_empty_input() {
        assert_eq!(
            parse_environment_properties(b"city=K\xF6ln\n"),
            pairs(&[("city", "Köln")])
        );
        assert_eq!(
            parse_environment_properties(b"\xEF\xBB\xBFa=1"),
            pairs(&[("a", "1")])
        );
        assert!(parse_environment_properties(b"").is_empty());
        assert!(parse_environment_properties(b"\n\n# only comments\n").is_empty());
    }
}
