//! A YAML document as a tree of nodes that remember where they were written.
//!
//! yaml-rust2's own `Yaml` type drops source positions, and every diagnostic of the config
//! loader must say `file:line:col`, so this module builds its own tree from yaml-rust2's
//! marked parser events. Plain scalars are resolved with the YAML 1.2 core schema (null,
//! booleans, integers, floats), keeping their source text for messages.

use std::collections::HashMap;
use std::fmt;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A 1-based line and column in a source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub col: u32,
}

impl Pos {
    fn from_marker(m: &Marker) -> Pos {
        Pos {
            line: m.line() as u32,
            col: m.col() as u32 + 1,
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A node's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// `~`, `null` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number (kept as text: config has no use for arithmetic on it).
    Float(String),
    /// A string (any quoted scalar, or a plain one that is not null, bool or number).
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order (duplicates are kept so the loader can report them).
    Map(Vec<(Node, Node)>),
}

/// One node of the tree.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Its value.
    pub kind: Kind,
    /// Where it starts.
    pub pos: Pos,
    /// The scalar's source text (empty for collections).
    pub raw: String,
}

impl Node {
    /// What the node is, for "expected X, found Y" messages.
    pub fn describe(&self) -> &'static str {
        match self.kind {
            Kind::Null => "nothing (null)",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// The string value, if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Any scalar as text (numbers and booleans as written); `None` for collections and null.
    pub fn scalar_text(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            Kind::Bool(_) | Kind::Int(_) | Kind::Float(_) => Some(&self.raw),
            _ => None,
        }
    }
}

/// A YAML syntax error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// Where the parser stopped.
    pub pos: Pos,
    /// yaml-rust2's description.
    pub message: String,
}

/// Parses one YAML document. An empty file gives `None`; several documents are an error.
pub fn parse(src: &str) -> Result<Option<Node>, SyntaxError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(src);
    parser.load(&mut builder, true).map_err(|e| SyntaxError {
        pos: Pos::from_marker(e.marker()),
        message: e.info().to_string(),
    })?;
    if let Some(err) = builder.error {
        return Err(err);
    }
    let mut docs = builder.docs;
    match docs.len() {
        0 => Ok(None),
        1 => Ok(docs.pop()),
        _ => Err(SyntaxError {
            pos: docs[1].pos,
            message: "a config file holds one YAML document; remove the second `---`".to_string(),
        }),
    }
}

enum Open {
    Seq(Node, Vec<Node>),
    Map(Node, Vec<(Node, Node)>, Option<Node>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<(Open, usize)>,
    docs: Vec<Node>,
    anchors: HashMap<usize, Node>,
    error: Option<SyntaxError>,
}

impl Builder {
    fn push_value(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some((Open::Seq(_, items), _)) => items.push(node),
            Some((Open::Map(_, entries, key), _)) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = Pos::from_marker(&mark);
        let shell = |kind| Node {
            kind,
            pos,
            raw: String::new(),
        };
        match ev {
            Event::Scalar(text, style, anchor, _tag) => {
                let kind = if style == TScalarStyle::Plain {
                    resolve_plain(&text)
                } else {
                    Kind::Str(text.clone())
                };
                self.push_value(
                    Node {
                        kind,
                        pos,
                        raw: text,
                    },
                    anchor,
                );
            }
            Event::SequenceStart(anchor, _) => {
                self.stack
                    .push((Open::Seq(shell(Kind::Null), Vec::new()), anchor));
            }
            Event::MappingStart(anchor, _) => {
                self.stack
                    .push((Open::Map(shell(Kind::Null), Vec::new(), None), anchor));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((open, anchor)) = self.stack.pop() {
                    let node = match open {
                        Open::Seq(mut n, items) => {
                            n.kind = Kind::Seq(items);
                            n
                        }
                        Open::Map(mut n, entries, _) => {
                            // The parser marks a block mapping where its first value
                            // starts; its first key is where a reader looks for it.
                            if let Some((k, _)) = entries.first() {
                                n.pos = n.pos.min(k.pos);
                            }
                            n.kind = Kind::Map(entries);
                            n
                        }
                    };
                    self.push_value(node, anchor);
                }
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(node) => {
                    let mut node = node.clone();
                    node.pos = pos;
                    self.push_value(node, 0);
                }
                None => {
                    if self.error.is_none() {
                        self.error = Some(SyntaxError {
                            pos,
                            message: "alias refers to an unknown anchor".to_string(),
                        });
                    }
                }
            },
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

/// YAML 1.2 core schema resolution of a plain scalar.
fn resolve_plain(text: &str) -> Kind {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Kind::Null,
        "true" | "True" | "TRUE" => return Kind::Bool(true),
        "false" | "False" | "FALSE" => return Kind::Bool(false),
        _ => {}
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(i) = text.parse::<i64>()
    {
        return Kind::Int(i);
    }
    if let Some(hex) = text.strip_prefix("0x")
        && let Ok(i) = i64::from_str_radix(hex, 16)
    {
        return Kind::Int(i);
    }
    if let Some(oct) = text.strip_prefix("0o")
        && let Ok(i) = i64::from_str_radix(oct, 8)
    {
        return Kind::Int(i);
    }
    let looks_float = text.bytes().any(|b| b.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
    if (looks_float && text.parse::<f64>().is_ok())
        || matches!(
            text,
            ".inf" | "-.inf" | "+.inf" | ".nan" | ".NaN" | ".NAN" | ".Inf" | ".INF"
        )
    {
        return Kind::Float(text.to_string());
    }
    Kind::Str(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_point_at_keys_and_values() {
        let doc = parse("name: web\nresources:\n  - type: file\n    mode: 0644\n")
            .unwrap()
            .unwrap();
        let Kind::Map(entries) = &doc.kind else {
            panic!("map expected")
        };
        assert_eq!(entries[0].0.pos, Pos { line: 1, col: 1 });
        assert_eq!(entries[0].1.pos, Pos { line: 1, col: 7 });
        let Kind::Seq(items) = &entries[1].1.kind else {
            panic!("seq expected")
        };
        let Kind::Map(res) = &items[0].kind else {
            panic!("map expected")
        };
        assert_eq!(res[1].0.pos, Pos { line: 4, col: 5 });
        assert_eq!(res[1].1.kind, Kind::Int(644));
        assert_eq!(res[1].1.raw, "0644");
    }

    #[test]
    fn plain_scalars_resolve_by_the_core_schema() {
        let cases = [
            ("~", Kind::Null),
            ("true", Kind::Bool(true)),
            ("False", Kind::Bool(false)),
            ("42", Kind::Int(42)),
            ("-7", Kind::Int(-7)),
            ("0x1f", Kind::Int(31)),
            ("1.5", Kind::Float("1.5".into())),
            ("yes", Kind::Str("yes".into())),
            ("1.2.3", Kind::Str("1.2.3".into())),
            ("'true'", Kind::Str("true".into())),
        ];
        for (src, want) in cases {
            let got = parse(&format!("k: {src}\n")).unwrap().unwrap();
            let Kind::Map(e) = got.kind else { panic!() };
            assert_eq!(e[0].1.kind, want, "{src}");
        }
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.pos.line >= 1, "{err:?}");
        let err = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(err.pos.line, 3);
    }

    #[test]
    fn aliases_copy_the_anchored_node() {
        let doc = parse("a: &x [1]\nb: *x\n").unwrap().unwrap();
        let Kind::Map(e) = doc.kind else { panic!() };
        assert_eq!(
            e[1].1.kind,
            Kind::Seq(vec![Node {
                kind: Kind::Int(1),
                pos: Pos { line: 1, col: 8 },
                raw: "1".into()
            }])
        );
    }
}
