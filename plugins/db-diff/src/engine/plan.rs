//! The whole diff, in the phases [`diff`] runs: plan each table (its schema step and how
//! its rows are matched), bring the rows over (inside a rebuild, around its copy), drop
//! and re-create the indexes, views and triggers that change, then the file's settings.
//! Each phase appends to its own section of the output; [`Sections::render`] joins them in
//! the order they apply.

use std::collections::BTreeSet;

use super::Db;
use super::data::{Counts, How, TableData};
use super::literal::ident;
use super::options::{Mode, Options};
use super::report::{Diff, change, merge_stat, stat};
use super::schema::{Object, Table};
use super::scope::Scope;
use super::settings::{self, sequence_sql};
use super::tables::{self, Rebuild, Step, table_data};

/// What kind of object a `DROP` statement drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DropKind {
    Trigger,
    View,
    Index,
    Table,
}

impl DropKind {
    /// When it is dropped: triggers first, so none fires while the diff is applied; then
    /// views, which may name what goes; then indexes and tables, in the order planned.
    fn rank(self) -> u8 {
        match self {
            DropKind::Trigger => 0,
            DropKind::View => 1,
            DropKind::Index | DropKind::Table => 2,
        }
    }
}

/// One `DROP` statement.
#[derive(Debug, Clone)]
struct DropStmt {
    kind: DropKind,
    name: String,
}

impl DropStmt {
    fn sql(&self) -> String {
        let kind = match self.kind {
            DropKind::Trigger => "TRIGGER",
            DropKind::View => "VIEW",
            DropKind::Index => "INDEX",
            DropKind::Table => "TABLE",
        };
        format!("DROP {kind} {};\n", ident(&self.name))
    }
}

/// The output's sections, in the order they apply.
#[derive(Debug, Default)]
struct Sections {
    /// Comments first (virtual tables whose rows are not diffed).
    comments: String,
    /// Triggers, views, indexes and tables that go.
    drops: Vec<DropStmt>,
    /// Tables created, altered and rebuilt (a rebuild carries its rows).
    tables: String,
    /// Row changes of the other tables, then `sqlite_sequence`.
    data: String,
    /// Indexes, views and triggers created, in B's order.
    creates: String,
    /// `user_version` and `application_id`.
    pragmas: String,
    /// Whether a table is dropped or rebuilt or loses a column: every view and trigger
    /// (which may name it) is dropped and re-created.
    structural: bool,
}

impl Sections {
    /// The SQL: `PRAGMA foreign_keys=OFF` (so no cascade fires), then the sections, as one
    /// transaction with `opts.transaction`.
    fn render(mut self, opts: &Options) -> String {
        // Stable: each kind keeps the order it was planned in.
        self.drops.sort_by_key(|d| d.kind.rank());
        let drops: String = self.drops.iter().map(DropStmt::sql).collect();
        if [
            &drops,
            &self.tables,
            &self.data,
            &self.creates,
            &self.pragmas,
        ]
        .iter()
        .all(|part| part.is_empty())
        {
            return self.comments;
        }
        let mut head = self.comments;
        head.push_str("PRAGMA foreign_keys=OFF;\n");
        if opts.transaction {
            head.push_str("BEGIN TRANSACTION;\n");
        }
        head.push_str(&drops);
        head.push_str(&self.tables);
        let tail = [self.creates.as_str(), self.pragmas.as_str()];
        let commit = if opts.transaction { "COMMIT;\n" } else { "" };
        // The row changes are most of a large diff: the rest goes around them in place,
        // so they are never copied (a copy would be the plugin's largest allocation).
        let mut out = self.data;
        out.reserve_exact(head.len() + tail.iter().map(|t| t.len()).sum::<usize>() + commit.len());
        out.insert_str(0, &head);
        out.extend(tail);
        out.push_str(commit);
        out
    }
}

/// One table of B (or a shadow table) and what the diff does to it.
struct TablePlan<'s> {
    /// A's table it is matched against, if any.
    a: Option<&'s Table>,
    /// B's table.
    b: &'s Table,
    /// What happens to its definition.
    step: Step,
    /// How its rows come over; None for a virtual table (its rows are in its shadow
    /// tables).
    rows: Option<TableData>,
}

impl TablePlan<'_> {
    /// Whether the table starts out empty or anew: its indexes and triggers are created
    /// again.
    fn resets(&self) -> bool {
        matches!(self.step, Step::Create | Step::Rebuild)
    }
}

/// Computes the diff of `main` (A) to `aux` (B) on `db`.
pub fn diff(db: &mut dyn Db, opts: &Options) -> Result<Diff, String> {
    if opts.mode == Mode::Changeset {
        return super::changeset::diff(db, opts);
    }
    let scope = Scope::read(db, opts)?;
    let mut out = Sections::default();
    let mut result = Diff::default();
    let plans = plan_tables(db, &scope, opts, &mut out, &mut result)?;
    let data_changed = rows(db, &scope, opts, &plans, &mut out, &mut result)?;
    objects(&scope, opts, &plans, &data_changed, &mut out, &mut result);
    if opts.table.is_none() {
        // user_version and application_id belong to the file, not to one table.
        let changes = settings::pragma_changes(db)?;
        out.pragmas = settings::pragma_sql(&changes);
        result.settings = changes;
    }
    if opts.mode == Mode::Sql {
        result.sql = out.render(opts);
    }
    Ok(result)
}

/// Phase 1: per table in scope, its schema step and row matching (a plan), or its drop.
/// Every table gets its stat line here, in the order of [`Scope::names`].
fn plan_tables<'s>(
    db: &mut dyn Db,
    scope: &'s Scope,
    opts: &Options,
    out: &mut Sections,
    result: &mut Diff,
) -> Result<Vec<TablePlan<'s>>, String> {
    let mut plans = Vec::new();
    for n in &scope.names {
        let plan = if scope.is_virtual(n) {
            plan_virtual(scope, n, opts, out, result)
        } else if scope.shadow_goes(n) || scope.shadow_comes(n) {
            plan_shadow(scope, n, opts)
        } else {
            match scope.tables(n) {
                (Some(t), None) => {
                    drop_table(db, t, opts, out, result)?;
                    None
                }
                (None, Some(t)) => Some(create(t, None, opts, scope)),
                (Some(x), Some(y)) => Some(plan_pair(db, scope, x, y, opts, out)?),
                (None, None) => None,
            }
        };
        if let Some(p) = plan {
            let note = match (&p.step, p.a.is_some()) {
                (Step::Create, false) => Some("added"),
                (Step::Keep, _) => None,
                _ => Some("schema changed"),
            };
            result.tables.push(stat(&p.b.name, note));
            plans.push(p);
        }
    }
    Ok(plans)
}

/// A virtual table (on either side): created, dropped or re-created with B's text. A
/// virtual table replaced by an ordinary one is dropped and the ordinary one created.
fn plan_virtual<'s>(
    scope: &'s Scope,
    n: &str,
    opts: &Options,
    out: &mut Sections,
    result: &mut Diff,
) -> Option<TablePlan<'s>> {
    let (ta, tb) = scope.tables(n);
    if let Some(t) = tb.filter(|t| t.is_virtual()) {
        let module = t.module.as_deref().unwrap_or("");
        if super::schema::shadow_suffixes(module).is_empty() {
            out.comments.push_str(&format!(
                "-- virtual table {} (module {module}): its rows are not diffed\n",
                ident(&t.name)
            ));
        }
    }
    if scope.vt_dropped.contains(n)
        && let Some(t) = ta
    {
        out.drops.push(table_drop(t));
        out.structural = true;
    }
    match (ta, tb) {
        (_, Some(t)) if scope.vt_created.contains(n) => Some(TablePlan {
            a: ta,
            b: t,
            step: Step::Create,
            rows: None,
        }),
        (_, Some(t)) if !t.is_virtual() => Some(create(t, ta, opts, scope)),
        (Some(t), None) => {
            result.tables.push(stat(&t.name, Some("dropped")));
            None
        }
        _ => None,
    }
}

/// A shadow table of a virtual table the diff creates (reloaded from B after the virtual
/// table creates it) or drops (B may keep it as an ordinary table).
fn plan_shadow<'s>(scope: &'s Scope, n: &str, opts: &Options) -> Option<TablePlan<'s>> {
    let tb = scope.b.tables.get(n)?;
    if scope.shadow_comes(n) {
        return Some(TablePlan {
            a: None,
            b: tb,
            step: Step::Keep,
            rows: Some(table_data(None, tb, How::FullReload, opts, scope.has_atan2)),
        });
    }
    Some(create(tb, None, opts, scope))
}

/// B's table `t` created, with all its rows (`a`: the virtual table it replaces).
fn create<'s>(t: &'s Table, a: Option<&'s Table>, opts: &Options, scope: &Scope) -> TablePlan<'s> {
    TablePlan {
        a,
        b: t,
        step: Step::Create,
        rows: Some(table_data(None, t, How::InsertAll, opts, scope.has_atan2)),
    }
}

fn table_drop(t: &Table) -> DropStmt {
    DropStmt {
        kind: DropKind::Table,
        name: t.name.clone(),
    }
}

/// A's table `t`, which B lacks, is dropped; counts modes count its rows as deletes.
fn drop_table(
    db: &mut dyn Db,
    t: &Table,
    opts: &Options,
    out: &mut Sections,
    result: &mut Diff,
) -> Result<(), String> {
    out.drops.push(table_drop(t));
    out.structural = true;
    let mut s = stat(&t.name, Some("dropped"));
    if opts.mode != Mode::Sql {
        s.deletes =
            super::query_count(db, &format!("SELECT count(*) FROM main.{}", ident(&t.name)))?;
    }
    result.tables.push(s);
    Ok(())
}

/// A table in both: kept, altered in place or rebuilt, and how its rows are matched.
fn plan_pair<'s>(
    db: &mut dyn Db,
    scope: &Scope,
    x: &'s Table,
    y: &'s Table,
    opts: &Options,
    out: &mut Sections,
) -> Result<TablePlan<'s>, String> {
    let step = if x.sql == y.sql {
        Step::Keep
    } else {
        tables::step(x, y)
    };
    match &step {
        Step::Alter { drops_column, .. } => out.structural |= *drops_column,
        Step::Rebuild => out.structural = true,
        Step::Keep | Step::Create => {}
    }
    let how = tables::choose_how(db, x, y, &step, opts)?;
    let mut td = table_data(Some(x), y, how, opts, scope.has_atan2);
    if step == Step::Rebuild {
        if !opts.schema_only {
            tables::fill_new_columns(db, x, y, &mut td)?;
        }
    } else if matches!(td.how, How::Keyed(_) | How::Multiset) {
        td.delete_insert = tables::has_unique(db, y, &td.how)?;
    }
    Ok(TablePlan {
        a: Some(x),
        b: y,
        step,
        rows: Some(td),
    })
}

/// Phase 2: each plan's schema SQL and row changes (SQL mode), or its counts; then
/// `sqlite_sequence`. Returns the lower-case names of the tables whose rows change.
fn rows(
    db: &mut dyn Db,
    scope: &Scope,
    opts: &Options,
    plans: &[TablePlan<'_>],
    out: &mut Sections,
    result: &mut Diff,
) -> Result<BTreeSet<String>, String> {
    let mut data_changed = BTreeSet::new();
    for p in plans {
        let counts = if opts.mode == Mode::Sql {
            table_sql(db, scope, opts, p, out)?
        } else {
            match &p.rows {
                Some(td) if !opts.schema_only => td.count(db)?,
                _ => Counts::default(),
            }
        };
        if counts.changed() {
            data_changed.insert(p.b.name.to_lowercase());
        }
        merge_stat(&mut result.tables, &p.b.name, counts, false);
    }
    if opts.table.is_none() && !opts.schema_only {
        sequence(db, scope, opts, plans, out, result)?;
    }
    Ok(data_changed)
}

/// One plan's SQL: its schema step into the tables section, its rows into the data
/// section (a rebuild carries its rows around its copy). Returns the row counts.
fn table_sql(
    db: &mut dyn Db,
    scope: &Scope,
    opts: &Options,
    p: &TablePlan<'_>,
    out: &mut Sections,
) -> Result<Counts, String> {
    let Some(td) = &p.rows else {
        if p.step == Step::Create {
            out.tables.push_str(&format!("{};\n", p.b.sql));
        }
        return Ok(Counts::default());
    };
    let emit_rows = |db: &mut dyn Db, out: &mut Sections| -> Result<Counts, String> {
        if opts.schema_only {
            return Ok(Counts::default());
        }
        td.emit(db, &mut out.data)
    };
    match (&p.step, p.a) {
        (Step::Rebuild, Some(a)) => {
            let sides = (&scope.a, &scope.b);
            let rebuild = Rebuild::new(a, p.b, td, sides, opts.schema_only);
            let (before, after, counts) = if opts.schema_only {
                Default::default()
            } else {
                td.emit_rebuild(db, &rebuild.old)?
            };
            out.tables
                .push_str(&rebuild.sql(!opts.transaction, &before, &after));
            Ok(counts)
        }
        (Step::Alter { stmts, .. }, _) => {
            out.tables.push_str(&stmts.concat());
            emit_rows(db, out)
        }
        (Step::Create | Step::Rebuild, _) => {
            out.tables.push_str(&format!("{};\n", p.b.sql));
            emit_rows(db, out)
        }
        (Step::Keep, _) => emit_rows(db, out),
    }
}

/// `sqlite_sequence`: set to B's counters (SQL mode), and listed among the tables as
/// sqldiff lists it, its rows matched on the table they count for.
fn sequence(
    db: &mut dyn Db,
    scope: &Scope,
    opts: &Options,
    plans: &[TablePlan<'_>],
    out: &mut Sections,
    result: &mut Diff,
) -> Result<(), String> {
    let (a_has, b_has) = (scope.a.has_sequence, scope.b.has_sequence);
    if !a_has && !b_has {
        return Ok(());
    }
    let mut counts = settings::sequence_counts(db, a_has, b_has)?;
    if opts.mode == Mode::Sql {
        counts.unchanged = 0;
        if b_has {
            // A created or rebuilt AUTOINCREMENT table's rows move its counter.
            let resets_autoinc = plans
                .iter()
                .filter(|p| p.resets())
                .any(|p| p.b.sql.to_ascii_uppercase().contains("AUTOINCREMENT"));
            out.data.push_str(&sequence_sql(db, a_has, resets_autoinc)?);
        }
    }
    merge_stat(&mut result.tables, "sqlite_sequence", counts, false);
    Ok(())
}

/// Phase 3: indexes, views and triggers. Those that differ are dropped and created;
/// those of a table created or rebuilt are created again; triggers of tables whose rows
/// change are dropped first so they never fire, and views and triggers go when a table
/// is dropped or rebuilt.
fn objects(
    scope: &Scope,
    opts: &Options,
    plans: &[TablePlan<'_>],
    data_changed: &BTreeSet<String>,
    out: &mut Sections,
    result: &mut Diff,
) {
    let objects = Objects { scope, opts, plans };
    let dropped = objects.drop(data_changed, out, result);
    objects.create(&dropped, out, result);
}

/// What phase 3 decides from.
struct Objects<'p, 's> {
    scope: &'p Scope,
    opts: &'p Options,
    plans: &'p [TablePlan<'s>],
}

impl Objects<'_, '_> {
    fn in_scope(&self, o: &Object) -> bool {
        match o.kind.as_str() {
            "view" => self.opts.table.is_none(),
            _ => self.opts.in_scope(&o.tbl_name),
        }
    }

    /// Whether table `tbl` is created anew or rebuilt: it has lost its indexes.
    fn table_reset(&self, tbl: &str) -> bool {
        self.scope.vt_changed(&tbl.to_lowercase())
            || self
                .plans
                .iter()
                .any(|p| p.resets() && p.b.name.eq_ignore_ascii_case(tbl))
    }

    /// A's objects that differ or must not stay during the diff: dropped (an index of a
    /// dropped table goes with it). Returns their (kind, lower-case name).
    fn drop(
        &self,
        data_changed: &BTreeSet<String>,
        out: &mut Sections,
        result: &mut Diff,
    ) -> BTreeSet<(String, String)> {
        let (a, b) = (&self.scope.a, &self.scope.b);
        let mut dropped = BTreeSet::new();
        for (kind, drop_kind) in [
            ("trigger", DropKind::Trigger),
            ("view", DropKind::View),
            ("index", DropKind::Index),
        ] {
            for o in a
                .objects
                .iter()
                .filter(|o| o.kind == kind && self.in_scope(o))
            {
                let in_b = b.object(kind, &o.name);
                let same = in_b.is_some_and(|x| x.sql == o.sql);
                let tbl = o.tbl_name.to_lowercase();
                let must_go = match kind {
                    "trigger" => out.structural || data_changed.contains(&tbl),
                    "view" => out.structural,
                    _ => self.table_reset(&tbl),
                };
                if same && !must_go {
                    continue;
                }
                dropped.insert((kind.to_string(), o.name.to_lowercase()));
                if !same {
                    let what = if in_b.is_some() { "changed" } else { "dropped" };
                    result.objects.push(change(kind, &o.name, what));
                }
                let table_goes =
                    !b.tables.contains_key(&tbl) || self.scope.vt_dropped.contains(&tbl);
                if kind == "index" && table_goes && a.tables.contains_key(&tbl) {
                    continue; // Goes with its table.
                }
                out.drops.push(DropStmt {
                    kind: drop_kind,
                    name: o.name.clone(),
                });
            }
        }
        dropped
    }

    /// B's objects that A lacks, that differ, that were dropped, or whose table lost them:
    /// created in B's order.
    fn create(&self, dropped: &BTreeSet<(String, String)>, out: &mut Sections, result: &mut Diff) {
        let (a, b) = (&self.scope.a, &self.scope.b);
        for o in b
            .objects
            .iter()
            .filter(|o| o.kind != "table" && self.in_scope(o))
        {
            let in_a = a.object(&o.kind, &o.name);
            let same = in_a.is_some_and(|x| x.sql == o.sql);
            let was_dropped = dropped.contains(&(o.kind.clone(), o.name.to_lowercase()));
            let lost = o.kind != "view" && self.table_reset(&o.tbl_name);
            if same && !was_dropped && !lost {
                continue;
            }
            out.creates.push_str(&format!("{};\n", o.sql));
            if in_a.is_none() {
                result.objects.push(change(&o.kind, &o.name, "added"));
            }
        }
    }
}
