//! The ARM template expression language: `[fn(args).member[index]]`.
//! A lexer/parser into an AST that remembers nothing but its shape; the
//! evaluator (`expr.rs`) walks it with the function table (`functions.rs`).
//!
//! Grammar, as Azure's template-expressions page describes it: a call
//! `name(arg, ...)` (names case-insensitive), string literals in single
//! quotes with `''` for a quote, integers (optionally negative), and
//! postfix member access `.name` and indexing `[expr]`, chained.

/// One expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Str(String),
    Int(i64),
    Call(String, Vec<Node>),
    Member(Box<Node>, String),
    Index(Box<Node>, Box<Node>),
}

/// How deep calls and indexes may nest in one expression (the evaluator's
/// own limit counts variables and functions too).
const MAX_DEPTH: u32 = super::expr::MAX_EVALUATION_DEPTH;

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
    depth: u32,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.at < self.s.len() && (self.s[self.at] as char).is_whitespace() {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.at).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        match self.peek() {
            Some(x) if x == c => {
                self.at += 1;
                Ok(())
            }
            other => Err(format!(
                "expected '{}' at position {}, found {}",
                c as char,
                self.at + 1,
                other
                    .map(|o| format!("'{}'", o as char))
                    .unwrap_or_else(|| "the end".into())
            )),
        }
    }

    fn expr(&mut self) -> Result<Node, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!(
                "the expression nests calls and indexes more than {MAX_DEPTH} levels deep"
            ));
        }
        let node = self.chain();
        self.depth -= 1;
        node
    }

    fn chain(&mut self) -> Result<Node, String> {
        let mut node = self.primary()?;
        loop {
            match self.peek() {
                Some(b'.') => {
                    self.at += 1;
                    self.ws();
                    let name = self.ident()?;
                    node = Node::Member(Box::new(node), name);
                }
                Some(b'[') => {
                    self.at += 1;
                    let index = self.expr()?;
                    self.expect(b']')?;
                    node = Node::Index(Box::new(node), Box::new(index));
                }
                _ => return Ok(node),
            }
        }
    }

    fn ident(&mut self) -> Result<String, String> {
        let start = self.at;
        while self.at < self.s.len() && {
            let c = self.s[self.at] as char;
            c.is_ascii_alphanumeric() || c == '_' || c == '$'
        } {
            self.at += 1;
        }
        if start == self.at {
            return Err(format!("expected a name at position {}", start + 1));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.at]).into_owned())
    }

    fn primary(&mut self) -> Result<Node, String> {
        match self.peek() {
            Some(b'\'') => {
                self.at += 1;
                let mut out = Vec::new();
                loop {
                    match self.s.get(self.at) {
                        None => return Err("a string literal is not closed with '".into()),
                        Some(b'\'') if self.s.get(self.at + 1) == Some(&b'\'') => {
                            out.push(b'\'');
                            self.at += 2;
                        }
                        Some(b'\'') => {
                            self.at += 1;
                            break;
                        }
                        Some(c) => {
                            out.push(*c);
                            self.at += 1;
                        }
                    }
                }
                Ok(Node::Str(String::from_utf8_lossy(&out).into_owned()))
            }
            Some(c) if c == b'-' || c.is_ascii_digit() => {
                let start = self.at;
                self.at += 1;
                while self.at < self.s.len() && self.s[self.at].is_ascii_digit() {
                    self.at += 1;
                }
                let text = String::from_utf8_lossy(&self.s[start..self.at]).into_owned();
                text.parse()
                    .map(Node::Int)
                    .map_err(|_| format!("'{text}' is not an integer"))
            }
            Some(_) => {
                let mut name = self.ident()?;
                // A user-defined function: `namespace.member(...)`.
                if self.s.get(self.at) == Some(&b'.') {
                    self.at += 1;
                    name = format!("{name}.{}", self.ident()?);
                }
                self.expect(b'(')?;
                let mut args = Vec::new();
                if self.peek() == Some(b')') {
                    self.at += 1;
                    return Ok(Node::Call(name, args));
                }
                loop {
                    args.push(self.expr()?);
                    match self.peek() {
                        Some(b',') => self.at += 1,
                        Some(b')') => {
                            self.at += 1;
                            return Ok(Node::Call(name, args));
                        }
                        _ => {
                            return Err(format!("expected ',' or ')' at position {}", self.at + 1))
                        }
                    }
                }
            }
            None => Err("the expression is empty".into()),
        }
    }
}

/// The expression inside `[...]`, or why it does not parse.
pub(crate) fn parse(inner: &str) -> Result<Node, String> {
    let mut p = Parser {
        s: inner.as_bytes(),
        at: 0,
        depth: 0,
    };
    let node = p.expr()?;
    if p.peek().is_some() {
        return Err(format!("unexpected text at position {}", p.at + 1));
    }
    Ok(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        assert_eq!(
            parse("concat('a''b', parameters( 'x' ), -3)").unwrap(),
            Node::Call(
                "concat".into(),
                vec![
                    Node::Str("a'b".into()),
                    Node::Call("parameters".into(), vec![Node::Str("x".into())]),
                    Node::Int(-3)
                ]
            )
        );
        assert_eq!(
            parse("resourceGroup().location").unwrap(),
            Node::Member(
                Box::new(Node::Call("resourceGroup".into(), vec![])),
                "location".into()
            )
        );
        assert!(matches!(
            parse("variables('a')[0]['k'].x").unwrap(),
            Node::Member(..)
        ));
        assert_eq!(
            parse("contoso.name('x')").unwrap(),
            Node::Call("contoso.name".into(), vec![Node::Str("x".into())])
        );
        for bad in ["concat('a'", "'open", "f(1 2)", "", "a.b", "a.b.c()"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nesting_is_limited_before_the_stack_is() {
        // 12,000 levels fit in ARM's 24,576 characters: refused by depth.
        let deep = format!("{}1{}", "f(".repeat(12_000), ")".repeat(12_000));
        let why = parse(&deep).unwrap_err();
        assert!(why.contains("more than 128 levels"), "{why}");
        let index = format!("a(){}", "[a()".repeat(200) + &"]".repeat(200));
        assert!(parse(&index).unwrap_err().contains("levels"));
        let fine = format!("{}1{}", "f(".repeat(100), ")".repeat(100));
        assert!(parse(&fine).is_ok());
    }
}
