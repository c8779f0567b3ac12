//! `d1` bindings: SQLite databases of the script's customer (`platform:worker/sql`, a
//! `database` resource opened by binding name). The databases themselves, locked down
//! against hostile SQL, are `database.rs`.

mod database;

use std::sync::Arc;

use platform_names::valid_name;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use super::platform::worker::sql::{
    self as wit, Host as SqlHost, HostDatabase, Results, Statement, add_to_linker as link_sql,
};
use super::platform::worker::types::Error as BindingError;
use super::{OwnedResources, ResourceBinding};
use database::Database;
pub use database::{SqlDatabases, SqlLimits};

/// The `d1` binding unit: `{"type": "d1", "name": "DB", "database": "app"}`; the
/// database is the owner's own and is created on first use.
pub const D1: ResourceBinding = ResourceBinding {
    kind: "d1",
    field: "database",
    valid: valid_name,
    rule: "use 1-63 of a-z, 0-9 and -",
    resources: |bindings| &mut bindings.sql,
};

/// One run's view of SQL: the open databases and the script's bindings.
pub struct SqlCtx {
    sql: Arc<SqlDatabases>,
    databases: OwnedResources,
}

impl SqlCtx {
    pub fn new(sql: &Arc<SqlDatabases>, databases: &OwnedResources) -> SqlCtx {
        SqlCtx {
            sql: sql.clone(),
            databases: databases.clone(),
        }
    }

    /// The customer database behind the script's `d1` binding `binding`, and its limits.
    pub(super) fn database(
        &self,
        binding: &str,
    ) -> Result<(Arc<Database>, SqlLimits), BindingError> {
        let name = self.databases.get(D1.kind, binding)?;
        Ok((
            self.sql.database(&self.databases.owner, name)?,
            self.sql.limits.clone(),
        ))
    }
}

/// An opened database.
pub struct DatabaseHandle {
    database: Arc<Database>,
    limits: SqlLimits,
}

/// What the `sql` interface is linked with: this run's SQL context and its resources.
pub struct SqlView<'a> {
    pub ctx: &'a mut SqlCtx,
    pub table: &'a mut ResourceTable,
}

impl SqlView<'_> {
    fn opened(
        &self,
        database: &Resource<wit::Database>,
    ) -> Result<(Arc<Database>, SqlLimits), BindingError> {
        let handle = self
            .table
            .get(database)
            .map_err(|e| BindingError::Internal(e.to_string()))?;
        Ok((handle.database.clone(), handle.limits.clone()))
    }
}

struct HasSql;

impl HasData for HasSql {
    type Data<'a> = SqlView<'a>;
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> SqlView<'_>,
) -> wasmtime::Result<()> {
    link_sql::<T, HasSql>(linker, get)
}

/// Runs statements: a single quick read right here, anything else on the blocking pool.
pub(super) async fn run_statements(
    (db, limits): (Arc<Database>, SqlLimits),
    statements: Vec<Statement>,
) -> Result<Vec<Results>, BindingError> {
    match statements.as_slice() {
        [] => return Ok(Vec::new()),
        [statement] => {
            if let Some(ran) = db.try_read_inline(statement, &limits) {
                return ran.map(|results| vec![results]);
            }
        }
        _ => {}
    }
    tokio::task::spawn_blocking(move || db.run(&statements, &limits))
        .await
        .map_err(|e| BindingError::Internal(e.to_string()))?
}

impl SqlHost for SqlView<'_> {}

impl HostDatabase for SqlView<'_> {
    async fn open(&mut self, binding: String) -> Result<Resource<wit::Database>, BindingError> {
        let (database, limits) = self.ctx.database(&binding)?;
        self.table
            .push(DatabaseHandle { database, limits })
            .map_err(|e| BindingError::Internal(e.to_string()))
    }

    async fn execute(
        &mut self,
        database: Resource<wit::Database>,
        statement: Statement,
    ) -> Result<Results, BindingError> {
        let mut results = run_statements(self.opened(&database)?, vec![statement]).await?;
        Ok(results.remove(0))
    }

    async fn batch(
        &mut self,
        database: Resource<wit::Database>,
        statements: Vec<Statement>,
    ) -> Result<Vec<Results>, BindingError> {
        run_statements(self.opened(&database)?, statements).await
    }

    async fn drop(&mut self, database: Resource<wit::Database>) -> wasmtime::Result<()> {
        self.table.delete(database)?;
        Ok(())
    }
}
