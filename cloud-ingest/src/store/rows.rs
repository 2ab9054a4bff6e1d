//! The row source of a multi-row INSERT, written so that binding stays
//! cheap on both back ends.
//!
//! SQLite finds the index of every named parameter (`$1`, `?1`) by
//! scanning the statement's list of parameter names
//! (`sqlite3_bind_parameter_name`, which sqlx calls for each one), so
//! binding a statement of n named parameters costs n²: measured here, 32
//! rows of 13 parameters still spent 43 % of the SQLite thread there (85 %
//! at 500 rows). Anonymous `?` parameters have no name to scan for, so on
//! SQLite the rows are `SELECT <columns> FROM (VALUES (?,…),(?,…)) WHERE
//! true`, each column an expression over `column1…` of the VALUES; the
//! `WHERE true` lets an `ON CONFLICT` clause follow (SQLite's parser needs
//! it after `INSERT … SELECT`). PostgreSQL gets `VALUES (…),(…)` with the
//! expressions written over `$n`.

use std::fmt::Write as _;

use super::Backend;

/// How a row's parameters become the inserted columns: `params`
/// parameters are bound per row, in order; each column is an expression
/// in which `{k}` stands for the row's k-th parameter (1-based, at most 9
/// digits of `k`).
pub(super) struct RowShape {
    pub params: usize,
    pub columns: &'static [&'static str],
}

impl RowShape {
    /// Appends the row source for `rows` rows to `sql`, which holds
    /// `INSERT INTO t (…) ` so far.
    pub fn write(&self, sql: &mut String, backend: Backend, rows: usize) {
        match backend {
            Backend::Sqlite => {
                sql.push_str("SELECT ");
                for (i, column) in self.columns.iter().enumerate() {
                    if i > 0 {
                        sql.push(',');
                    }
                    substitute(sql, column, |sql, k| {
                        let _ = write!(sql, "column{k}");
                    });
                }
                sql.push_str(" FROM (VALUES ");
                let row = format!("({}?)", "?,".repeat(self.params - 1));
                for r in 0..rows {
                    if r > 0 {
                        sql.push(',');
                    }
                    sql.push_str(&row);
                }
                sql.push_str(") WHERE true");
            }
            Backend::Postgres => {
                sql.push_str("VALUES ");
                for r in 0..rows {
                    sql.push_str(if r == 0 { "(" } else { ",(" });
                    let base = r * self.params;
                    for (i, column) in self.columns.iter().enumerate() {
                        if i > 0 {
                            sql.push(',');
                        }
                        substitute(sql, column, |sql, k| {
                            let _ = write!(sql, "${}", base + k);
                        });
                    }
                    sql.push(')');
                }
            }
        }
    }
}

/// Appends `template` to `sql` with every `{k}` written by `param`.
fn substitute(sql: &mut String, template: &str, mut param: impl FnMut(&mut String, usize)) {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        sql.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}').expect("a row shape's `{` is closed by `}`");
        let k = after[..close]
            .parse()
            .expect("a row shape's `{…}` holds a parameter number");
        param(sql, k);
        rest = &after[close + 1..];
    }
    sql.push_str(rest);
}

/// A nullable float bound as a value (0 when absent) and a presence flag,
/// to be written `CASE WHEN {flag} <> 0 THEN {value} END`.
///
/// Why: sqlx 0.9's Any driver sends a NULL `f64` to PostgreSQL typed as
/// `float4` (`sqlx-core/src/any/arguments.rs`); a cached statement first
/// prepared with such a NULL then refuses a real value (22P03, "incorrect
/// binary data format"). Never binding a NULL float avoids it on both back
/// ends.
pub(super) fn split_double(value: Option<f64>) -> (f64, i64) {
    (value.unwrap_or(0.0), i64::from(value.is_some()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPE: RowShape = RowShape {
        params: 3,
        columns: &["{1}", "CASE WHEN {3} <> 0 THEN {2} END"],
    };

    #[test]
    fn sqlite_rows_bind_anonymous_parameters_in_order() {
        let mut sql = String::new();
        SHAPE.write(&mut sql, Backend::Sqlite, 2);
        assert_eq!(
            sql,
            "SELECT column1,CASE WHEN column3 <> 0 THEN column2 END FROM (VALUES (?,?,?),(?,?,?)) WHERE true"
        );
    }

    #[test]
    fn postgres_rows_number_each_rows_parameters_on() {
        let mut sql = String::new();
        SHAPE.write(&mut sql, Backend::Postgres, 2);
        assert_eq!(
            sql,
            "VALUES ($1,CASE WHEN $3 <> 0 THEN $2 END),($4,CASE WHEN $6 <> 0 THEN $5 END)"
        );
    }
}
