//! Property test: random schemas, random rows, random schema and row edits; the diff,
//! applied with `sqlite3 -bail` to a copy of A, must give exactly B.
//!
//! proptest picks a seed and the options; a small deterministic generator turns the seed
//! into the two databases, so a failure prints a seed that reproduces it.

mod common;

use db_diff::engine::{Mode, Options, TableStat};
use proptest::prelude::*;

/// xorshift64*: deterministic, seedable, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

#[derive(Clone, Debug)]
enum Kind {
    /// `id INTEGER PRIMARY KEY`
    Ipk,
    /// no declared key
    NoKey,
    /// `k TEXT PRIMARY KEY` in a rowid table
    TextPk,
    /// `WITHOUT ROWID` with a two-column key
    WithoutRowid,
}

#[derive(Clone, Debug)]
struct Col {
    name: String,
    decl: String,
}

#[derive(Clone, Debug)]
struct Table {
    name: String,
    kind: Kind,
    cols: Vec<Col>,
    /// rows: key values (as SQL) + column values (as SQL)
    rows: Vec<(Vec<String>, Vec<String>)>,
    next_key: u64,
    /// Table constraints (`CHECK (…)`, `UNIQUE (…)`), after the columns.
    constraints: Vec<String>,
}

const NAMES: &[&str] = &["a", "b", "Value", "sel ect", "q\"uote", "x_1", "ÿ", "order"];
const TYPES: &[&str] = &[
    "",
    "INTEGER",
    "TEXT",
    "REAL",
    "BLOB",
    "NUMERIC",
    "int",
    "varchar(5)",
];

fn q(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn value(r: &mut Rng) -> String {
    match r.below(13) {
        0 => "NULL".into(),
        1 | 2 => format!("{}", r.below(5) as i64 - 2),
        3 => format!("{}", r.next() as i64),
        4 => {
            // A random finite double, written exactly through the engine's printer.
            let f = loop {
                let f = f64::from_bits(r.next());
                if f.is_finite() && f != 0.0 {
                    break f;
                }
            };
            db_diff::engine::literal::real(f)
        }
        5 => db_diff::engine::literal::real(*r.pick(&[
            0.1 + 0.2,
            1.0,
            0.5,
            1e300,
            2.5e-308,
            123.456,
            0.0,
            -0.0,
            -0.0,
        ])),
        6 => format!("'{}'", r.below(3)),
        7 => (*r.pick(&["'it''s'", "'a\nb'", "'é☃'", "''", "'x'", "'X'", "' 5'"])).into(),
        8 => format!("x'{:02x}{:02x}'", r.below(256), r.below(3)),
        9 => "x''".into(),
        10 => "1.0".into(),
        // TEXT that is not valid UTF-8.
        11 => format!("CAST(x'{:02x}ff' AS TEXT)", r.below(256)),
        _ => format!("'{}'", r.below(4)),
    }
}

fn new_row(r: &mut Rng, t: &mut Table) -> (Vec<String>, Vec<String>) {
    t.next_key += 1 + r.below(3);
    let k = t.next_key;
    let key = match t.kind {
        Kind::Ipk => vec![k.to_string()],
        Kind::NoKey => vec![],
        Kind::TextPk => vec![format!("'k{k}'")],
        Kind::WithoutRowid => vec![format!("'g{}'", k % 3), k.to_string()],
    };
    let vals = t.cols.iter().map(|_| value(r)).collect();
    (key, vals)
}

fn key_cols(kind: &Kind) -> Vec<(&'static str, &'static str)> {
    match kind {
        Kind::Ipk => vec![("id", "INTEGER PRIMARY KEY")],
        Kind::NoKey => vec![],
        Kind::TextPk => vec![("k", "TEXT PRIMARY KEY")],
        Kind::WithoutRowid => vec![("g", "TEXT NOT NULL"), ("n", "INT NOT NULL")],
    }
}

fn create(t: &Table) -> String {
    let mut defs: Vec<String> = key_cols(&t.kind)
        .iter()
        .map(|(n, d)| format!("{n} {d}"))
        .collect();
    defs.extend(
        t.cols
            .iter()
            .map(|c| format!("{} {}", q(&c.name), c.decl).trim_end().to_string()),
    );
    defs.extend(t.constraints.iter().cloned());
    let mut s = format!("CREATE TABLE {}({}", q(&t.name), defs.join(", "));
    if let Kind::WithoutRowid = t.kind {
        s.push_str(", PRIMARY KEY(g, n)) WITHOUT ROWID");
    } else {
        s.push(')');
    }
    s
}

fn render(tables: &[Table], extras: &[String]) -> String {
    let mut s = String::new();
    for t in tables {
        s.push_str(&create(t));
        s.push_str(";\n");
        for (k, v) in &t.rows {
            let mut all = k.clone();
            all.extend(v.iter().cloned());
            let mut names: Vec<String> = key_cols(&t.kind)
                .iter()
                .map(|(n, _)| n.to_string())
                .collect();
            names.extend(t.cols.iter().map(|c| q(&c.name)));
            if names.is_empty() {
                continue;
            }
            s.push_str(&format!(
                "INSERT INTO {}({}) VALUES({});\n",
                q(&t.name),
                names.join(","),
                all.join(",")
            ));
        }
    }
    for e in extras {
        s.push_str(e);
        s.push_str(";\n");
    }
    s
}

fn gen_table(r: &mut Rng, i: usize) -> Table {
    let kind = match r.below(4) {
        0 => Kind::Ipk,
        1 => Kind::NoKey,
        2 => Kind::TextPk,
        _ => Kind::WithoutRowid,
    };
    let mut cols: Vec<Col> = Vec::new();
    for _ in 0..1 + r.below(3) {
        let name = r.pick(NAMES).to_string();
        if cols.iter().any(|c| c.name.eq_ignore_ascii_case(&name)) {
            continue;
        }
        cols.push(Col {
            name,
            decl: r.pick(TYPES).to_string(),
        });
    }
    let mut t = Table {
        name: format!("{}{i}", r.pick(&["t", "Tab le", "x\"y"])),
        kind,
        cols,
        rows: Vec::new(),
        next_key: 0,
        constraints: Vec::new(),
    };
    for _ in 0..r.below(8) {
        let row = new_row(r, &mut t);
        t.rows.push(row);
    }
    // Duplicates for keyless tables.
    if matches!(t.kind, Kind::NoKey) && !t.rows.is_empty() && r.chance(50) {
        let dup = t.rows[0].clone();
        t.rows.push(dup);
    }
    t
}

/// A value that is not NULL.
fn non_null(r: &mut Rng) -> String {
    loop {
        let v = value(r);
        if v != "NULL" {
            return v;
        }
    }
}

/// A migration that adds a constraint the copy of A's rows could trip: a required column
/// (mostly filled with one value, as migrations do), a column that becomes NOT NULL or
/// UNIQUE, a new column with a CHECK, a new UNIQUE column with a default, a table CHECK
/// or UNIQUE, or a required reference to a new parent table. B's rows satisfy it.
fn constrain(r: &mut Rng, t: &mut Table, parent: &mut Option<Table>) {
    let n = r.below(100);
    let k = r.below(t.cols.len() as u64) as usize;
    let add = |t: &mut Table, name: String, decl: &str, v: &mut dyn FnMut(usize) -> String| {
        t.cols.push(Col {
            name,
            decl: decl.to_string(),
        });
        for (i, row) in t.rows.iter_mut().enumerate() {
            row.1.push(v(i));
        }
    };
    match r.below(7) {
        0 => {
            let fill = non_null(r);
            let mut r2 = Rng(r.next() | 1);
            add(t, format!("need{n}"), "TEXT NOT NULL", &mut |_| {
                if r2.chance(70) {
                    fill.clone()
                } else {
                    non_null(&mut r2)
                }
            });
        }
        1 => {
            t.cols[k].decl = format!("{} NOT NULL", t.cols[k].decl).trim().to_string();
            let mut r2 = Rng(r.next() | 1);
            for row in t.rows.iter_mut() {
                if row.1[k] == "NULL" {
                    row.1[k] = non_null(&mut r2);
                }
            }
        }
        2 => {
            let c = q(&format!("chk{n}"));
            let decl = format!("INT CHECK ({c} IS NOT NULL AND {c} >= 0)");
            let mut r2 = Rng(r.next() | 1);
            add(t, format!("chk{n}"), &decl, &mut |_| {
                r2.below(3).to_string()
            });
        }
        3 => {
            let mut r2 = Rng(r.next() | 1);
            add(
                t,
                format!("uniq{n}"),
                "INT NOT NULL DEFAULT 0 UNIQUE",
                &mut |i| {
                    if i == 0 && r2.chance(50) {
                        "0".into()
                    } else {
                        (i + 1).to_string()
                    }
                },
            );
        }
        4 => {
            // Every value distinct: A may hold duplicates B resolved.
            t.cols[k].decl = format!("{} UNIQUE", t.cols[k].decl).trim().to_string();
            for (i, row) in t.rows.iter_mut().enumerate() {
                row.1[k] = format!("'u{i}'");
            }
        }
        5 => {
            let c = q(&format!("tc{n}"));
            add(t, format!("tc{n}"), "INT NOT NULL", &mut |i| i.to_string());
            let first = q(&t.cols[0].name);
            t.constraints.push(if r.chance(50) {
                format!("UNIQUE ({first}, {c})")
            } else {
                format!("CHECK ({c} >= 0)")
            });
        }
        _ => {
            parent.get_or_insert_with(|| Table {
                name: "par".into(),
                kind: Kind::Ipk,
                cols: vec![Col {
                    name: "label".into(),
                    decl: "TEXT".into(),
                }],
                rows: (1..=3)
                    .map(|i| (vec![i.to_string()], vec![format!("'p{i}'")]))
                    .collect(),
                next_key: 3,
                constraints: Vec::new(),
            });
            let mut r2 = Rng(r.next() | 1);
            add(
                t,
                format!("ref{n}"),
                "INTEGER NOT NULL REFERENCES \"par\"(id)",
                &mut |_| (1 + r2.below(3)).to_string(),
            );
        }
    }
}

/// The two databases' SQL for `seed`.
fn databases(seed: u64) -> (String, String) {
    databases_with(seed, Edits::All)
}

/// What B's edits of A may be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Edits {
    /// Rows only (what a changeset can carry).
    Rows,
    /// Rows and schema, but no constraint A's rows may violate (what `--schema` alone can
    /// apply).
    NoNewConstraints,
    /// Everything, constraints A's rows violate included.
    All,
}

/// The two databases' SQL for `seed`, B made from A with `edits`.
fn databases_with(seed: u64, edits: Edits) -> (String, String) {
    let schema_edits = edits != Edits::Rows;
    let mut r = Rng(seed | 1);
    let a: Vec<Table> = (0..1 + r.below(3) as usize)
        .map(|i| gen_table(&mut r, i))
        .collect();
    let mut a_extra: Vec<String> = Vec::new();
    if r.chance(40) {
        let t = &a[0];
        if let Some(c) = t.cols.first() {
            a_extra.push(format!(
                "CREATE INDEX ix0 ON {}({})",
                q(&t.name),
                q(&c.name)
            ));
        }
    }
    if r.chance(30) {
        a_extra.push(format!("CREATE VIEW v0 AS SELECT * FROM {}", q(&a[0].name)));
    }
    let mut b = a.clone();
    let mut b_extra = a_extra.clone();
    // The table new foreign keys refer to, B's only.
    let mut parent: Option<Table> = None;
    for t in b.iter_mut() {
        // Row edits.
        let n = t.rows.len();
        for i in (0..n).rev() {
            match r.below(6) {
                0 => {
                    t.rows.remove(i);
                }
                1 | 2 => {
                    let k = r.below(t.cols.len() as u64) as usize;
                    if let Some(v) = t.rows[i].1.get_mut(k) {
                        *v = value(&mut r);
                    }
                }
                _ => {}
            }
        }
        for _ in 0..r.below(4) {
            let row = new_row(&mut r, t);
            t.rows.push(row);
        }
        // Schema edits.
        match if schema_edits { r.below(16) } else { 15 } {
            0 => {
                // Add a column with a constant default; existing rows keep the default.
                let name = format!("added{}", r.below(100));
                let (decl, dflt) = r
                    .pick(&[
                        ("INT DEFAULT 5", "5"),
                        ("TEXT DEFAULT 'x'", "'x'"),
                        ("", "NULL"),
                        ("REAL DEFAULT 0.5", "0.5"),
                    ])
                    .to_owned();
                t.cols.push(Col {
                    name,
                    decl: decl.to_string(),
                });
                for row in t.rows.iter_mut() {
                    row.1.push(if r.chance(70) {
                        dflt.to_string()
                    } else {
                        value(&mut r)
                    });
                }
            }
            1 if t.cols.len() > 1 => {
                let k = r.below(t.cols.len() as u64) as usize;
                t.cols.remove(k);
                for row in t.rows.iter_mut() {
                    row.1.remove(k);
                }
            }
            2 => {
                let k = r.below(t.cols.len() as u64) as usize;
                t.cols[k].decl = r.pick(TYPES).to_string();
            }
            3..=8 if edits == Edits::All => constrain(&mut r, t, &mut parent),
            _ => {}
        }
    }
    match if schema_edits { r.below(8) } else { 7 } {
        0 if b.len() > 1 => {
            b.remove(0);
            b_extra.clear();
        }
        1 => b.push(gen_table(&mut r, 7)),
        2 => {
            let t = &b[0];
            if let Some(c) = t.cols.last() {
                b_extra.push(format!(
                    "CREATE INDEX ix1 ON {}({} DESC)",
                    q(&t.name),
                    q(&c.name)
                ));
            }
        }
        3 => {
            b_extra.retain(|e| !e.starts_with("CREATE VIEW"));
            b_extra.push(format!(
                "CREATE VIEW v0 AS SELECT count(*) AS n FROM {}",
                q(&b[0].name)
            ));
        }
        4 => b_extra.push(format!(
            "CREATE TRIGGER tr AFTER DELETE ON {} BEGIN SELECT 1; END",
            q(&b[0].name)
        )),
        _ => {}
    }
    // The parent goes first: rusqlite's SQLite enforces foreign keys while B is filled.
    if let Some(p) = parent {
        b.insert(0, p);
    }
    // Extras that name dropped columns cannot be kept.
    let keep: Vec<String> = b_extra
        .into_iter()
        .filter(|e| {
            let Some(t) = b.iter().find(|t| e.contains(&q(&t.name))) else {
                return false;
            };
            !e.starts_with("CREATE INDEX ix0")
                || t.cols.first().is_some_and(|c| e.contains(&q(&c.name)))
        })
        .collect();
    let (a_tail, b_tail) = settings(&mut r, schema_edits);
    (render(&a, &a_extra) + &a_tail, render(&b, &keep) + &b_tail)
}

/// The file's settings beyond `sqlite_schema` and the rows: `user_version`,
/// `application_id`, and an AUTOINCREMENT table whose counter B may move without keeping
/// the row. Without `schema_edits` only the counter and rows may differ.
fn settings(r: &mut Rng, schema_edits: bool) -> (String, String) {
    let (mut a, mut b) = (String::new(), String::new());
    for pragma in ["user_version", "application_id"] {
        let va = *r.pick(&[0i64, 1, 7, -3, i64::from(i32::MAX)]);
        let vb = if schema_edits && r.chance(40) {
            *r.pick(&[0i64, 2, 8, i64::from(i32::MIN)])
        } else {
            va
        };
        a.push_str(&format!("PRAGMA {pragma} = {va};\n"));
        b.push_str(&format!("PRAGMA {pragma} = {vb};\n"));
    }
    if r.chance(35) {
        let rows = 1 + r.below(3);
        let ai = format!(
            "CREATE TABLE ai(id INTEGER PRIMARY KEY AUTOINCREMENT, v);\n{}",
            "INSERT INTO ai(v) VALUES(1);\n".repeat(rows as usize)
        );
        a.push_str(&ai);
        b.push_str(&ai);
        if r.chance(60) {
            b.push_str("INSERT INTO ai(v) VALUES(2);\nDELETE FROM ai WHERE v = 2;\n");
        }
    }
    (a, b)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn applying_the_diff_to_a_gives_b(seed in any::<u64>(), primary_key in any::<bool>(), transaction in any::<bool>()) {
        let (a, b) = databases(seed);
        let opts = Options { primary_key, transaction, ..Options::default() };
        let d = common::check_with(&a, &b, &opts);
        // `--summary` counts what the SQL does, row for row, rebuilt tables included (the
        // SQL output counts neither unchanged rows nor those of dropped tables).
        let counts = common::diff(
            &common::pair(&a, &b),
            &Options { mode: Mode::Counts, ..opts },
        );
        let without_unchanged: Vec<TableStat> = counts
            .tables
            .into_iter()
            .map(|t| TableStat {
                unchanged: 0,
                deletes: if t.schema == Some("dropped") { 0 } else { t.deletes },
                ..t
            })
            .collect();
        prop_assert_eq!(without_unchanged, d.tables);
    }

    #[test]
    fn schema_only_output_applies_and_gives_bs_schema(seed in any::<u64>()) {
        let (a, b) = databases_with(seed, Edits::NoNewConstraints);
        let p = common::pair(&a, &b);
        let opts = Options { schema_only: true, ..Options::default() };
        let d = common::diff(&p, &opts);
        let copy = common::apply(&p, &d.sql);
        let (got, want) = (common::contents(&copy, None), common::contents(&p.b, None));
        prop_assert_eq!(got.schema, want.schema);
        prop_assert_eq!(got.pragmas, want.pragmas);
    }

    /// Row edits only: the changeset, applied with SQLite's session extension, gives B's
    /// rows in every table it carries; every table it leaves out is named in the notes.
    #[test]
    fn applying_the_changeset_to_a_gives_bs_rows(seed in any::<u64>()) {
        let (a, b) = databases_with(seed, Edits::Rows);
        let p = common::pair(&a, &b);
        let d = common::changeset(&p, &Options::default());
        let copy = common::apply_changeset(&p, &d.changeset);
        let (got, want) = (common::contents(&copy, None), common::contents(&p.b, None));
        let notes = d.notes.join("\n");
        for (table, rows) in &want.rows {
            let named = notes.contains(&q(table));
            if got.rows.get(table) != Some(rows) {
                prop_assert!(named, "{} differs but no note names it: {:?}", table, d.notes);
            }
        }
    }
}

/// The property tests above prove something only if the generator makes every kind of
/// change: over a fixed set of seeds, each kind must show up in some diff.
#[test]
fn the_generator_exercises_every_core_kind_of_change() {
    let kinds = [
        "UPDATE",
        "DELETE FROM",
        "INSERT INTO",
        "ADD COLUMN",
        "DROP TABLE",
        "CREATE TABLE",
        "CREATE INDEX",
        "CREATE VIEW",
        "CREATE TRIGGER",
        "PRAGMA user_version =",
        "PRAGMA application_id =",
        "INSERT INTO sqlite_sequence",
        // The constraints migrations add (see `constrain`).
        "TEXT NOT NULL",
        "CHECK (\"chk",
        "DEFAULT 0 UNIQUE",
        " UNIQUE,",
        "UNIQUE (",
        "CHECK (\"tc",
        "REFERENCES \"par\"",
    ];
    let mut seen = std::collections::BTreeSet::<&str>::new();
    for seed in 0..120u64 {
        let (a, b) = databases(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let p = common::pair(&a, &b);
        let d = common::diff(&p, &Options::default());
        seen.extend(kinds.iter().copied().filter(|k| d.sql.contains(k)));
        if seen.len() == kinds.len() {
            return;
        }
    }
    let missing: Vec<_> = kinds.iter().filter(|k| !seen.contains(*k)).collect();
    panic!("the generator never produced: {missing:?}");
}
