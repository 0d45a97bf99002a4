//! Just enough of SQLite's tokenizer to find the column definitions of a `CREATE TABLE`
//! statement and predict the text `ALTER TABLE … ADD/DROP COLUMN` leaves in `sqlite_schema`.

/// What kind of token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A bare word (keyword or identifier).
    Word,
    /// A quoted identifier: `"…"`, `` `…` `` or `[…]`.
    Quoted,
    /// A string literal `'…'`.
    Str,
    /// A blob literal `X'…'`.
    Blob,
    /// A number.
    Number,
    /// Any other character (punctuation, operators).
    Punct,
}

/// One token: its kind and byte range in the statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    /// What kind of token.
    pub kind: Kind,
    /// Byte offset of its first character.
    pub start: usize,
    /// Byte offset just past it.
    pub end: usize,
}

/// The tokens of `sql`, without whitespace and comments.
pub fn tokenize(sql: &str) -> Vec<Token> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                i += 1;
            }
            i = (i + 2).min(b.len());
            continue;
        }
        let kind;
        if (c == b'x' || c == b'X') && b.get(i + 1) == Some(&b'\'') {
            i = skip_quoted(b, i + 1, b'\'');
            kind = Kind::Blob;
        } else if c == b'\'' {
            i = skip_quoted(b, i, b'\'');
            kind = Kind::Str;
        } else if c == b'"' || c == b'`' {
            i = skip_quoted(b, i, c);
            kind = Kind::Quoted;
        } else if c == b'[' {
            while i < b.len() && b[i] != b']' {
                i += 1;
            }
            i = (i + 1).min(b.len());
            kind = Kind::Quoted;
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_') {
                // exponent sign: 1e-5
                if (b[i] == b'e' || b[i] == b'E') && matches!(b.get(i + 1), Some(b'+') | Some(b'-'))
                {
                    i += 1;
                }
                i += 1;
            }
            kind = Kind::Number;
        } else if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 || c == b'$' {
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80 || b[i] == b'$')
            {
                i += 1;
            }
            kind = Kind::Word;
        } else {
            i += 1;
            kind = Kind::Punct;
        }
        out.push(Token {
            kind,
            start,
            end: i,
        });
    }
    out
}

/// Past the closing `q` of a literal opened at `i` (a doubled `q` is part of it).
fn skip_quoted(b: &[u8], mut i: usize, q: u8) -> usize {
    i += 1;
    while i < b.len() {
        if b[i] == q {
            if b.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    i
}

/// The identifier a token names, without its quotes.
pub fn unquote(s: &str) -> String {
    let b = s.as_bytes();
    if b.len() >= 2 {
        match (b[0], b[b.len() - 1]) {
            (b'"', b'"') => return s[1..s.len() - 1].replace("\"\"", "\""),
            (b'`', b'`') => return s[1..s.len() - 1].replace("``", "`"),
            (b'[', b']') => return s[1..s.len() - 1].to_string(),
            (b'\'', b'\'') => return s[1..s.len() - 1].replace("''", "'"),
            _ => {}
        }
    }
    s.to_string()
}

/// One item of a `CREATE TABLE` column list: a column definition or a table constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Byte offset of its first token (the column name, for a column).
    pub start: usize,
    /// Byte offset just past its last token.
    pub end: usize,
    /// Whether it is a table constraint (CONSTRAINT, PRIMARY, UNIQUE, CHECK, FOREIGN).
    pub constraint: bool,
    /// The column name (unquoted), for a column definition.
    pub name: String,
    /// Upper-cased bare words of the item, to look for PRIMARY, UNIQUE, CHECK…
    pub words: Vec<String>,
}

/// The column list of a `CREATE TABLE name (…) …` statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTable {
    /// The items between the parentheses, in order.
    pub items: Vec<Item>,
    /// Where `ALTER TABLE ADD COLUMN` inserts text: the comma before the first table
    /// constraint, or the closing parenthesis (SQLite's `addColOffset`).
    pub add_col_offset: usize,
    /// Upper-cased bare words after the closing parenthesis (WITHOUT, ROWID, STRICT).
    pub options: Vec<String>,
}

impl CreateTable {
    /// The column definitions (not the table constraints).
    pub fn columns(&self) -> impl Iterator<Item = &Item> {
        self.items.iter().filter(|i| !i.constraint)
    }

    /// Whether the table was declared `WITHOUT ROWID`.
    pub fn without_rowid(&self) -> bool {
        self.options.iter().any(|w| w == "WITHOUT")
    }

    /// Whether the table was declared `STRICT`.
    pub fn strict(&self) -> bool {
        self.options.iter().any(|w| w == "STRICT")
    }
}

/// Splits the column list of a `CREATE TABLE` statement; `None` for anything else
/// (`CREATE TABLE … AS SELECT`, virtual tables, text it cannot follow).
pub fn create_table(sql: &str) -> Option<CreateTable> {
    let tokens = tokenize(sql);
    let word = |t: &Token| t.kind == Kind::Word;
    let upper = |t: &Token| sql[t.start..t.end].to_ascii_uppercase();
    let mut i = 0;
    // CREATE [TEMP] TABLE [IF NOT EXISTS] name [. name] (
    if !tokens
        .first()
        .is_some_and(|t| word(t) && upper(t) == "CREATE")
    {
        return None;
    }
    while i < tokens.len() && !(word(&tokens[i]) && upper(&tokens[i]) == "TABLE") {
        i += 1;
    }
    while i < tokens.len()
        && !(tokens[i].kind == Kind::Punct && &sql[tokens[i].start..tokens[i].end] == "(")
    {
        if word(&tokens[i]) && upper(&tokens[i]) == "AS" {
            return None;
        }
        i += 1;
    }
    i += 1;
    let mut depth = 1;
    let mut items = Vec::new();
    let mut item_start: Option<usize> = None;
    let mut commas: Vec<usize> = Vec::new();
    let mut close = None;
    while i < tokens.len() {
        let t = tokens[i];
        let text = &sql[t.start..t.end];
        if t.kind == Kind::Punct && text == "(" {
            depth += 1;
        } else if t.kind == Kind::Punct && text == ")" {
            depth -= 1;
            if depth == 0 {
                if let Some(s) = item_start.take() {
                    items.push((s, i));
                }
                close = Some(i);
                break;
            }
        } else if t.kind == Kind::Punct && text == "," && depth == 1 {
            if let Some(s) = item_start.take() {
                items.push((s, i));
            }
            commas.push(t.start);
            i += 1;
            continue;
        }
        if item_start.is_none() {
            item_start = Some(i);
        }
        i += 1;
    }
    let close = close?;
    let mut out = Vec::new();
    for (s, e) in items {
        let first = tokens[s];
        let words: Vec<String> = tokens[s..e].iter().filter(|t| word(t)).map(upper).collect();
        let constraint = first.kind == Kind::Word
            && matches!(
                upper(&first).as_str(),
                "CONSTRAINT" | "PRIMARY" | "UNIQUE" | "CHECK" | "FOREIGN"
            );
        out.push(Item {
            start: first.start,
            end: tokens[e - 1].end,
            constraint,
            name: unquote(&sql[first.start..first.end]),
            words,
        });
    }
    let add_col_offset = match out.iter().position(|it| it.constraint) {
        Some(k) => {
            let start = out[k].start;
            commas.iter().rev().find(|&&c| c < start).copied()?
        }
        None => tokens[close].start,
    };
    let options = tokens[close + 1..]
        .iter()
        .filter(|t| word(t))
        .map(upper)
        .collect();
    Some(CreateTable {
        items: out,
        add_col_offset,
        options,
    })
}

/// The `sqlite_schema.sql` text SQLite leaves after `ALTER TABLE … ADD COLUMN def`.
pub fn after_add_column(sql: &str, def: &str) -> Option<String> {
    let t = create_table(sql)?;
    let off = t.add_col_offset;
    let def = def.trim_end_matches(|c: char| c == ';' || c.is_ascii_whitespace());
    Some(format!("{}, {}{}", &sql[..off], def, &sql[off..]))
}

/// The `sqlite_schema.sql` text SQLite leaves after `ALTER TABLE … DROP COLUMN name`.
pub fn after_drop_column(sql: &str, name: &str) -> Option<String> {
    let t = create_table(sql)?;
    let cols: Vec<&Item> = t.columns().collect();
    let k = cols
        .iter()
        .position(|c| c.name.eq_ignore_ascii_case(name))?;
    if k + 1 < cols.len() {
        Some(format!(
            "{}{}",
            &sql[..cols[k].start],
            &sql[cols[k + 1].start..]
        ))
    } else {
        let comma = sql[..cols[k].start].rfind(',')?;
        Some(format!("{}{}", &sql[..comma], &sql[t.add_col_offset..]))
    }
}

/// Whether a column's `DEFAULT` text is a constant SQLite evaluates the same way every
/// time: a (signed) number, string, blob, NULL, TRUE or FALSE, possibly in parentheses.
pub fn constant_default(text: &str) -> Option<String> {
    let tokens = tokenize(text);
    let mut t: &[Token] = &tokens;
    while t.len() >= 2
        && &text[t[0].start..t[0].end] == "("
        && &text[t[t.len() - 1].start..t[t.len() - 1].end] == ")"
    {
        t = &t[1..t.len() - 1];
    }
    let (sign, rest) = match t {
        [s, rest @ ..] if s.kind == Kind::Punct && matches!(&text[s.start..s.end], "-" | "+") => {
            (&text[s.start..s.end], rest)
        }
        _ => ("", t),
    };
    match rest {
        [one] => {
            let s = &text[one.start..one.end];
            let ok = match one.kind {
                Kind::Number => true,
                Kind::Str | Kind::Blob => sign.is_empty(),
                Kind::Word => {
                    sign.is_empty()
                        && matches!(s.to_ascii_uppercase().as_str(), "NULL" | "TRUE" | "FALSE")
                }
                _ => false,
            };
            ok.then(|| format!("{sign}{s}"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_columns_and_constraints() {
        let sql = "CREATE TABLE \"a(b\"(x INT DEFAULT (1,2), [y z] TEXT, CONSTRAINT pk PRIMARY KEY(x)) WITHOUT ROWID";
        let t = create_table(sql).expect("parsed");
        let names: Vec<_> = t.columns().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["x", "y z"]);
        assert!(t.items[2].constraint);
        assert!(t.without_rowid());
        assert_eq!(&sql[t.add_col_offset..t.add_col_offset + 1], ",");
        assert!(create_table("CREATE TABLE t AS SELECT 1").is_none());
    }

    #[test]
    fn predicts_add_and_drop_column_text() {
        assert_eq!(
            after_add_column("CREATE TABLE t(a, b)", "c INT DEFAULT 5").as_deref(),
            Some("CREATE TABLE t(a, b, c INT DEFAULT 5)")
        );
        assert_eq!(
            after_add_column("CREATE TABLE t(a, PRIMARY KEY(a))", "c").as_deref(),
            Some("CREATE TABLE t(a, c, PRIMARY KEY(a))")
        );
        assert_eq!(
            after_drop_column("CREATE TABLE t(a, b, c)", "b").as_deref(),
            Some("CREATE TABLE t(a, c)")
        );
        assert_eq!(
            after_drop_column("CREATE TABLE t(a, b, c)", "c").as_deref(),
            Some("CREATE TABLE t(a, b)")
        );
    }

    #[test]
    fn recognises_constant_defaults() {
        assert_eq!(constant_default("5").as_deref(), Some("5"));
        assert_eq!(constant_default("-1.5").as_deref(), Some("-1.5"));
        assert_eq!(constant_default("'x'").as_deref(), Some("'x'"));
        assert_eq!(constant_default("(NULL)").as_deref(), Some("NULL"));
        assert_eq!(constant_default("CURRENT_TIMESTAMP"), None);
        assert_eq!(constant_default("(1+2)"), None);
    }
}
