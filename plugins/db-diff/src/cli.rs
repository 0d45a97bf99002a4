//! The `diff` command's arguments: two databases and sqldiff-style options.

use crate::engine::{Mode, Options};

/// How the result is shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Output {
    /// The SQL (default).
    #[default]
    Sql,
    /// `--summary`: sqldiff's per-table lines.
    Summary,
    /// `--stat`: git-style per-table counts.
    Stat,
}

/// A parsed `diff A B [options…]` call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    /// The database to change (a path, a configured name, `NAME@snapshot` or `@snapshot`).
    pub a: String,
    /// The database to reach.
    pub b: String,
    /// Engine options.
    pub options: Options,
    /// How to show the result.
    pub output: Output,
    /// `--exit-code`: answer with an error ("differences found") when they differ.
    pub exit_code: bool,
    /// `--changeset FILE`: the row changes as a binary SQLite changeset, delivered as an
    /// attachment named FILE (which `roost invoke` writes when FILE is on its command line).
    pub changeset: Option<String>,
}

/// The options line for usage texts.
pub const OPTIONS: &str = "[--schema] [--summary] [--stat] [--table T] [--primarykey] [--no-transaction] [--ignore-column T.C] [--exit-code] [--changeset FILE]";

/// Parses `args` (everything after the command name). The SQL is wrapped in one
/// transaction unless `--no-transaction`: applied statement by statement a large diff is
/// hundreds of times slower, and a failing statement would leave the copy half-migrated.
pub fn parse(args: &[String]) -> Result<Args, String> {
    let mut out = Args::default();
    out.options.transaction = true;
    let mut positional: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value")),
            }
        };
        match flag {
            "--schema" => out.options.schema_only = true,
            "--summary" => out.output = Output::Summary,
            "--stat" => out.output = Output::Stat,
            "--primarykey" => out.options.primary_key = true,
            "--transaction" => out.options.transaction = true,
            "--no-transaction" => out.options.transaction = false,
            "--exit-code" => out.exit_code = true,
            "--table" => out.options.table = Some(value("--table")?),
            "--ignore-column" => {
                let v = value("--ignore-column")?;
                let (t, c) = v
                    .rsplit_once('.')
                    .filter(|(t, c)| !t.is_empty() && !c.is_empty())
                    .ok_or_else(|| format!("--ignore-column wants TABLE.COLUMN, got `{v}`"))?;
                out.options
                    .ignore_columns
                    .push((t.to_string(), c.to_string()));
            }
            "--changeset" => {
                let file = value("--changeset")?;
                if file.is_empty() {
                    return Err("--changeset needs a file name".to_string());
                }
                out.changeset = Some(file);
            }
            f if f.starts_with("--") => return Err(format!("unknown option `{f}`")),
            _ => positional.push(arg.clone()),
        }
    }
    match positional.as_slice() {
        [a, b] => {
            out.a = a.clone();
            out.b = b.clone();
        }
        _ => {
            return Err(format!(
                "want two databases, got {}; usage: {{command}} <A> <B> {OPTIONS}",
                positional.len()
            ));
        }
    }
    if let Some(file) = &out.changeset {
        if out.options.schema_only {
            return Err("--schema and --changeset do not go together: a changeset holds row changes only, no schema".to_string());
        }
        if out.output != Output::Sql {
            return Err("--changeset writes a file: leave out --summary and --stat".to_string());
        }
        if *file == out.a || *file == out.b {
            return Err(format!(
                "--changeset {file} would overwrite a database being compared"
            ));
        }
        out.options.mode = Mode::Changeset;
    } else if out.output != Output::Sql {
        out.options.mode = Mode::Counts;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Args, String> {
        parse(&s.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    #[test]
    fn reads_sqldiff_options() {
        let a = p("a.db b.db --schema --table t --primarykey --transaction --ignore-column t.ts")
            .unwrap();
        assert_eq!((a.a.as_str(), a.b.as_str()), ("a.db", "b.db"));
        assert!(a.options.schema_only && a.options.primary_key && a.options.transaction);
        assert_eq!(a.options.table.as_deref(), Some("t"));
        assert_eq!(
            a.options.ignore_columns,
            [("t".to_string(), "ts".to_string())]
        );
        let s = p("a b --summary --exit-code").unwrap();
        assert_eq!(
            (s.output, s.options.mode, s.exit_code),
            (Output::Summary, Mode::Counts, true)
        );
        assert_eq!(
            p("a b --table=x").unwrap().options.table.as_deref(),
            Some("x")
        );
    }

    #[test]
    fn the_sql_is_one_transaction_unless_asked_otherwise() {
        assert!(p("a b").unwrap().options.transaction);
        assert!(p("a b --transaction").unwrap().options.transaction);
        assert!(!p("a b --no-transaction").unwrap().options.transaction);
    }

    #[test]
    fn reads_changeset_and_refuses_what_does_not_go_with_it() {
        let c = p("a.db b.db --changeset out.bin --transaction").unwrap();
        assert_eq!(c.changeset.as_deref(), Some("out.bin"));
        assert_eq!(c.options.mode, Mode::Changeset);
        assert_eq!(
            p("a b --changeset=x.bin").unwrap().changeset.as_deref(),
            Some("x.bin")
        );
        assert!(p("a b --changeset").unwrap_err().contains("needs a value"));
        assert!(
            p("a b --changeset f --schema")
                .unwrap_err()
                .contains("do not go together")
        );
        assert!(
            p("a b --summary --changeset f")
                .unwrap_err()
                .contains("leave out --summary")
        );
        assert!(
            p("a.db b.db --changeset b.db")
                .unwrap_err()
                .contains("overwrite")
        );
    }

    #[test]
    fn rejects_what_it_cannot_do() {
        assert!(p("a b --bogus").unwrap_err().contains("unknown option"));
        assert!(p("a").unwrap_err().contains("two databases"));
        assert!(
            p("a b --ignore-column ts")
                .unwrap_err()
                .contains("TABLE.COLUMN")
        );
    }
}
