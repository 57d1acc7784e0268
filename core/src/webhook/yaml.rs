//! A small YAML document model that remembers where every node is, built
//! from saphyr-parser's event stream. Validation reports each problem with
//! its line and column, so the tree keeps both on every node.
//!
//! The builder enforces the limits a hostile file would abuse: total size,
//! nesting depth, node count, and it refuses anchors, aliases and tags
//! (alias expansion is how a small YAML file becomes a huge one, and a
//! declaration has no use for either).

use std::borrow::Cow;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// A declaration is a page of YAML; anything bigger is a mistake or an attack.
pub const YAML_BYTES_MAX: usize = 64 * 1024;
/// Nesting deeper than this is refused before any tree is built.
pub const YAML_DEPTH_MAX: usize = 16;
/// Nodes per document (scalars, sequences and mappings together).
pub const YAML_NODES_MAX: usize = 4_096;

/// Where a node starts: 1-based line and column, as editors count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mark {
    pub line: usize,
    pub col: usize,
}

impl Mark {
    fn of(span: &Span) -> Mark {
        Mark {
            line: span.start.line(),
            col: span.start.col() + 1,
        }
    }
}

impl std::fmt::Display for Mark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys in document order; duplicates are refused by the builder.
    Map(Vec<(Node, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub mark: Mark,
    pub value: Value,
}

impl Node {
    /// What the node is, for "expected a string, found a mapping".
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// A syntax or limit error: where and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YamlError {
    pub mark: Mark,
    pub message: String,
}

/// Parses one YAML document. An empty document is `Null`.
pub fn parse(text: &str) -> Result<Node, YamlError> {
    if text.len() > YAML_BYTES_MAX {
        return Err(YamlError {
            mark: Mark { line: 1, col: 1 },
            message: format!(
                "the file is {} bytes; a declaration may be at most {YAML_BYTES_MAX}",
                text.len()
            ),
        });
    }
    let mut b = Builder::default();
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| YamlError {
            mark: Mark {
                line: e.marker().line(),
                col: e.marker().col() + 1,
            },
            message: format!("YAML syntax: {}", e.info()),
        })?;
        if b.on_event(event, &span)? {
            break;
        }
    }
    Ok(b.root.unwrap_or(Node {
        mark: Mark { line: 1, col: 1 },
        value: Value::Null,
    }))
}

enum Open {
    Seq(Mark, Vec<Node>),
    Map(Mark, Vec<(Node, Node)>, Option<Node>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    root: Option<Node>,
    nodes: usize,
    documents: usize,
}

impl Builder {
    /// Returns `true` at the end of the stream.
    fn on_event(&mut self, event: Event<'_>, span: &Span) -> Result<bool, YamlError> {
        let mark = Mark::of(span);
        let err = |message: String| Err(YamlError { mark, message });
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return err("one webhook per file: a second YAML document was found".into());
                }
            }
            Event::Alias(_) => return err("aliases (`*name`) are not supported".into()),
            Event::Scalar(text, style, anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    return err("anchors (`&name`) and tags (`!tag`) are not supported".into());
                }
                self.push(Node {
                    mark,
                    value: resolve(text, style),
                })?;
            }
            Event::SequenceStart(anchor, ref tag) | Event::MappingStart(anchor, ref tag) => {
                if anchor != 0 || tag.is_some() {
                    return err("anchors (`&name`) and tags (`!tag`) are not supported".into());
                }
                if self.stack.len() >= YAML_DEPTH_MAX {
                    return err(format!("nesting deeper than {YAML_DEPTH_MAX} levels"));
                }
                self.count(mark)?;
                self.stack.push(match event {
                    Event::SequenceStart(..) => Open::Seq(mark, Vec::new()),
                    _ => Open::Map(mark, Vec::new(), None),
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let node = match self.stack.pop() {
                    Some(Open::Seq(m, items)) => Node {
                        mark: m,
                        value: Value::Seq(items),
                    },
                    Some(Open::Map(m, entries, _)) => Node {
                        mark: m,
                        value: Value::Map(entries),
                    },
                    None => return err("unbalanced YAML structure".into()),
                };
                self.attach(node)?;
            }
            Event::DocumentEnd => {}
            Event::StreamEnd => return Ok(true),
            Event::Nothing | Event::StreamStart => {}
        }
        Ok(false)
    }

    fn count(&mut self, mark: Mark) -> Result<(), YamlError> {
        self.nodes += 1;
        if self.nodes > YAML_NODES_MAX {
            return Err(YamlError {
                mark,
                message: format!("more than {YAML_NODES_MAX} YAML nodes"),
            });
        }
        Ok(())
    }

    fn push(&mut self, node: Node) -> Result<(), YamlError> {
        self.count(node.mark)?;
        self.attach(node)
    }

    fn attach(&mut self, node: Node) -> Result<(), YamlError> {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Open::Seq(_, items)) => items.push(node),
            Some(Open::Map(_, entries, pending)) => match pending.take() {
                None => {
                    if !matches!(node.value, Value::Str(_) | Value::Int(_) | Value::Bool(_)) {
                        return Err(YamlError {
                            mark: node.mark,
                            message: format!(
                                "mapping keys must be plain text, not {}",
                                node.kind()
                            ),
                        });
                    }
                    if let Some((first, _)) = entries.iter().find(|(k, _)| same_key(k, &node)) {
                        return Err(YamlError {
                            mark: node.mark,
                            message: format!(
                                "duplicate key `{}` (first at {})",
                                key_text(&node),
                                first.mark
                            ),
                        });
                    }
                    *pending = Some(node);
                }
                Some(key) => entries.push((key, node)),
            },
        }
        Ok(())
    }
}

/// The text of a mapping key (keys are strings, integers or booleans).
pub fn key_text(node: &Node) -> Cow<'_, str> {
    match &node.value {
        Value::Str(s) => Cow::Borrowed(s),
        Value::Int(i) => Cow::Owned(i.to_string()),
        Value::Bool(b) => Cow::Owned(b.to_string()),
        _ => Cow::Borrowed("?"),
    }
}

fn same_key(a: &Node, b: &Node) -> bool {
    key_text(a) == key_text(b)
}

/// The YAML 1.2 core schema for plain scalars; quoted scalars are strings.
fn resolve(text: Cow<'_, str>, style: ScalarStyle) -> Value {
    if style != ScalarStyle::Plain {
        return Value::Str(text.into_owned());
    }
    match text.as_ref() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Some(i) = parse_int(&text) {
        return Value::Int(i);
    }
    let looks_numeric = text
        .bytes()
        .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
        && text.bytes().any(|b| b.is_ascii_digit());
    if looks_numeric && let Ok(f) = text.parse::<f64>() {
        return Value::Float(f);
    }
    Value::Str(text.into_owned())
}

fn parse_int(s: &str) -> Option<i64> {
    if let Some(hex) = s.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok();
    }
    if let Some(oct) = s.strip_prefix("0o") {
        return i64::from_str_radix(oct, 8).ok();
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_resolve_and_carry_marks() {
        let doc = parse("a: 1\nb: \"1\"\nc: true\non: x\nd: ~\ne: 1.5\n").unwrap();
        let Value::Map(entries) = doc.value else {
            panic!("not a map")
        };
        let vals: Vec<_> = entries.iter().map(|(_, v)| v.value.clone()).collect();
        assert_eq!(
            vals,
            vec![
                Value::Int(1),
                Value::Str("1".into()),
                Value::Bool(true),
                Value::Str("x".into()),
                Value::Null,
                Value::Float(1.5)
            ]
        );
        assert_eq!(entries[1].1.mark, Mark { line: 2, col: 4 });
        assert_eq!(key_text(&entries[3].0), "on");
    }

    #[test]
    fn hostile_documents_are_refused_with_a_place() {
        let deep = format!("a: {}1{}", "[".repeat(40), "]".repeat(40));
        let e = parse(&deep).unwrap_err();
        assert!(e.message.contains("nesting"), "{e:?}");
        assert_eq!(e.mark.line, 1);
        let dup = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!((dup.mark.line, dup.mark.col), (3, 1));
        assert!(dup.message.contains("first at 1:1"), "{dup:?}");
        let alias = parse("a: &x [1]\nb: *x\n").unwrap_err();
        assert!(alias.message.contains("not supported"), "{alias:?}");
        let big = "a: b\n".repeat(YAML_BYTES_MAX / 4);
        assert!(parse(&big).unwrap_err().message.contains("at most"));
        let syntax = parse("a: b: c\n").unwrap_err();
        assert!(syntax.message.starts_with("YAML syntax"), "{syntax:?}");
        let two = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert!(two.message.contains("one webhook per file"), "{two:?}");
        let wide = format!("[{}]", vec!["1"; YAML_NODES_MAX + 1].join(","));
        assert!(parse(&wide).unwrap_err().message.contains("nodes"));
    }
}
