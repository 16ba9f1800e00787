//! Splits a `when:` expression into tokens, each with its byte offset in the source.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::ParseError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum TokenKind {
    Str(String),
    Int(i64),
    Bool(bool),
    /// A name, possibly dotted: `os_family`, `facts.os.name`.
    Ident(String),
    LParen,
    RParen,
    Comma,
    /// `!` or `not`.
    Not,
    /// `&&` or `and`.
    And,
    /// `||` or `or`.
    Or,
    EqEq,
    NotEq,
    Lt,
    Le,
    Gt,
    Ge,
    Eof,
}

impl TokenKind {
    /// How the token is named in "found ..." error messages.
    pub(super) fn describe(&self) -> String {
        let text = match self {
            TokenKind::Str(_) => return String::from("a string"),
            TokenKind::Int(_) => return String::from("a number"),
            TokenKind::Eof => return String::from("the end of the condition"),
            TokenKind::Bool(true) => "true",
            TokenKind::Bool(false) => "false",
            TokenKind::Ident(name) => return format!("'{name}'"),
            TokenKind::LParen => "(",
            TokenKind::RParen => ")",
            TokenKind::Comma => ",",
            TokenKind::Not => "!",
            TokenKind::And => "&&",
            TokenKind::Or => "||",
            TokenKind::EqEq => "==",
            TokenKind::NotEq => "!=",
            TokenKind::Lt => "<",
            TokenKind::Le => "<=",
            TokenKind::Gt => ">",
            TokenKind::Ge => ">=",
        };
        format!("'{text}'")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Token {
    pub(super) kind: TokenKind,
    /// Byte offset of the token's first character.
    pub(super) offset: usize,
}

/// Tokenizes `src`. The last token is always `Eof`, at `src.len()`.
pub(super) fn lex(src: &str) -> Result<Vec<Token>, ParseError> {
    let mut lexer = Lexer { src, pos: 0 };
    let mut tokens = Vec::new();
    loop {
        lexer.skip_whitespace();
        let offset = lexer.pos;
        let Some(c) = lexer.peek() else {
            tokens.push(Token {
                kind: TokenKind::Eof,
                offset,
            });
            return Ok(tokens);
        };
        let kind = lexer.token(c)?;
        tokens.push(Token { kind, offset });
    }
}

struct Lexer<'a> {
    src: &'a str,
    /// Byte offset of the next character; always on a character boundary.
    pos: usize,
}

impl Lexer<'_> {
    fn rest(&self) -> &str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.rest().chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Consumes `second` if it comes next.
    fn eat(&mut self, second: char) -> bool {
        if self.peek() == Some(second) {
            self.pos += second.len_utf8();
            true
        } else {
            false
        }
    }

    fn error(&self, offset: usize, message: String) -> ParseError {
        ParseError::new(self.src, offset, message)
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    /// Lexes the token starting with `c`, which is not whitespace.
    fn token(&mut self, c: char) -> Result<TokenKind, ParseError> {
        let start = self.pos;
        if c == '\'' || c == '"' {
            return self.string(c);
        }
        if c.is_ascii_digit()
            || (c == '-' && self.peek_second().is_some_and(|d| d.is_ascii_digit()))
        {
            return self.integer();
        }
        if c.is_ascii_alphabetic() || c == '_' {
            return self.word();
        }
        self.bump();
        let kind = match c {
            '(' => TokenKind::LParen,
            ')' => TokenKind::RParen,
            ',' => TokenKind::Comma,
            '!' if self.eat('=') => TokenKind::NotEq,
            '!' => TokenKind::Not,
            '=' if self.eat('=') => TokenKind::EqEq,
            '<' if self.eat('=') => TokenKind::Le,
            '<' => TokenKind::Lt,
            '>' if self.eat('=') => TokenKind::Ge,
            '>' => TokenKind::Gt,
            '&' if self.eat('&') => TokenKind::And,
            '|' if self.eat('|') => TokenKind::Or,
            '=' => return Err(self.error(start, String::from("use '==' to compare values"))),
            '&' => {
                return Err(self.error(
                    start,
                    String::from("use '&&' or 'and' to combine conditions"),
                ));
            }
            '|' => {
                return Err(self.error(
                    start,
                    String::from("use '||' or 'or' to combine conditions"),
                ));
            }
            '-' => return Err(self.error(start, String::from("expected a number right after '-'"))),
            other => {
                return Err(self.error(
                    start,
                    format!("unexpected character '{}'; remove it", visible(other)),
                ));
            }
        };
        Ok(kind)
    }

    /// Lexes a quoted string; `quote` is the opening quote, not yet consumed.
    fn string(&mut self, quote: char) -> Result<TokenKind, ParseError> {
        let start = self.pos;
        self.bump();
        let unterminated = |lexer: &Self| {
            lexer.error(
                start,
                format!("this string is never closed; end it with {quote}"),
            )
        };
        let mut value = String::new();
        loop {
            let escape_at = self.pos;
            match self.bump() {
                None => return Err(unterminated(self)),
                Some(c) if c == quote => return Ok(TokenKind::Str(value)),
                Some('\\') => {
                    let escaped = match self.bump() {
                        Some('\\') => '\\',
                        Some('\'') => '\'',
                        Some('"') => '"',
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some(other) => {
                            return Err(self.error(
                                escape_at,
                                format!(
                                    "unknown escape '\\{}' in a string; the escapes are \\\\ \\' \\\" \\n and \\t",
                                    visible(other)
                                ),
                            ));
                        }
                        None => return Err(unterminated(self)),
                    };
                    value.push(escaped);
                }
                Some(c) => value.push(c),
            }
        }
    }

    /// Lexes an integer with an optional leading `-`.
    fn integer(&mut self) -> Result<TokenKind, ParseError> {
        let start = self.pos;
        self.eat('-');
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        let text = self.src.get(start..self.pos).unwrap_or("");
        match text.parse::<i64>() {
            Ok(value) => Ok(TokenKind::Int(value)),
            Err(_) => Err(self.error(
                start,
                format!(
                    "the number {text} is too large; numbers must lie between {} and {}",
                    i64::MIN,
                    i64::MAX
                ),
            )),
        }
    }

    /// Lexes a keyword or a dotted name.
    fn word(&mut self) -> Result<TokenKind, ParseError> {
        let start = self.pos;
        self.identifier_segment();
        while self.peek() == Some('.') {
            let dot = self.pos;
            self.bump();
            if !self
                .peek()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            {
                return Err(self.error(
                    dot,
                    String::from("expected a name after '.', e.g. facts.os_family"),
                ));
            }
            self.identifier_segment();
        }
        let word = self.src.get(start..self.pos).unwrap_or("");
        let kind = match word {
            "and" => TokenKind::And,
            "or" => TokenKind::Or,
            "not" => TokenKind::Not,
            "true" => TokenKind::Bool(true),
            "false" => TokenKind::Bool(false),
            _ => TokenKind::Ident(String::from(word)),
        };
        Ok(kind)
    }

    fn identifier_segment(&mut self) {
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.bump();
        }
    }
}

/// Shows a character in an error message, escaped if it would not be visible.
fn visible(c: char) -> String {
    if c.is_control() || c.is_whitespace() {
        c.escape_default().collect()
    } else {
        String::from(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    /// Renders the tokens of `src` compactly, or its error, for comparison.
    fn render(src: &str) -> String {
        match lex(src) {
            Ok(tokens) => tokens
                .iter()
                .map(|t| format!("{}@{}", t.kind.describe(), t.offset))
                .collect::<Vec<_>>()
                .join(" "),
            Err(e) => format!("error at {}: {}", e.offset, e.message),
        }
    }

    fn check(cases: &[(&str, &str)]) {
        for (src, expected) in cases {
            assert_eq!(render(src), expected.to_string(), "lex({src:?})");
        }
    }

    #[test]
    fn tokens() {
        check(&[
            ("", "the end of the condition@0"),
            (
                "a && b || !c",
                "'a'@0 '&&'@2 'b'@5 '||'@7 '!'@10 'c'@11 the end of the condition@12",
            ),
            (
                "and or not true false",
                "'&&'@0 '||'@4 '!'@7 'true'@11 'false'@16 the end of the condition@21",
            ),
            (
                "== != < <= > >=",
                "'=='@0 '!='@3 '<'@6 '<='@8 '>'@11 '>='@13 the end of the condition@15",
            ),
            (
                "facts.os.name",
                "'facts.os.name'@0 the end of the condition@13",
            ),
            ("-12 7", "a number@0 a number@4 the end of the condition@5"),
            ("x>-1", "'x'@0 '>'@1 a number@2 the end of the condition@4"),
            (
                "'a' \"b\"",
                "a string@0 a string@4 the end of the condition@7",
            ),
            ("AND", "'AND'@0 the end of the condition@3"),
        ]);
    }

    #[test]
    fn errors() {
        check(&[
            ("a = b", "error at 2: use '==' to compare values"),
            (
                "a & b",
                "error at 2: use '&&' or 'and' to combine conditions",
            ),
            (
                "a | b",
                "error at 2: use '||' or 'or' to combine conditions",
            ),
            ("- 1", "error at 0: expected a number right after '-'"),
            ("a # b", "error at 2: unexpected character '#'; remove it"),
            ("é", "error at 0: unexpected character 'é'; remove it"),
            (
                "\u{7}",
                "error at 0: unexpected character '\\u{7}'; remove it",
            ),
            (
                "'abc",
                "error at 0: this string is never closed; end it with '",
            ),
            (
                "x == \"abc",
                "error at 5: this string is never closed; end it with \"",
            ),
            (
                "'a\\qb'",
                "error at 2: unknown escape '\\q' in a string; the escapes are \\\\ \\' \\\" \\n and \\t",
            ),
            (
                "'a\\",
                "error at 0: this string is never closed; end it with '",
            ),
            (
                "99999999999999999999",
                "error at 0: the number 99999999999999999999 is too large; \
                 numbers must lie between -9223372036854775808 and 9223372036854775807",
            ),
            (
                "facts.",
                "error at 5: expected a name after '.', e.g. facts.os_family",
            ),
            (
                "facts.1",
                "error at 5: expected a name after '.', e.g. facts.os_family",
            ),
        ]);
    }

    #[test]
    fn string_values() {
        for (src, expected) in [
            (r"'it\'s'", "it's"),
            (r#""say \"hi\"""#, "say \"hi\""),
            (r"'a\\b\n\t'", "a\\b\n\t"),
            ("'é ü'", "é ü"),
        ] {
            let tokens = lex(src).unwrap_or_default();
            let value = match tokens.first().map(|t| &t.kind) {
                Some(TokenKind::Str(s)) => s.clone(),
                _ => String::new(),
            };
            assert_eq!(value, expected, "lex({src:?})");
        }
        assert_eq!(
            lex("-9223372036854775808")
                .ok()
                .and_then(|t| t.first().cloned())
                .map(|t| t.kind),
            Some(TokenKind::Int(i64::MIN))
        );
    }
}
