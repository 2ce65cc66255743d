//! A strict, simplified event stream over quick-xml, and `environment.xml`.
//!
//! [`Walker`] turns a document into open/close/text nodes and refuses anything that
//! is not well-formed (mismatched or unclosed tags, text or a second element outside
//! the root), reporting the line and column. DTDs are skipped and entities are never
//! expanded beyond the predefined ones and character references.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::ModelError;

/// One step through a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    /// A start tag (self-closing tags give `Open` then `Close`). Names are local
    /// names: namespace prefixes are dropped.
    Open {
        name: String,
        attrs: Vec<(String, String)>,
    },
    Close,
    /// Character data or CDATA inside the root element, unescaped.
    Text(String),
}

/// Walks a document node by node.
pub(crate) struct Walker<'a> {
    text: &'a str,
    reader: Reader<&'a [u8]>,
    open: Vec<String>,
    seen_root: bool,
}

impl<'a> Walker<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let mut reader = Reader::from_str(text);
        let config = reader.config_mut();
        config.expand_empty_elements = true;
        config.check_end_names = true;
        Walker {
            text,
            reader,
            open: Vec::new(),
            seen_root: false,
        }
    }

    /// Builds an error at a byte offset of the document.
    fn error(&self, offset: u64, message: impl Into<String>) -> ModelError {
        let (line, column) = line_column(self.text, offset);
        ModelError::Xml {
            line,
            column,
            message: message.into(),
        }
    }

    fn here(&self, message: impl Into<String>) -> ModelError {
        self.error(self.reader.buffer_position(), message)
    }

    /// The next node, or `None` at the end of a well-formed document.
    pub(crate) fn next_node(&mut self) -> Result<Option<Node>, ModelError> {
        loop {
            let event = match self.reader.read_event() {
                Ok(event) => event,
                Err(e) => return Err(self.error(self.reader.error_position(), e.to_string())),
            };
            match event {
                Event::Start(start) => {
                    if self.open.is_empty() && self.seen_root {
                        return Err(self.here("unexpected element after the root element"));
                    }
                    self.seen_root = true;
                    let name = local_name(&start);
                    let attrs = attributes(&start).map_err(|message| self.here(message))?;
                    self.open.push(name.clone());
                    return Ok(Some(Node::Open { name, attrs }));
                }
                Event::End(_) => {
                    self.open.pop();
                    return Ok(Some(Node::Close));
                }
                Event::Text(text) => {
                    let value = match text.unescape() {
                        Ok(value) => value.into_owned(),
                        Err(_) => String::from_utf8_lossy(&text).into_owned(),
                    };
                    if !self.open.is_empty() {
                        return Ok(Some(Node::Text(value)));
                    }
                    if !value.trim().is_empty() {
                        return Err(self.here("text outside the root element"));
                    }
                }
                Event::CData(data) => {
                    if self.open.is_empty() {
                        return Err(self.here("CDATA outside the root element"));
                    }
                    return Ok(Some(Node::Text(
                        String::from_utf8_lossy(&data).into_owned(),
                    )));
                }
                Event::Eof => {
                    return match self.open.last() {
                        Some(name) => {
                            Err(self
                                .here(format!("unexpected end of input: <{name}> is not closed")))
                        }
                        None => Ok(None),
                    };
                }
                Event::Empty(_)
                | Event::Decl(_)
                | Event::PI(_)
                | Event::Comment(_)
                | Event::DocType(_) => {}
            }
        }
    }
}

fn local_name(start: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(start.local_name().as_ref()).into_owned()
}

fn attributes(start: &BytesStart<'_>) -> Result<Vec<(String, String)>, String> {
    start
        .attributes()
        .map(|attr| {
            let attr = attr.map_err(|e| e.to_string())?;
            let key = String::from_utf8_lossy(attr.key.local_name().as_ref()).into_owned();
            let value = match attr.unescape_value() {
                Ok(value) => value.into_owned(),
                Err(_) => String::from_utf8_lossy(&attr.value).into_owned(),
            };
            Ok((key, value))
        })
        .collect()
}

/// The value of attribute `name`, if present.
pub(crate) fn attr<'v>(attrs: &'v [(String, String)], name: &str) -> Option<&'v str> {
    attrs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: u64) -> (usize, usize) {
    let offset = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = before[line_start..]
        .iter()
        .filter(|&&b| (b & 0xC0) != 0x80)
        .count()
        + 1;
    (line, column)
}

/// Parses `environment.xml`:
/// `<environment><parameter><key>k</key><value>v</value></parameter>…</environment>`.
///
/// Keys and values are trimmed; parameters without a key are skipped, a missing
/// value reads as `""`. Fails on empty input, text that is not UTF-8, malformed
/// XML, or a root element other than `<environment>`.
pub fn parse_environment_xml(bytes: &[u8]) -> Result<Vec<(String, String)>, ModelError> {
    let text = crate::json::text(bytes)?;
    let mut walker = Walker::new(text);
    let mut path: Vec<String> = Vec::new();
    let mut entries = Vec::new();
    let (mut key, mut value) = (String::new(), String::new());

    while let Some(node) = walker.next_node()? {
        match node {
            Node::Open { name, .. } => {
                if path.is_empty() && name != "environment" {
                    return Err(ModelError::NotEnvironment { root: Some(name) });
                }
                if path.len() == 1 && name == "parameter" {
                    key.clear();
                    value.clear();
                }
                path.push(name);
            }
            Node::Close => {
                if path.len() == 2 && path[1] == "parameter" {
                    let k = key.trim();
                    if !k.is_empty() {
                        entries.push((k.to_string(), value.trim().to_string()));
                    }
                }
                path.pop();
            }
            Node::Text(text) => {
                if path.len() == 3 && path[1] == "parameter" {
                    match path[2].as_str() {
                        "key" => key.push_str(&text),
                        "value" => value.push_str(&text),
                        _ => {}
                    }
                }
            }
        }
    }
    if !walker.seen_root {
        return Err(ModelError::NotEnvironment { root: None });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(text: &str) -> Result<Vec<Node>, ModelError> {
        let mut walker = Walker::new(text);
        let mut out = Vec::new();
        while let Some(node) = walker.next_node()? {
            out.push(node);
        }
        Ok(out)
    }

    #[test]
    fn walker_expands_empty_elements_and_unescapes() {
        let got =
            nodes("<?xml version=\"1.0\"?>\n<a x=\"1 &amp; 2\"><b/>t&lt;<![CDATA[<raw>]]></a>\n")
                .unwrap();
        assert_eq!(
            got,
            vec![
                Node::Open {
                    name: "a".into(),
                    attrs: vec![("x".into(), "1 & 2".into())]
                },
                Node::Open {
                    name: "b".into(),
                    attrs: vec![]
                },
                Node::Close,
                Node::Text("t<".into()),
                Node::Text("<raw>".into()),
                Node::Close,
            ]
        );
    }

    #[test]
    fn walker_reports_malformed_documents_with_position() {
        let cases = [
            (
                "<a>\n  <b></c>\n</a>",
                2,
                "expected `</b>`, but `</c>` was found",
            ),
            ("<a>\n<b>", 2, "<b> is not closed"),
            ("<a></a>\n<b/>", 2, "after the root element"),
            ("<a></a> junk", 1, "text outside the root element"),
            ("<a x=\"1\" x=\"2\"/>", 1, "duplicated"),
            ("<a\n", 1, "not closed"),
        ];
        for (text, want_line, want_message) in cases {
            let err = nodes(text).unwrap_err();
            let ModelError::Xml { line, message, .. } = &err else {
                panic!("{text:?}: {err}");
            };
            assert_eq!(*line, want_line, "{text:?}: {err}");
            assert!(message.contains(want_message), "{text:?}: {err}");
        }
    }

    #[test]
    fn line_column_counts_characters() {
        assert_eq!(line_column("ab\ncé d", 7), (2, 4));
        assert_eq!(line_column("abc", 99), (1, 4));
    }

    #[test]
    fn environment_xml() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<environment>
  <parameter><key>Browser</key><value>Chrome</value></parameter>
  <parameter>
    <key> Stand </key>
    <value>Production &amp; staging</value>
  </parameter>
  <parameter><value>no key</value></parameter>
  <parameter><key>empty</key></parameter>
</environment>"#;
        assert_eq!(
            parse_environment_xml(xml).unwrap(),
            vec![
                ("Browser".to_string(), "Chrome".to_string()),
                ("Stand".to_string(), "Production & staging".to_string()),
                ("empty".to_string(), String::new()),
            ]
        );
    }

    #[test]
    fn environment_xml_errors() {
        assert_eq!(parse_environment_xml(b"").unwrap_err(), ModelError::Empty);
        assert!(matches!(
            parse_environment_xml(b"<environment>\xFF</environment>").unwrap_err(),
            ModelError::NotUtf8 { offset: 13 }
        ));
        assert_eq!(
            parse_environment_xml(b"<env/>").unwrap_err().to_string(),
            "not an Allure environment file: root element is <env>, expected <environment>"
        );
        assert_eq!(
            parse_environment_xml(b"<!-- nothing -->").unwrap_err(),
            ModelError::NotEnvironment { root: None }
        );
        assert!(matches!(
            parse_environment_xml(b"<environment><parameter>").unwrap_err(),
            ModelError::Xml { .. }
        ));
    }
}
