//! The expression grammar of `parser.rs`, written out by hand.
//!
//! The nom parser stays the definition and gives every error message. This one only
//! produces the same tree faster: nom tries each of the ten precedence levels' operators
//! after every operand, behind `ws` wrappers and `alt` choices that re-run on backtracking,
//! and that was a quarter of a render's time. Each function below mirrors one combinator
//! of `parser.rs` (same ordered choices, same backtracking: a failed alternative leaves the
//! position where it was), and returns `None` where nom would fail. Callers use it first
//! and run nom on `None`, so a difference can only cost time, never change a result; the
//! tests compare the two on the specification's expressions and on generated ones.

use super::Node;

struct P<'a> {
    s: &'a str,
    b: &'a [u8],
}

type R<'a> = Option<(usize, Node<'a>)>;

fn is_ws(c: u8) -> bool {
    c == b' ' || c == b'\t' || c == b'\r' || c == b'\n'
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

impl<'a> P<'a> {
    fn at(&self, i: usize) -> Option<u8> {
        self.b.get(i).copied()
    }

    fn starts(&self, i: usize, t: &str) -> bool {
        self.b.get(i..).is_some_and(|r| r.starts_with(t.as_bytes()))
    }

    /// `multispace0`
    fn ws(&self, mut i: usize) -> usize {
        while self.at(i).is_some_and(is_ws) {
            i += 1;
        }
        i
    }

    fn ident_end(&self, i: usize) -> Option<usize> {
        if !self.at(i).is_some_and(is_ident_start) {
            return None;
        }
        let mut j = i + 1;
        while self.at(j).is_some_and(is_ident_char) {
            j += 1;
        }
        Some(j)
    }

    /// `ident_str`: ws(recognize(ident))
    fn ident_str(&self, i: usize) -> Option<(usize, &'a str)> {
        let i = self.ws(i);
        let j = self.ident_end(i)?;
        Some((self.ws(j), &self.s[i..j]))
    }

    /// `string_str`: ws(recognize(quoted)) with the quotes stripped
    fn string_str(&self, i: usize) -> Option<(usize, &'a str)> {
        let i = self.ws(i);
        let q = self.at(i).filter(|c| *c == b'"' || *c == b'\'')?;
        let close = self.b[i + 1..].iter().position(|c| *c == q)? + i + 1;
        Some((self.ws(close + 1), &self.s[i + 1..close]))
    }

    /// `number`
    fn number(&self, i: usize) -> R<'a> {
        let i = self.ws(i);
        let digits = |mut j: usize| {
            let start = j;
            while self.at(j).is_some_and(|c| c.is_ascii_digit()) {
                j += 1;
            }
            (j > start).then_some(j)
        };
        let mut j = digits(i)?;
        if self.at(j) == Some(b'.') {
            if let Some(k) = digits(j + 1) {
                j = k;
            }
        }
        Some((self.ws(j), Node::Number(&self.s[i..j])))
    }

    /// `literal`: true, false or null, not followed by an identifier character
    fn literal(&self, i: usize) -> R<'a> {
        let i = self.ws(i);
        for (word, node) in [("true", Node::True), ("false", Node::False), ("null", Node::Null)] {
            if self.starts(i, word) {
                let j = i + word.len();
                if self.at(j).is_some_and(is_ident_char) {
                    return None;
                }
                return Some((self.ws(j), node));
            }
        }
        None
    }

    fn atom(&self, i: usize) -> R<'a> {
        self.number(i)
            .or_else(|| self.literal(i))
            .or_else(|| self.ident_str(i).map(|(j, s)| (j, Node::Ident(s))))
            .or_else(|| self.string_str(i).map(|(j, s)| (j, Node::String(s))))
    }

    /// `separated_list0(ws(tag(",")), item)` between `open` and `close` (the caller's
    /// `ws(delimited(..))`)
    fn list<T>(&self, i: usize, open: u8, close: u8, item: impl Fn(usize) -> Option<(usize, T)>) -> Option<(usize, Vec<T>)> {
        let i = self.ws(i);
        if self.at(i) != Some(open) {
            return None;
        }
        let mut pos = i + 1;
        let mut items = Vec::new();
        if let Some((j, first)) = item(pos) {
            items.push(first);
            pos = j;
            loop {
                let sep = self.ws(pos);
                if self.at(sep) != Some(b',') {
                    break;
                }
                match item(self.ws(sep + 1)) {
                    Some((j, next)) => {
                        items.push(next);
                        pos = j;
                    }
                    None => break,
                }
            }
        }
        if self.at(pos) != Some(close) {
            return None;
        }
        Some((self.ws(pos + 1), items))
    }

    fn value(&self, i: usize) -> R<'a> {
        self.atom(i)
            .or_else(|| {
                // parens
                let k = self.ws(i);
                if self.at(k) != Some(b'(') {
                    return None;
                }
                let (j, node) = self.expression(k + 1)?;
                (self.at(j) == Some(b')')).then(|| (self.ws(j + 1), node))
            })
            .or_else(|| self.list(i, b'[', b']', |p| self.expression(p)).map(|(j, v)| (j, Node::Array(v))))
            .or_else(|| {
                self.list(i, b'{', b'}', |p| {
                    let (j, key) = self.string_str(p).or_else(|| self.ident_str(p))?;
                    if self.at(j) != Some(b':') {
                        return None;
                    }
                    let (j, v) = self.expression(self.ws(j + 1))?;
                    Some((self.ws(j), (key, v)))
                })
                .map(|(j, v)| (j, Node::Object(v)))
            })
    }

    fn unary(&self, i: usize) -> R<'a> {
        let k = self.ws(i);
        let op = match self.at(k) {
            Some(b'!') if self.at(k + 1) != Some(b'=') => Some(&self.s[k..k + 1]),
            Some(b'-') | Some(b'+') => Some(&self.s[k..k + 1]),
            _ => None,
        };
        if let Some(op) = op {
            if let Some((j, v)) = self.value(k + 1) {
                return Some((self.ws(j), Node::Un(op, Box::new(v))));
            }
        }
        self.value(i)
    }

    /// One `[..]`, `[a:b]`, `.p` or `(..)` after an operand.
    fn suffix(&self, acc: Node<'a>, i: usize) -> Result<(usize, Node<'a>), Node<'a>> {
        let k = self.ws(i);
        match self.at(k) {
            Some(b'[') => {
                // `[i]`, else `[a:b]`; both start with the same optional expression
                let (j, a) = match self.expression(k + 1) {
                    Some((j, a)) if self.at(j) == Some(b']') => {
                        return Ok((self.ws(j + 1), Node::Index(Box::new(acc), Box::new(a))))
                    }
                    Some((j, a)) => (j, Some(Box::new(a))),
                    None => (k + 1, None),
                };
                if self.at(j) != Some(b':') {
                    return Err(acc);
                }
                let (j, b) = match self.expression(j + 1) {
                    Some((j, b)) => (j, Some(Box::new(b))),
                    None => (j + 1, None),
                };
                if self.at(j) != Some(b']') {
                    return Err(acc);
                }
                Ok((self.ws(j + 1), Node::Slice(Box::new(acc), a, b)))
            }
            Some(b'.') => match self.ident_str(k + 1) {
                Some((j, p)) => Ok((self.ws(j), Node::Dot(Box::new(acc), p))),
                None => Err(acc),
            },
            Some(b'(') => match self.list(k, b'(', b')', |p| self.expression(p)) {
                Some((j, args)) => Ok((self.ws(j), Node::Func(Box::new(acc), args))),
                None => Err(acc),
            },
            _ => Err(acc),
        }
    }

    fn index_or_fn(&self, i: usize) -> R<'a> {
        let (mut i, mut acc) = self.unary(i)?;
        loop {
            match self.suffix(acc, i) {
                Ok((j, node)) => {
                    acc = node;
                    i = j;
                }
                Err(node) => return Some((i, node)),
            }
        }
    }

    fn exp(&self, i: usize) -> R<'a> {
        let (i, lhs) = self.index_or_fn(i)?;
        if self.starts(i, "**") {
            if let Some((j, rhs)) = self.exp(i + 2) {
                return Some((j, Node::Op(Box::new(lhs), &self.s[i..i + 2], Box::new(rhs))));
            }
        }
        Some((i, lhs))
    }

    /// The operator of precedence `level` at `i`, if any: its length.
    fn op(&self, level: usize, i: usize) -> Option<usize> {
        let (a, b) = (self.at(i)?, self.at(i + 1));
        match level {
            // muldiv: `*` (not `**`), `/`
            0 => match a {
                b'*' if b != Some(b'*') => Some(1),
                b'/' => Some(1),
                _ => None,
            },
            1 => matches!(a, b'+' | b'-').then_some(1),
            // `<=`, `>=`, then `<` and `>` not followed by `=`
            2 => match (a, b) {
                (b'<' | b'>', Some(b'=')) => Some(2),
                (b'<' | b'>', _) => Some(1),
                _ => None,
            },
            3 => matches!((a, b), (b'=', Some(b'=')) | (b'!', Some(b'='))).then_some(2),
            4 => (self.starts(i, "in") && !self.at(i + 2).is_some_and(is_ident_char)).then_some(2),
            5 => self.starts(i, "&&").then_some(2),
            6 => self.starts(i, "||").then_some(2),
            _ => unreachable!(),
        }
    }

    /// The left-associative levels of `binop!`, from muldiv (0) to or (6).
    fn binop(&self, level: usize, i: usize) -> R<'a> {
        let higher = |p| if level == 0 { self.exp(p) } else { self.binop(level - 1, p) };
        let (mut i, mut acc) = higher(i)?;
        while let Some(len) = self.op(level, i) {
            match higher(i + len) {
                Some((j, rhs)) => {
                    acc = Node::Op(Box::new(acc), &self.s[i..i + len], Box::new(rhs));
                    i = j;
                }
                None => break,
            }
        }
        Some((i, acc))
    }

    fn expression(&self, i: usize) -> R<'a> {
        self.binop(6, i)
    }
}

/// What `parse_all` parses, or `None` where it fails.
pub(crate) fn parse_all(input: &str) -> Option<Node<'_>> {
    let p = P { s: input, b: input.as_bytes() };
    match p.expression(0)? {
        (end, node) if end == input.len() => Some(node),
        _ => None,
    }
}

/// What `parse_partial` parses, with the rest of the input, or `None` where it fails.
pub(crate) fn parse_partial(input: &str) -> Option<(Node<'_>, &str)> {
    let p = P { s: input, b: input.as_bytes() };
    p.expression(0).map(|(end, node)| (node, &input[end..]))
}

#[cfg(test)]
mod tests {
    use super::super::parser;

    fn same(input: &str) {
        let nom = parser::nom_parse_partial(input).ok();
        let fast = super::parse_partial(input);
        assert_eq!(fast, nom, "parse_partial({input:?})");
        // `None` where nom succeeds is allowed (callers fall back) but would be a missed
        // speed-up; nowhere in these inputs
        assert_eq!(super::parse_all(input), parser::nom_parse_all(input).ok(), "parse_all({input:?})");
    }

    #[test]
    fn the_same_trees_as_nom() {
        for input in [
            "a", "1", "1.5", "1.x", "1.", "'s'", "\"d\"", "'un", "true", "trueish", "null_", "_x9",
            "a.b.c", "a . b", "a[0]", "a[1:2]", "a[:2]", "a[1:]", "a[:]", "a[ 1 ]", "a[1:2:3]",
            "f()", "f(1, 2)", "f (1)", "f(1,)", "a.b(c)[d].e", "[1, 2, [3]]", "[]", "[,]", "[1,]",
            "{a: 1, 'b': 2, \"c\": [3]}", "{}", "{a:}", "{a 1}", "(1)", "((a))", "(a", "a)",
            "-1", "+a", "!a", "!!a", "- -a", "-a.b", "!=a", "a != b", "a == b", "a = b",
            "1 + 2 * 3", "1 * 2 + 3", "2 ** 3 ** 2", "2**-1", "a ** b * c", "a * * b", "a / b / c",
            "a < b", "a <= b", "a > b", "a >= b", "a <> b", "a < = b", "a in b", "a inb", "a in[1]",
            "a index", "a && b || c", "a || b && c", "a & b", "a | b", "a +", "a + }", "a}", "a + b}",
            " a ", "\ta\n", "", " ", "}", "a b", "a.1", "a.in", "in", "in a", "a in", "x + 'y'",
            "a[b[c]]", "f(g(h(1)))", "{a: {b: {c: 1}}}.a.b", "'a' + \"b\"", "1 - -2", "a--b",
            "a ** !b", "!a == b", "-(1)", "a.b.c == 'try' && d[0] in ['x', 'y']",
        ] {
            same(input);
        }
    }

    /// Expressions made of the grammar's tokens at random (a fixed-seed xorshift, so a
    /// failure reproduces), compared with nom's parse.
    #[test]
    fn the_same_trees_as_nom_on_generated_expressions() {
        const TOKENS: &[&str] = &[
            "a", "b1", "_c", "in", "true", "false", "null", "1", "2.5", "'s'", "\"t\"", "'", "\"",
            "(", ")", "[", "]", "{", "}", ",", ":", ".", "+", "-", "*", "**", "/", "<", ">", "<=",
            ">=", "=", "==", "!=", "!", "&&", "||", "&", " ", "\n", "}", "x", "y.z", "f(", "[0]",
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut parsed = 0;
        for _ in 0..100_000 {
            let len = 1 + (next() % 9) as usize;
            let input: String = (0..len).map(|_| TOKENS[(next() % TOKENS.len() as u64) as usize]).collect();
            let nom = parser::nom_parse_partial(&input).ok();
            let fast = super::parse_partial(&input);
            assert_eq!(fast, nom, "parse_partial({input:?})");
            assert_eq!(super::parse_all(&input), parser::nom_parse_all(&input).ok(), "parse_all({input:?})");
            parsed += nom.is_some() as usize;
        }
        // most generated inputs parse at least partly, so the comparison is not all `None`
        assert!(parsed > 25_000, "only {} parsed", parsed);
    }
}
