//! The HTTP server on the process's runtime: bound at start (a port in use
//! fails the start, naming it), served as a task, stopped gracefully
//! (in-flight requests finish). `vireid run` and `vireid serve` both start it
//! this way (`pipeline::service`).

use std::net::SocketAddr;

use super::{bind, serve_listener, ApiConfig, ApiState, ServerError};
use crate::core::Shutdown;

pub struct ApiServer {
    addr: SocketAddr,
    stop: Shutdown,
    task: Option<tokio::task::JoinHandle<Result<(), ServerError>>>,
    runtime: tokio::runtime::Handle,
}

impl ApiServer {
    /// Binds `config.bind` and serves `state` on `runtime` until [`ApiServer::stop`].
    pub fn start(
        runtime: &tokio::runtime::Handle,
        config: &ApiConfig,
        state: ApiState,
    ) -> Result<ApiServer, ServerError> {
        let listener = runtime.block_on(bind(config))?;
        let addr = listener.local_addr().map_err(|source| ServerError::Bind { bind: config.bind, source })?;
        let stop = Shutdown::new();
        let stopped = stop.clone();
        let task = runtime
            .spawn(serve_listener(listener, config.max_upload_bytes, state, async move { stopped.wait().await }));
        Ok(ApiServer { addr, stop, task: Some(task), runtime: runtime.clone() })
    }

    /// Where it listens (the port is known even for `bind = "127.0.0.1:0"`).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Finishes in-flight requests and stops serving.
    pub fn stop(mut self) -> Result<(), ServerError> {
        self.stop.request();
        match self.task.take() {
            Some(t) => self.runtime.block_on(t)?,
            None => Ok(()),
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop.request();
    }
}
