//! SQLite databases: [`Sql`], the handle of a `d1` binding; [`Statement`], a statement with
//! its parameters; [`Results`] and [`Row`], what a statement returned; and the
//! [`params!`](crate::params) macro.

mod value;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::bindings::{Opened, sql as wit};
use crate::{BindingError, Result};

pub use value::Value;

/// Builds the parameter list of a statement, converting each expression into a
/// [`Value`](crate::Value): `sdk::params![id, "text", None::<i64>]`.
///
/// ```ignore
/// db.execute("INSERT INTO notes (id, body) VALUES (?, ?)", sdk::params![7, "hello"])?;
/// ```
#[macro_export]
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        ::std::vec![$($crate::Value::from($value)),*]
    };
}

/// A `d1` binding, from [`Env::sql`](crate::Env::sql): an SQLite database of the customer.
///
/// Statements use `?` / `?NNN` placeholders bound to [`Value`]s. Calls fail with a
/// [`BindingError`] holding SQLite's message when the statement fails or is not
/// allowed.
///
/// ```ignore
/// #[derive(serde::Deserialize)]
/// struct Note { id: i64, body: String }
///
/// let db = env.sql("DB");
/// db.execute("INSERT INTO notes (body) VALUES (?)", sdk::params!["hello"])?;
/// let notes: Vec<Note> = db.query("SELECT id, body FROM notes WHERE id > ?", sdk::params![0])?;
/// ```
#[derive(Debug, Clone)]
pub struct Sql {
    database: Opened<wit::Database>,
}

impl Sql {
    pub(crate) fn new(binding: &str) -> Self {
        Self {
            database: Opened::new(binding),
        }
    }

    /// The database, opened by the first call (which finds a missing binding).
    fn database(&self, operation: &'static str) -> Result<&wit::Database> {
        self.database
            .get(wit::Database::open)
            .map_err(|e| self.error(operation, e))
    }

    fn error(&self, operation: &'static str, error: crate::bindings::types::Error) -> crate::Error {
        BindingError::new(operation, self.database.binding(), error).into()
    }

    /// Runs one statement with its parameters; see [`params!`](crate::params).
    pub fn execute(&self, sql: &str, params: impl IntoIterator<Item = Value>) -> Result<Results> {
        self.run(Statement::new(sql).bind_all(params))
    }

    /// Runs one [`Statement`].
    pub fn run(&self, statement: Statement) -> Result<Results> {
        self.database("sql execute")?
            .execute(&statement.into_wit())
            .map(Results::from_wit)
            .map_err(|e| self.error("sql execute", e))
    }

    /// Runs a query and deserializes every row into `T`, a struct whose fields are named
    /// after the columns (or `serde_json::Value` for JSON objects); see
    /// [`Row::deserialize`].
    pub fn query<T: DeserializeOwned>(
        &self,
        sql: &str,
        params: impl IntoIterator<Item = Value>,
    ) -> Result<Vec<T>> {
        self.execute(sql, params)?.deserialize()
    }

    /// Runs a query and deserializes its first row into `T`, if it returned any.
    pub fn first<T: DeserializeOwned>(
        &self,
        sql: &str,
        params: impl IntoIterator<Item = Value>,
    ) -> Result<Option<T>> {
        self.execute(sql, params)?
            .rows()
            .next()
            .map(|row| row.deserialize())
            .transpose()
    }

    /// Runs statements in one transaction: all of them apply, or none when one fails.
    /// The results are in the order of the statements.
    ///
    /// ```ignore
    /// db.batch([
    ///     Statement::new("UPDATE accounts SET balance = balance - ? WHERE id = ?").bind(10).bind(1),
    ///     Statement::new("UPDATE accounts SET balance = balance + ? WHERE id = ?").bind(10).bind(2),
    /// ])?;
    /// ```
    pub fn batch(&self, statements: impl IntoIterator<Item = Statement>) -> Result<Vec<Results>> {
        let statements: Vec<wit::Statement> =
            statements.into_iter().map(Statement::into_wit).collect();
        self.database("sql batch")?
            .batch(&statements)
            .map(|all| all.into_iter().map(Results::from_wit).collect())
            .map_err(|e| self.error("sql batch", e))
    }
}

/// One SQL statement and the values of its parameters, in order.
///
/// It (de)serializes as `{"sql": "...", "params": [...]}` (`params` may be left out),
/// with parameters in [`Value`]'s JSON form.
///
/// ```ignore
/// let insert = Statement::new("INSERT INTO notes (id, body) VALUES (?, ?)").bind(1).bind("hi");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    sql: String,
    #[serde(default)]
    params: Vec<Value>,
}

impl Statement {
    /// A statement without parameters (yet).
    pub fn new(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            params: Vec::new(),
        }
    }

    /// Appends one parameter.
    pub fn bind(mut self, value: impl Into<Value>) -> Self {
        self.params.push(value.into());
        self
    }

    /// Appends parameters; see [`params!`](crate::params).
    pub fn bind_all(mut self, values: impl IntoIterator<Item = Value>) -> Self {
        self.params.extend(values);
        self
    }

    /// The SQL text.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The parameters bound so far.
    pub fn params(&self) -> &[Value] {
        &self.params
    }

    fn into_wit(self) -> wit::Statement {
        wit::Statement {
            sql: self.sql,
            params: self.params.into_iter().map(Value::into_wit).collect(),
        }
    }
}

/// What a statement returned: its columns and rows, and what it changed.
///
/// It serializes as `{"columns": [..], "rows": [[..], ..], "rows_written": N,
/// "last_insert_id": N}`, each value in [`Value`]'s JSON form.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Results {
    /// The column names, in order.
    pub columns: Vec<String>,
    /// The rows, each with one value per column.
    pub rows: Vec<Vec<Value>>,
    /// How many rows the statement inserted, updated or deleted.
    pub rows_written: u64,
    /// The rowid of the last row inserted on this connection.
    pub last_insert_id: i64,
}

impl Results {
    fn from_wit(results: wit::Results) -> Self {
        Self {
            columns: results.columns,
            rows: results
                .rows
                .into_iter()
                .map(|row| row.into_iter().map(Value::from_wit).collect())
                .collect(),
            rows_written: results.rows_written,
            last_insert_id: results.last_insert_id,
        }
    }

    /// The rows, with access to their columns by name.
    pub fn rows(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows.iter().map(|values| Row {
            columns: &self.columns,
            values,
        })
    }

    /// Every row deserialized into `T`; see [`Row::deserialize`].
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        self.rows().map(|row| row.deserialize()).collect()
    }

    /// Every row as a JSON object of its columns; see [`Row::to_json`].
    pub fn to_json(&self) -> Vec<serde_json::Map<String, serde_json::Value>> {
        self.rows().map(|row| row.to_json()).collect()
    }
}

/// One row of [`Results`], with its columns by name.
///
/// ```ignore
/// for row in db.execute("SELECT id, body FROM notes", [])?.rows() {
///     let id = row.get("id").and_then(Value::as_i64);
/// }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    columns: &'a [String],
    values: &'a [Value],
}

impl<'a> Row<'a> {
    /// The value of column `name` (the first, if several have that name).
    pub fn get(&self, name: &str) -> Option<&'a Value> {
        let index = self.columns.iter().position(|c| c == name)?;
        self.values.get(index)
    }

    /// The column names.
    pub fn columns(&self) -> &'a [String] {
        self.columns
    }

    /// The values, one per column.
    pub fn values(&self) -> &'a [Value] {
        self.values
    }

    /// The row as a JSON object from column name to [`Value::to_json`].
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        self.columns
            .iter()
            .zip(self.values)
            .map(|(column, value)| (column.clone(), value.to_json()))
            .collect()
    }

    /// The row deserialized into `T` from its JSON object ([`Row::to_json`]): a struct
    /// with fields named after the columns, a map, or `serde_json::Value`. A blob fits a
    /// `Vec<u8>` field; SQLite's `0`/`1` fits an integer field, not a `bool`.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T> {
        Ok(serde_json::from_value(serde_json::Value::Object(
            self.to_json(),
        ))?)
    }
}
