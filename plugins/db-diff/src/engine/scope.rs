//! The prologue every diff mode shares: both schemas, the tables in scope, and the
//! virtual tables whose definition changes (their shadow tables come and go with them).

use std::collections::BTreeSet;

use super::options::Options;
use super::schema::{Schema, Table};
use super::{Db, query_all};

/// What a diff of `main` (A) to `aux` (B) starts from.
pub(super) struct Scope {
    /// A's schema.
    pub a: Schema,
    /// B's schema.
    pub b: Schema,
    /// Whether the host's SQLite has `atan2`, which tells -0.0 from 0.0 in SQL.
    pub has_atan2: bool,
    /// The lower-case names of the tables in scope: B's, in B's order, then A's others.
    pub names: Vec<String>,
    /// Virtual tables of A that the diff drops (dropped, or re-created with B's text).
    pub vt_dropped: BTreeSet<String>,
    /// Virtual tables of B that the diff creates (added, or re-created).
    pub vt_created: BTreeSet<String>,
}

impl Scope {
    /// Reads both schemas and works out the tables in scope (`--table`).
    pub fn read(db: &mut dyn Db, opts: &Options) -> Result<Scope, String> {
        let a = Schema::read(db, "main")?;
        let b = Schema::read(db, "aux")?;
        let has_atan2 = query_all(db, "SELECT atan2(0.0, -1.0)", &[]).is_ok();
        let mut names: Vec<String> = Vec::new();
        for o in b.objects.iter().chain(&a.objects) {
            let l = o.name.to_lowercase();
            if o.kind == "table" && !names.contains(&l) && opts.in_scope(&l) {
                names.push(l);
            }
        }
        let (mut vt_dropped, mut vt_created) = (BTreeSet::new(), BTreeSet::new());
        let scope = Scope {
            a,
            b,
            has_atan2,
            names,
            vt_dropped: BTreeSet::new(),
            vt_created: BTreeSet::new(),
        };
        for n in &scope.names {
            let (ta, tb) = scope.tables(n);
            if !scope.is_virtual(n) || ta.map(|t| &t.sql) == tb.map(|t| &t.sql) {
                continue;
            }
            if ta.is_some() {
                vt_dropped.insert(n.clone());
            }
            if tb.is_some_and(Table::is_virtual) {
                vt_created.insert(n.clone());
            }
        }
        Ok(Scope {
            vt_dropped,
            vt_created,
            ..scope
        })
    }

    /// A's and B's table named `n` (lower case).
    pub fn tables(&self, n: &str) -> (Option<&Table>, Option<&Table>) {
        (self.a.tables.get(n), self.b.tables.get(n))
    }

    /// Whether table `n` is a virtual table on either side.
    pub fn is_virtual(&self, n: &str) -> bool {
        let (ta, tb) = self.tables(n);
        ta.is_some_and(Table::is_virtual) || tb.is_some_and(Table::is_virtual)
    }

    /// Whether the virtual table `n` is dropped or created by the diff.
    pub fn vt_changed(&self, n: &str) -> bool {
        self.vt_dropped.contains(n) || self.vt_created.contains(n)
    }

    /// Whether `n` is a shadow table of one of A's virtual tables that the diff drops.
    pub fn shadow_goes(&self, n: &str) -> bool {
        self.a
            .shadow_owner(n)
            .is_some_and(|t| self.vt_dropped.contains(&t.name.to_lowercase()))
    }

    /// Whether `n` is a shadow table of one of B's virtual tables that the diff creates.
    pub fn shadow_comes(&self, n: &str) -> bool {
        self.b
            .shadow_owner(n)
            .is_some_and(|t| self.vt_created.contains(&t.name.to_lowercase()))
    }
}
