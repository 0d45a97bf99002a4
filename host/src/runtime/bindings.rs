//! The one `bindgen!` for the whole host: Rust types and traits for the `roost:plugin` world.
//!
//! Every capability module implements the generated `Host` trait of its interface; the
//! runtime calls the four exports through [`Plugin`].

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    // Host functions are async so a capability can await I/O (SQLite, outbox, supervisor)
    // without blocking a runtime worker, and `trappable` so each returns
    // `wasmtime::Result<..>`: the outer error is a trap (a host bug), the inner WIT `error`
    // is the guest's mistake (access denied, not found, …).
    imports: { default: async | trappable },
    // Exports are called with `call_async` so epoch interruption can yield and time out.
    exports: { default: async },
    // Lets tests and the supervisor compare WIT values (manifests, rows).
    additional_derives: [PartialEq],
    // Resources are the capability's own types, kept in that capability's table.
    with: {
        "roost:plugin/sqlite.connection": crate::capabilities::sqlite::SqliteConnection,
        "roost:plugin/sqlite.cursor": crate::capabilities::sqlite::SqliteCursor,
        // Outgoing HTTP is wasmtime-wasi-http's; `capabilities::http` links it.
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
    },
});

pub use self::roost::plugin::types::{
    Attachment, CodeBlock, CommandSpec, Content, Error as GuestError, Role as WitRole,
};
