//! SQL databases: plain blocking calls; the host suspends the guest while the database (SQLite
//! or PostgreSQL, as the host configures) answers.
//!
//! **Placeholders are `$1`, `$2`, ... on every backend**, and parameters are always bound,
//! never interpolated, so the same statements run on SQLite and PostgreSQL (within the SQL they
//! share).
//!
//! ```no_run
//! use mixio::sql::{Connection, params};
//!
//! #[derive(serde::Deserialize)]
//! struct Todo { id: i64, title: String, done: bool }
//!
//! let db = Connection::open("default")?;
//! db.execute("CREATE TABLE IF NOT EXISTS todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL, done BOOLEAN NOT NULL)", &[])?;
//! db.execute("INSERT INTO todos (id, title, done) VALUES ($1, $2, $3)", params![1, "write docs", false])?;
//! let rows = db.query("SELECT id, title, done FROM todos WHERE done = $1", params![false])?;
//! let todos: Vec<Todo> = rows.deserialize()?;
//! let first: String = rows.first().unwrap().get("title")?;
//! db.transaction(|tx| {
//!     tx.execute("UPDATE todos SET done = $1 WHERE id = $2", params![true, 1])?;
//!     Ok::<_, mixio::Error>(())
//! })?;
//! # Ok::<(), mixio::Error>(())
//! ```
//!
//! Booleans read back as [`Value::Integer`] (0 or 1) from SQLite; `get::<bool>` accepts both.

use serde::de::DeserializeOwned;

use crate::Error;
use crate::bindings::mixio::io::sql as wit;

pub use wit::Value;

/// Builds a parameter list: `params![user, 42, 1.5, true, None::<i64>]`.
#[macro_export]
macro_rules! __mixio_params {
    ($($value:expr),* $(,)?) => {
        &[$($crate::sql::Value::from($value)),*]
    };
}

/// Builds a parameter list: `params![user, 42, 1.5, true, None::<i64>]`.
#[doc(inline)]
pub use crate::__mixio_params as params;

/// A connection to a database.
pub struct Connection(crate::sys::Connection);

impl Connection {
    /// Opens the database called `name`.
    pub fn open(name: &str) -> Result<Connection, Error> {
        Ok(Connection(crate::sys::sql_open(name)?))
    }

    /// Runs a statement; the number of rows it changed.
    pub fn execute(&self, statement: &str, params: &[Value]) -> Result<u64, Error> {
        Ok(crate::sys::sql_execute(&self.0, statement, params)?)
    }

    /// Runs a query; its rows.
    pub fn query(&self, statement: &str, params: &[Value]) -> Result<Rows, Error> {
        let rows = crate::sys::sql_query(&self.0, statement, params)?;
        Ok(Rows { columns: rows.columns, rows: rows.rows })
    }

    /// Runs `f` in a transaction: committed if `f` returns `Ok`, rolled back if it returns
    /// `Err`. If the guest traps or the call is cancelled, the host rolls it back.
    pub fn transaction<T, E: From<Error>>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        crate::sys::sql_begin(&self.0).map_err(Error::from)?;
        match f(self) {
            Ok(value) => {
                crate::sys::sql_commit(&self.0).map_err(Error::from)?;
                Ok(value)
            }
            Err(e) => {
                // The transaction's own error matters more than a failed rollback.
                let _ = crate::sys::sql_rollback(&self.0);
                Err(e)
            }
        }
    }

    /// Starts a transaction by hand (prefer [`Connection::transaction`]).
    pub fn begin(&self) -> Result<(), Error> {
        Ok(crate::sys::sql_begin(&self.0)?)
    }

    /// Commits the transaction started with [`Connection::begin`].
    pub fn commit(&self) -> Result<(), Error> {
        Ok(crate::sys::sql_commit(&self.0)?)
    }

    /// Rolls back the transaction started with [`Connection::begin`].
    pub fn rollback(&self) -> Result<(), Error> {
        Ok(crate::sys::sql_rollback(&self.0)?)
    }
}

/// The rows of a query.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
}

impl Rows {
    /// Column names, in order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows, in order.
    pub fn iter(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows.iter().map(|values| Row { columns: &self.columns, values })
    }

    /// The first row.
    pub fn first(&self) -> Option<Row<'_>> {
        self.iter().next()
    }

    /// Every row mapped into `T` by column name (with serde).
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<Vec<T>, Error> {
        self.iter().map(|row| row.deserialize()).collect()
    }
}

/// One row.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    columns: &'a [String],
    values: &'a [Value],
}

impl Row<'_> {
    /// The value of a column, by name or index, as `T`.
    pub fn get<T: FromValue>(&self, column: impl ColumnIndex) -> Result<T, Error> {
        let i = column.index(self.columns)?;
        T::from_value(&self.values[i]).map_err(|why| Error::Column(format!("`{}`: {why}", self.columns[i])))
    }

    /// The raw values, in column order.
    pub fn values(&self) -> &[Value] {
        self.values
    }

    /// The row mapped into `T` by column name (with serde).
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let object: serde_json::Map<String, serde_json::Value> =
            self.columns.iter().cloned().zip(self.values.iter().map(to_json)).collect();
        serde_json::from_value(serde_json::Value::Object(object)).map_err(|e| Error::Column(e.to_string()))
    }
}

fn to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Boolean(b) => (*b).into(),
        Value::Integer(n) => (*n).into(),
        Value::Real(f) => (*f).into(),
        Value::Text(s) => s.clone().into(),
        Value::Blob(b) => b.clone().into(),
    }
}

/// A column named or numbered.
pub trait ColumnIndex {
    /// Its position among `columns`.
    fn index(&self, columns: &[String]) -> Result<usize, Error>;
}

impl ColumnIndex for usize {
    fn index(&self, columns: &[String]) -> Result<usize, Error> {
        (*self < columns.len()).then_some(*self).ok_or_else(|| Error::Column(format!("no column {self}")))
    }
}

impl ColumnIndex for &str {
    fn index(&self, columns: &[String]) -> Result<usize, Error> {
        columns.iter().position(|c| c == self).ok_or_else(|| Error::Column(format!("no column `{self}`")))
    }
}

/// A Rust type a column value converts into.
pub trait FromValue: Sized {
    /// Converts, or says why not.
    fn from_value(value: &Value) -> Result<Self, String>;
}

fn mismatch(value: &Value, want: &str) -> String {
    format!("{value:?} is not {want}")
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Result<i64, String> {
        match v {
            Value::Integer(n) => Ok(*n),
            Value::Boolean(b) => Ok(i64::from(*b)),
            _ => Err(mismatch(v, "an integer")),
        }
    }
}

impl FromValue for i32 {
    fn from_value(v: &Value) -> Result<i32, String> {
        i64::from_value(v)?.try_into().map_err(|_| mismatch(v, "a 32-bit integer"))
    }
}

impl FromValue for f64 {
    fn from_value(v: &Value) -> Result<f64, String> {
        match v {
            Value::Real(f) => Ok(*f),
            Value::Integer(n) => Ok(*n as f64),
            _ => Err(mismatch(v, "a number")),
        }
    }
}

impl FromValue for bool {
    fn from_value(v: &Value) -> Result<bool, String> {
        match v {
            Value::Boolean(b) => Ok(*b),
            Value::Integer(0) => Ok(false),
            Value::Integer(1) => Ok(true),
            _ => Err(mismatch(v, "a boolean")),
        }
    }
}

impl FromValue for String {
    fn from_value(v: &Value) -> Result<String, String> {
        match v {
            Value::Text(s) => Ok(s.clone()),
            _ => Err(mismatch(v, "text")),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> Result<Vec<u8>, String> {
        match v {
            Value::Blob(b) => Ok(b.clone()),
            Value::Text(s) => Ok(s.clone().into_bytes()),
            _ => Err(mismatch(v, "bytes")),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Result<Option<T>, String> {
        match v {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

macro_rules! value_from {
    ($($t:ty => |$x:ident| $e:expr),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from($x: $t) -> Value {
                $e
            }
        })*
    };
}

value_from! {
    i64 => |n| Value::Integer(n),
    i32 => |n| Value::Integer(n.into()),
    u32 => |n| Value::Integer(n.into()),
    f64 => |f| Value::Real(f),
    bool => |b| Value::Boolean(b),
    String => |s| Value::Text(s),
    &str => |s| Value::Text(s.to_string()),
    &String => |s| Value::Text(s.clone()),
    Vec<u8> => |b| Value::Blob(b),
    &[u8] => |b| Value::Blob(b.to_vec()),
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Rows {
        Rows {
            columns: vec!["id".into(), "title".into(), "done".into(), "note".into()],
            rows: vec![vec![Value::Integer(7), Value::Text("docs".into()), Value::Integer(1), Value::Null]],
        }
    }

    #[test]
    fn columns_read_by_name_or_index() {
        let rows = rows();
        let row = rows.first().unwrap();
        assert_eq!(row.get::<i64>("id").unwrap(), 7);
        assert_eq!(row.get::<String>(1).unwrap(), "docs");
        assert!(row.get::<bool>("done").unwrap(), "SQLite's 1 reads as true");
        assert_eq!(row.get::<Option<String>>("note").unwrap(), None);
        assert!(matches!(row.get::<String>("id"), Err(Error::Column(_))));
        assert!(matches!(row.get::<i64>("missing"), Err(Error::Column(_))));
    }

    #[test]
    fn rows_map_into_structs() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Todo {
            id: i64,
            title: String,
            note: Option<String>,
        }
        let todos: Vec<Todo> = rows().deserialize().unwrap();
        assert_eq!(todos, vec![Todo { id: 7, title: "docs".into(), note: None }]);
    }

    #[test]
    fn params_convert_from_rust_values() {
        let p: &[Value] = params![1i64, "a", 2.5, true, None::<i64>, vec![1u8]];
        assert_eq!(
            p,
            &[
                Value::Integer(1),
                Value::Text("a".into()),
                Value::Real(2.5),
                Value::Boolean(true),
                Value::Null,
                Value::Blob(vec![1])
            ]
        );
    }
}
