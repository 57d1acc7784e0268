//! A small bounded pool of connections, each with its own cache of prepared
//! statements (every query the store runs is one of a few dozen texts).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use extensor_core::Error;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Statement};

use crate::errors::{connect_err, map_err};
use crate::location::Location;

/// A session never sits inside a transaction longer than this: a node that
/// stalls while holding the append lock frees it for the others (the
/// server ends its session) instead of stopping every writer.
pub const IDLE_IN_TRANSACTION_MS: u64 = 10_000;

/// Statements one connection keeps prepared; past this the cache is cleared.
const STATEMENTS_PER_CONNECTION_MAX: usize = 256;

pub(crate) struct Pool {
    location: Location,
    idle: Mutex<Vec<Conn>>,
    permits: Arc<Semaphore>,
}

pub(crate) struct Conn {
    client: Client,
    statements: HashMap<String, Statement>,
}

/// A connection taken from the pool; returned on drop unless it broke.
pub(crate) struct Lease<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
    /// Set while a transaction is open: a lease dropped then (its future
    /// was cancelled) closes the session, so the server rolls it back and
    /// no later user inherits an open transaction.
    pub in_transaction: bool,
    _permit: OwnedSemaphorePermit,
}

impl Pool {
    pub fn new(location: Location, connections_max: usize) -> Self {
        Self {
            location,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(connections_max.max(1))),
        }
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    /// A connection: an idle one, or a new one while under the bound;
    /// otherwise waits for one to be returned.
    pub async fn get(&self) -> Result<Lease<'_>, Error> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::StoreClosed)?;
        let reused = self.idle.lock().map_err(|_| Error::StoreClosed)?.pop();
        let conn = match reused.filter(|c| !c.client.is_closed()) {
            Some(c) => c,
            None => Conn {
                client: connect(&self.location).await?,
                statements: HashMap::new(),
            },
        };
        Ok(Lease {
            pool: self,
            conn: Some(conn),
            in_transaction: false,
            _permit: permit,
        })
    }
}

/// Opens one session, its driver running on the current runtime until the
/// client is dropped.
pub(crate) async fn connect(location: &Location) -> Result<Client, Error> {
    let (client, connection) = location
        .config
        .connect(NoTls)
        .await
        .map_err(|e| connect_err(location, e))?;
    // The driver ends by itself when the client is dropped.
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "PostgreSQL connection ended");
        }
    });
    // Durable acknowledgements whatever the server's default.
    client
        .batch_execute(&format!(
            "SET synchronous_commit = on; \
             SET idle_in_transaction_session_timeout = {IDLE_IN_TRANSACTION_MS}"
        ))
        .await
        .map_err(|e| connect_err(location, e))?;
    Ok(client)
}

impl Lease<'_> {
    fn conn(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .expect("a lease holds its connection until dropped")
    }

    pub fn location(&self) -> &Location {
        &self.pool.location
    }

    /// The statement for `sql`, prepared once per connection.
    pub async fn prepare(&mut self, sql: &str) -> Result<Statement, Error> {
        let location = self.pool.location.clone();
        let conn = self.conn();
        if let Some(s) = conn.statements.get(sql) {
            return Ok(s.clone());
        }
        let statement = conn
            .client
            .prepare(sql)
            .await
            .map_err(|e| map_err(&location, e))?;
        if conn.statements.len() >= STATEMENTS_PER_CONNECTION_MAX {
            conn.statements.clear();
        }
        conn.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    pub async fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Error> {
        let statement = self.prepare(sql).await?;
        let location = self.pool.location.clone();
        self.client()
            .query(&statement, params)
            .await
            .map_err(|e| map_err(&location, e))
    }

    pub async fn execute(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, Error> {
        let statement = self.prepare(sql).await?;
        let location = self.pool.location.clone();
        self.client()
            .execute(&statement, params)
            .await
            .map_err(|e| map_err(&location, e))
    }

    pub fn client(&mut self) -> &Client {
        &self.conn().client
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let reusable = |c: &Conn| !c.client.is_closed();
        if let Some(conn) = self.conn.take().filter(reusable)
            && !self.in_transaction
            && let Ok(mut idle) = self.pool.idle.lock()
        {
            idle.push(conn);
        }
    }
}
