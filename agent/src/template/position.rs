//! The line and column of a JSON path (`resources[2].properties.x`) in the
//! template's text, for InvalidTemplate messages the way ARM gives them
//! ("... at line '12' and column '9' ...").

use crate::model::AzureError;

/// Adds the place of `e.target` in `text` to the message, if found.
pub(super) fn locate(mut e: AzureError, text: &str) -> AzureError {
    let Some(target) = e.target.clone() else {
        return e;
    };
    if let Some((line, col)) = find(text, &target) {
        e.message = format!(
            "{} (template line '{line}' and column '{col}')",
            e.message.trim_end()
        );
    }
    e
}

#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// `resources[2].properties.subnets[0].id` -> steps; `[copy 3]` and the
/// like (loop instances) end the path at their resource.
fn steps(path: &str) -> Vec<Step> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Step::Key(key.to_string()));
        }
        for idx in rest.split('[').filter(|x| !x.is_empty()) {
            match idx.trim_end_matches(']').parse() {
                Ok(i) => out.push(Step::Index(i)),
                Err(_) => return out,
            }
        }
    }
    out
}

/// Byte offset -> 1-based (line, column).
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    (line, col)
}

struct Scanner<'a> {
    b: &'a [u8],
    at: usize,
}

impl Scanner<'_> {
    fn ws(&mut self) {
        while self.at < self.b.len() && (self.b[self.at] as char).is_whitespace() {
            self.at += 1;
        }
        // Comments, which ARM templates may carry.
        if self.b[self.at..].starts_with(b"//") {
            while self.at < self.b.len() && self.b[self.at] != b'\n' {
                self.at += 1;
            }
            self.ws();
        } else if self.b[self.at..].starts_with(b"/*") {
            while self.at + 1 < self.b.len() && !self.b[self.at..].starts_with(b"*/") {
                self.at += 1;
            }
            self.at += 2;
            self.ws();
        }
    }

    fn string(&mut self) -> Option<String> {
        if self.b.get(self.at) != Some(&b'"') {
            return None;
        }
        let start = self.at;
        self.at += 1;
        while self.at < self.b.len() && self.b[self.at] != b'"' {
            if self.b[self.at] == b'\\' {
                self.at += 1;
            }
            self.at += 1;
        }
        self.at += 1;
        serde_json::from_slice(&self.b[start..self.at.min(self.b.len())]).ok()
    }

    /// Skips one value.
    fn skip(&mut self) -> Option<()> {
        self.ws();
        match self.b.get(self.at)? {
            b'"' => self.string().map(|_| ()),
            b'{' | b'[' => {
                let mut depth = 0;
                while self.at < self.b.len() {
                    match self.b[self.at] {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.at += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.at += 1;
                }
                None
            }
            _ => {
                while self.at < self.b.len() && !b",}]".contains(&self.b[self.at]) {
                    self.at += 1;
                }
                Some(())
            }
        }
    }

    /// Moves to the value at `step` inside the container at the cursor.
    fn enter(&mut self, step: &Step) -> Option<()> {
        self.ws();
        match (self.b.get(self.at)?, step) {
            (b'{', Step::Key(k)) => {
                self.at += 1;
                loop {
                    self.ws();
                    let key = self.string()?;
                    self.ws();
                    if self.b.get(self.at) != Some(&b':') {
                        return None;
                    }
                    self.at += 1;
                    self.ws();
                    if key.eq_ignore_ascii_case(k) {
                        return Some(());
                    }
                    self.skip()?;
                    self.ws();
                    match self.b.get(self.at)? {
                        b',' => self.at += 1,
                        _ => return None,
                    }
                }
            }
            (b'[', Step::Index(i)) => {
                self.at += 1;
                for _ in 0..*i {
                    self.skip()?;
                    self.ws();
                    if self.b.get(self.at) != Some(&b',') {
                        return None;
                    }
                    self.at += 1;
                }
                self.ws();
                Some(())
            }
            _ => None,
        }
    }
}

/// The line and column where the value at `path` starts (or the deepest
/// part of the path that exists).
pub(super) fn find(text: &str, path: &str) -> Option<(usize, usize)> {
    let mut s = Scanner {
        b: text.as_bytes(),
        at: 0,
    };
    let mut found = None;
    for step in steps(path) {
        if s.enter(&step).is_none() {
            break;
        }
        found = Some(s.at);
    }
    found.map(|at| line_col(text, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_values() {
        let text = "{\n  \"resources\": [\n    {\"name\": \"a\"},\n    {\n      \"name\": \"[bad(]\"\n    }\n  ]\n}\n";
        assert_eq!(find(text, "resources[1].name"), Some((5, 15)));
        assert_eq!(find(text, "resources[0]"), Some((3, 5)));
        // A path that goes further than the text: the deepest part found.
        assert_eq!(find(text, "resources[1].properties.x"), Some((4, 5)));
        assert_eq!(find(text, "nothing"), None);
    }
}
