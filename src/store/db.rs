//! One way to speak to either database: the repository's SQL runs on SQLite (the default,
//! a file in the data dir) or on PostgreSQL (`[store] url`), through [`Db`], with values
//! ([`Value`]) and rows ([`Row`]) that mean the same on both.
//!
//! The SQL is written once, in the dialect both accept (`?N` parameters, `ON CONFLICT`,
//! `RETURNING`, `COALESCE`); for PostgreSQL it is translated when run ([`pg_sql`]): `?N`
//! becomes `$N`, and `LIKE` becomes `ILIKE` (SQLite's `LIKE` ignores ASCII case).

use super::{Result, StoreError};
use postgres::types::{IsNull, ToSql as PgToSql, Type};
use std::cell::RefCell;
use std::collections::HashMap;

/// A value as both databases store it: integers (times in ms, switches as 0/1), floats,
/// text (JSON included), or nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

/// What can be a statement's parameter.
pub trait ToValue {
    fn to_value(&self) -> Value;
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}
impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        match self {
            Some(v) => v.to_value(),
            None => Value::Null,
        }
    }
}
impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}
impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_string())
    }
}
impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}
impl ToValue for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}
impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}
macro_rules! int_to_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value {
                Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
    )*};
}
int_to_value!(i64, i32, u32, u64, usize);

/// Parameters for one statement: `params![a, b]`.
macro_rules! params {
    () => { &[] as &[$crate::store::db::Value] };
    ($($p:expr),+ $(,)?) => {
        &[$($crate::store::db::ToValue::to_value(&$p)),+] as &[$crate::store::db::Value]
    };
}
pub(crate) use params;

/// What a column can be read as.
pub trait FromValue: Sized {
    fn from_value(v: Value) -> std::result::Result<Self, String>;
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: Value) -> std::result::Result<Self, String> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}
impl FromValue for i64 {
    fn from_value(v: Value) -> std::result::Result<Self, String> {
        match v {
            Value::Int(i) => Ok(i),
            other => Err(format!("expected an integer, found {other:?}")),
        }
    }
}
impl FromValue for f64 {
    fn from_value(v: Value) -> std::result::Result<Self, String> {
        match v {
            Value::Real(f) => Ok(f),
            Value::Int(i) => Ok(i as f64),
            other => Err(format!("expected a number, found {other:?}")),
        }
    }
}
impl FromValue for bool {
    fn from_value(v: Value) -> std::result::Result<Self, String> {
        match v {
            Value::Int(i) => Ok(i != 0),
            other => Err(format!("expected 0 or 1, found {other:?}")),
        }
    }
}
impl FromValue for String {
    fn from_value(v: Value) -> std::result::Result<Self, String> {
        match v {
            Value::Text(s) => Ok(s),
            other => Err(format!("expected text, found {other:?}")),
        }
    }
}
impl FromValue for usize {
    fn from_value(v: Value) -> std::result::Result<Self, String> {
        let i = i64::from_value(v)?;
        usize::try_from(i).map_err(|_| format!("expected a count, found {i}"))
    }
}

/// One result row, from either database.
pub enum Row<'a> {
    Lite(&'a rusqlite::Row<'a>),
    Pg(&'a postgres::Row),
}

/// A column by its position or its name.
pub trait RowIndex {
    fn index(&self, row: &Row<'_>) -> Result<usize>;
}
impl RowIndex for usize {
    fn index(&self, _: &Row<'_>) -> Result<usize> {
        Ok(*self)
    }
}
impl RowIndex for &str {
    fn index(&self, row: &Row<'_>) -> Result<usize> {
        let found = match row {
            Row::Lite(r) => r.as_ref().column_index(self).ok(),
            Row::Pg(r) => r.columns().iter().position(|c| c.name() == *self),
        };
        found.ok_or_else(|| StoreError::Other(format!("no column {self:?} in the row")))
    }
}

impl Row<'_> {
    pub fn get<I: RowIndex, T: FromValue>(&self, idx: I) -> Result<T> {
        let i = idx.index(self)?;
        let v = self.value(i)?;
        T::from_value(v).map_err(|e| StoreError::Other(format!("column {}: {e}", self.name(i))))
    }

    fn name(&self, i: usize) -> String {
        match self {
            Row::Lite(r) => r
                .as_ref()
                .column_name(i)
                .map(str::to_string)
                .unwrap_or_else(|_| i.to_string()),
            Row::Pg(r) => r
                .columns()
                .get(i)
                .map(|c| c.name().to_string())
                .unwrap_or_else(|| i.to_string()),
        }
    }

    fn value(&self, i: usize) -> Result<Value> {
        match self {
            Row::Lite(r) => {
                use rusqlite::types::ValueRef;
                Ok(match r.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(n) => Value::Int(n),
                    ValueRef::Real(f) => Value::Real(f),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(_) => {
                        return Err(StoreError::Other(format!(
                            "column {} holds a blob",
                            self.name(i)
                        )));
                    }
                })
            }
            Row::Pg(r) => pg_value(r, i),
        }
    }
}

fn pg_value(r: &postgres::Row, i: usize) -> Result<Value> {
    let ty = r
        .columns()
        .get(i)
        .map(|c| c.type_().clone())
        .ok_or_else(|| StoreError::Other(format!("no column {i} in the row")))?;
    let v = match ty {
        Type::INT8 => r.try_get::<_, Option<i64>>(i)?.map(Value::Int),
        Type::INT4 => r
            .try_get::<_, Option<i32>>(i)?
            .map(|n| Value::Int(n.into())),
        Type::INT2 => r
            .try_get::<_, Option<i16>>(i)?
            .map(|n| Value::Int(n.into())),
        Type::FLOAT8 => r.try_get::<_, Option<f64>>(i)?.map(Value::Real),
        Type::FLOAT4 => r
            .try_get::<_, Option<f32>>(i)?
            .map(|f| Value::Real(f.into())),
        Type::BOOL => r
            .try_get::<_, Option<bool>>(i)?
            .map(|b| Value::Int(b.into())),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
            r.try_get::<_, Option<String>>(i)?.map(Value::Text)
        }
        other => {
            return Err(StoreError::Other(format!(
                "column {} has the type {other}, which the store does not read",
                r.columns()[i].name()
            )));
        }
    };
    Ok(v.unwrap_or(Value::Null))
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Real(f) => ToSqlOutput::Borrowed(ValueRef::Real(*f)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

/// A value bound as the type PostgreSQL inferred for its parameter (an integer column is
/// BIGINT, a `LIMIT` BIGINT, a comparison with a float column DOUBLE PRECISION).
impl PgToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, BoxError> {
        let mismatch = || -> BoxError { format!("cannot bind {self:?} as {ty}").into() };
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                Type::FLOAT4 => (*i as f32).to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => i.to_string().to_sql(ty, out),
                _ => Err(mismatch()),
            },
            Value::Real(f) => match *ty {
                Type::FLOAT8 => f.to_sql(ty, out),
                Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                Type::INT8 if f.fract() == 0.0 && f.abs() < 9.0e15 => (*f as i64).to_sql(ty, out),
                _ => Err(mismatch()),
            },
            Value::Text(s) => match *ty {
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    s.as_str().to_sql(ty, out)
                }
                _ => Err(mismatch()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// The repository's SQL in PostgreSQL's dialect: `?N` → `$N` and `LIKE` → `ILIKE`, outside
/// quoted text.
pub fn pg_sql(sql: &str) -> String {
    let sql = strip_indexed_by(sql);
    let mut out = String::with_capacity(sql.len() + 8);
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted && chars.peek().is_some_and(|n| n.is_ascii_digit()) => out.push('$'),
            'L' if !quoted
                && out.ends_with(|p: char| p.is_whitespace())
                && chars.clone().take(4).collect::<String>() == "IKE " =>
            {
                out.push_str("IL");
            }
            _ => out.push(c),
        }
    }
    out
}

/// SQLite's `INDEXED BY name` (a planner hint PostgreSQL has no words for) taken out.
fn strip_indexed_by(sql: &str) -> std::borrow::Cow<'_, str> {
    let Some(at) = sql.find(" INDEXED BY ") else {
        return sql.into();
    };
    let rest = &sql[at + " INDEXED BY ".len()..];
    let name_end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    format!("{}{}", &sql[..at], strip_indexed_by(&rest[name_end..])).into()
}

/// A PostgreSQL transaction, with the connection's prepared statements.
pub struct PgTx<'c> {
    tx: postgres::Transaction<'c>,
    statements: &'c mut HashMap<String, postgres::Statement>,
}

impl<'c> PgTx<'c> {
    pub fn new(
        tx: postgres::Transaction<'c>,
        statements: &'c mut HashMap<String, postgres::Statement>,
    ) -> PgTx<'c> {
        PgTx { tx, statements }
    }

    pub fn commit(self) -> Result<()> {
        Ok(self.tx.commit()?)
    }

    fn statement(&mut self, sql: &str) -> Result<postgres::Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let prepared = self.tx.prepare(&pg_sql(sql))?;
        // A connection keeps a bounded number: SQL built at run time (a list of ids) would
        // otherwise grow the cache without end.
        if self.statements.len() >= 512 {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), prepared.clone());
        Ok(prepared)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<postgres::Row>> {
        let stmt = self.statement(sql)?;
        let refs: Vec<&(dyn PgToSql + Sync)> =
            params.iter().map(|p| p as &(dyn PgToSql + Sync)).collect();
        Ok(self.tx.query(&stmt, &refs)?)
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        let stmt = self.statement(sql)?;
        let refs: Vec<&(dyn PgToSql + Sync)> =
            params.iter().map(|p| p as &(dyn PgToSql + Sync)).collect();
        Ok(self.tx.execute(&stmt, &refs)?)
    }

    fn batch(&mut self, sql: &str) -> Result<()> {
        Ok(self.tx.batch_execute(sql)?)
    }
}

/// What [`Db`] needs of a PostgreSQL transaction, without its lifetimes.
pub trait PgExec {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<postgres::Row>>;
    fn execute(&self, sql: &str, params: &[Value]) -> Result<u64>;
    fn batch(&self, sql: &str) -> Result<()>;
}

impl PgExec for RefCell<PgTx<'_>> {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<postgres::Row>> {
        self.borrow_mut().query(sql, params)
    }
    fn execute(&self, sql: &str, params: &[Value]) -> Result<u64> {
        self.borrow_mut().execute(sql, params)
    }
    fn batch(&self, sql: &str) -> Result<()> {
        self.borrow_mut().batch(sql)
    }
}

/// A connection (SQLite) or a transaction (PostgreSQL) the repository's SQL runs on.
#[derive(Clone, Copy)]
pub enum Db<'a> {
    Lite(&'a rusqlite::Connection),
    Pg(&'a dyn PgExec),
}

impl Db<'_> {
    pub fn is_pg(&self) -> bool {
        matches!(self, Db::Pg(_))
    }

    /// Run one statement; how many rows it changed.
    pub fn execute(&self, sql: &str, params: &[Value]) -> Result<usize> {
        match self {
            Db::Lite(c) => Ok(c
                .prepare_cached(sql)?
                .execute(rusqlite::params_from_iter(params.iter()))?),
            Db::Pg(t) => Ok(usize::try_from(t.execute(sql, params)?).unwrap_or(usize::MAX)),
        }
    }

    /// Every row of a query, each through `f`.
    pub fn query_map<T>(
        &self,
        sql: &str,
        params: &[Value],
        mut f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        match self {
            Db::Lite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(f(&Row::Lite(r))?);
                }
                Ok(out)
            }
            Db::Pg(t) => t
                .query(sql, params)?
                .iter()
                .map(|r| f(&Row::Pg(r)))
                .collect(),
        }
    }

    /// The first row of a query through `f`; [`StoreError::NoRow`] when there is none.
    pub fn query_row<T>(
        &self,
        sql: &str,
        params: &[Value],
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        match self {
            Db::Lite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
                match rows.next()? {
                    Some(r) => f(&Row::Lite(r)),
                    None => Err(StoreError::NoRow),
                }
            }
            Db::Pg(t) => match t.query(sql, params)?.first() {
                Some(r) => f(&Row::Pg(r)),
                None => Err(StoreError::NoRow),
            },
        }
    }

    /// Statements without parameters, one after another (the schema).
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match self {
            Db::Lite(c) => Ok(c.execute_batch(sql)?),
            Db::Pg(t) => t.batch(sql),
        }
    }
}

/// `query_row(…).optional()`: no row is `None`.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(StoreError::NoRow) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pg_sql;

    #[test]
    fn parameters_and_like_are_translated_outside_quotes() {
        assert_eq!(
            pg_sql("SELECT '?1 LIKE x' FROM t WHERE a = ?1 AND b LIKE ?12 ESCAPE '\\'"),
            "SELECT '?1 LIKE x' FROM t WHERE a = $1 AND b ILIKE $12 ESCAPE '\\'"
        );
        assert_eq!(pg_sql("SELECT ? , ?x"), "SELECT ? , ?x");
        assert_eq!(
            pg_sql("SELECT d.a FROM decisions d INDEXED BY decisions_executed\n WHERE x = ?1"),
            "SELECT d.a FROM decisions d\n WHERE x = $1"
        );
    }
}
