//! What one plugin instance's `Store` holds: WASI (nothing granted), every capability's
//! context, the memory limiter and the current call's deadline.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::AsyncWrite;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::capabilities::Contexts;

/// Longest tail of a plugin's stderr kept for error messages (a panic message lands there).
const STDERR_TAIL_BYTES: usize = 4096;

/// Per-instance state: one per `Store`, dropped (with every timer and handle it owns) when
/// the instance is dropped.
pub struct PluginState {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limiter: MemoryLimiter,
    /// When the current call must end; checked on every epoch tick.
    pub deadline: Instant,
    /// When the current call began: one still running a while later computes
    /// (`engine::Computing::note`).
    pub call_started: Instant,
    /// Every capability's context, built from the plugin's grants.
    pub caps: Contexts,
    pub stderr: StderrTail,
}

impl PluginState {
    /// WASI is deny-by-default here: no preopened directories, no sockets, no name lookup,
    /// no environment, no arguments. stdout/stderr go to the host log (stderr's tail is kept
    /// for error messages).
    pub fn new(plugin: &str, memory_bytes: usize, caps: Contexts) -> Self {
        let stderr = StderrTail::new(plugin);
        let wasi = WasiCtxBuilder::new()
            .stdout(stderr.clone())
            .stderr(stderr.clone())
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory_bytes),
            deadline: Instant::now(),
            call_started: Instant::now(),
            caps,
            stderr,
        }
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps linear memory and remembers whether it refused a growth, so an out-of-memory
/// abort in the guest can be reported as such instead of as a bare trap.
pub struct MemoryLimiter {
    max_bytes: usize,
    /// The largest linear memory granted so far (memories only grow).
    in_use: usize,
    /// Set when a growth was refused during the current call.
    pub refused: bool,
}

impl MemoryLimiter {
    fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            in_use: 0,
            refused: false,
        }
    }

    /// The cap in bytes.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The instance's linear memory, in bytes (the largest memory it grew to).
    pub fn in_use(&self) -> usize {
        self.in_use
    }
}

/// Tables and instances are bounded too: a component declares few of each.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = desired <= self.max_bytes;
        if ok {
            self.in_use = self.in_use.max(desired);
        } else {
            self.refused = true;
        }
        Ok(ok)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// A plugin's stdout/stderr: each line goes to the host log tagged with the plugin's name,
/// and the last few KiB are kept so a panic message can be shown to the user.
#[derive(Clone)]
pub struct StderrTail {
    plugin: Arc<str>,
    buf: Arc<Mutex<VecDeque<u8>>>,
}

impl StderrTail {
    fn new(plugin: &str) -> Self {
        Self {
            plugin: plugin.into(),
            buf: Arc::new(Mutex::new(VecDeque::new())),
        }
    }

    /// The last non-empty line written, if any.
    pub fn last_line(&self) -> Option<String> {
        let buf = self.buf.lock().ok()?;
        let bytes: Vec<u8> = buf.iter().copied().collect();
        let text = String::from_utf8_lossy(&bytes);
        text.lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_string)
    }

    /// Forgets what was written, at the start of each call.
    pub fn clear(&self) {
        if let Ok(mut buf) = self.buf.lock() {
            buf.clear();
        }
    }

    fn push(&self, data: &[u8]) {
        let text = String::from_utf8_lossy(data);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            tracing::info!(plugin = %self.plugin, "{line}");
        }
        if let Ok(mut buf) = self.buf.lock() {
            buf.extend(data);
            let excess = buf.len().saturating_sub(STDERR_TAIL_BYTES);
            buf.drain(..excess);
        }
    }
}

impl IsTerminal for StderrTail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StderrTail {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for StderrTail {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
