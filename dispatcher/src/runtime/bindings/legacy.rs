//! `platform:worker@0.1.0`, the first version of the guest interface (`sdk/wit-0.1.0`),
//! kept for components built with the first SDK: KV and SQL calls name their binding on
//! every call instead of opening a resource. Each call resolves the binding and goes to
//! the same unit contexts and operations as 0.2.0; only the WIT types are converted.

use wasmtime::component::{HasData, Linker};

use super::kv::KvCtx;
use super::platform::worker::kv as kv2;
use super::platform::worker::sql as sql2;
use super::platform::worker::types::Error as Error2;
use super::sql::{SqlCtx, run_statements};
use super::vars::VarsCtx;
use super::{LogCtx, platform as v2};

wasmtime::component::bindgen!({
    path: "../sdk/wit-0.1.0",
    world: "platform:worker/worker",
    imports: { default: async },
});

use platform::worker::types::Error;
use platform::worker::{kv, log, sql, types, vars};

/// Where each 0.1.0 interface finds its unit's context in the store's data.
pub struct Projections<T> {
    pub vars: fn(&mut T) -> &mut VarsCtx,
    pub kv: fn(&mut T) -> &mut KvCtx,
    pub sql: fn(&mut T) -> &mut SqlCtx,
    pub log: fn(&mut T) -> &mut LogCtx,
}

struct Unit<C>(std::marker::PhantomData<C>);

impl<C: Send + 'static> HasData for Unit<C> {
    type Data<'a> = &'a mut C;
}

struct NoState;

impl HasData for NoState {
    type Data<'a> = NoState;
}

impl types::Host for NoState {}

/// Links every 0.1.0 interface.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    projections: Projections<T>,
) -> wasmtime::Result<()> {
    types::add_to_linker::<T, NoState>(linker, |_| NoState)?;
    vars::add_to_linker::<T, Unit<VarsCtx>>(linker, projections.vars)?;
    kv::add_to_linker::<T, Unit<KvCtx>>(linker, projections.kv)?;
    sql::add_to_linker::<T, Unit<SqlCtx>>(linker, projections.sql)?;
    log::add_to_linker::<T, Unit<LogCtx>>(linker, projections.log)
}

fn old(error: Error2) -> Error {
    match error {
        Error2::NoSuchBinding(m) => Error::NoSuchBinding(m),
        Error2::Invalid(m) => Error::Invalid(m),
        Error2::LimitExceeded(m) => Error::LimitExceeded(m),
        Error2::Internal(m) => Error::Internal(m),
    }
}

impl vars::Host for &mut VarsCtx {
    async fn get(&mut self, name: String) -> Option<String> {
        v2::worker::vars::Host::get(self, name).await
    }

    async fn secret(&mut self, name: String) -> Option<String> {
        v2::worker::vars::Host::secret(self, name).await
    }
}

impl log::Host for &mut LogCtx {
    async fn log(&mut self, level: log::Level, message: String) {
        let level = match level {
            log::Level::Debug => v2::worker::log::Level::Debug,
            log::Level::Info => v2::worker::log::Level::Info,
            log::Level::Warn => v2::worker::log::Level::Warn,
            log::Level::Error => v2::worker::log::Level::Error,
        };
        v2::worker::log::Host::log(self, level, message).await
    }
}

impl kv::Host for &mut KvCtx {
    async fn get(&mut self, binding: String, key: String) -> Result<Option<Vec<u8>>, Error> {
        let target = self.target(&binding).map_err(old)?;
        target.get(key).await.map_err(old)
    }

    async fn put(
        &mut self,
        binding: String,
        key: String,
        value: Vec<u8>,
        expiration_ttl: Option<u64>,
    ) -> Result<(), Error> {
        let target = self.target(&binding).map_err(old)?;
        target.put(key, value, expiration_ttl).await.map_err(old)
    }

    async fn delete(&mut self, binding: String, key: String) -> Result<(), Error> {
        let target = self.target(&binding).map_err(old)?;
        target.delete(key).await.map_err(old)
    }

    async fn list(
        &mut self,
        binding: String,
        prefix: Option<String>,
        cursor: Option<String>,
        limit: Option<u32>,
    ) -> Result<kv::ListPage, Error> {
        let target = self.target(&binding).map_err(old)?;
        let page: kv2::ListPage = target.list(prefix, cursor, limit).await.map_err(old)?;
        Ok(kv::ListPage {
            keys: page
                .keys
                .into_iter()
                .map(|key| kv::Key {
                    name: key.name,
                    expiration: key.expiration,
                })
                .collect(),
            cursor: page.cursor,
        })
    }
}

fn new_value(value: sql::Value) -> sql2::Value {
    match value {
        sql::Value::Null => sql2::Value::Null,
        sql::Value::Integer(i) => sql2::Value::Integer(i),
        sql::Value::Real(f) => sql2::Value::Real(f),
        sql::Value::Text(s) => sql2::Value::Text(s),
        sql::Value::Blob(b) => sql2::Value::Blob(b),
    }
}

fn old_value(value: sql2::Value) -> sql::Value {
    match value {
        sql2::Value::Null => sql::Value::Null,
        sql2::Value::Integer(i) => sql::Value::Integer(i),
        sql2::Value::Real(f) => sql::Value::Real(f),
        sql2::Value::Text(s) => sql::Value::Text(s),
        sql2::Value::Blob(b) => sql::Value::Blob(b),
    }
}

fn new_statement(statement: sql::Statement) -> sql2::Statement {
    sql2::Statement {
        sql: statement.sql,
        params: statement.params.into_iter().map(new_value).collect(),
    }
}

fn old_results(results: sql2::Results) -> sql::Results {
    sql::Results {
        columns: results.columns,
        rows: results
            .rows
            .into_iter()
            .map(|row| row.into_iter().map(old_value).collect())
            .collect(),
        rows_written: results.rows_written,
        last_insert_id: results.last_insert_id,
    }
}

impl sql::Host for &mut SqlCtx {
    async fn execute(
        &mut self,
        binding: String,
        statement: sql::Statement,
    ) -> Result<sql::Results, Error> {
        let database = self.database(&binding).map_err(old)?;
        let mut results = run_statements(database, vec![new_statement(statement)])
            .await
            .map_err(old)?;
        Ok(old_results(results.remove(0)))
    }

    async fn batch(
        &mut self,
        binding: String,
        statements: Vec<sql::Statement>,
    ) -> Result<Vec<sql::Results>, Error> {
        let database = self.database(&binding).map_err(old)?;
        let statements = statements.into_iter().map(new_statement).collect();
        let results = run_statements(database, statements).await.map_err(old)?;
        Ok(results.into_iter().map(old_results).collect())
    }
}
