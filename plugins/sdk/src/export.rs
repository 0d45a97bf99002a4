//! What [`export_plugin!`](crate::export_plugin) wires up: the WIT exports on top of a
//! [`Plugin`], the cell that holds the plugin between calls, and panic logging.

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::Once;

use crate::__bindings::roost::plugin::types as wit;
use crate::__bindings::{self as bindings};
use crate::{Command, CommandSpec, Config, Plugin, Reply};

thread_local! {
    /// The plugin value between calls. A component has one instance of one plugin type and
    /// the host calls it one call at a time, so one type-erased cell is enough; `Adapter<P>`
    /// downcasts it back to its `P`. (wasm32-wasip2 has no threads: this is a plain static.)
    static PLUGIN: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };

    /// The commands from the last successful `init`, to tell which one a message invokes.
    static COMMANDS: RefCell<Vec<CommandSpec>> = const { RefCell::new(Vec::new()) };
}

/// Implements the generated `Guest` trait for any [`Plugin`]. [`export_plugin!`] names it
/// `Adapter<YourType>` in the wit-bindgen export macro.
///
/// [`export_plugin!`]: crate::export_plugin
pub struct Adapter<P>(PhantomData<P>);

/// Runs `f` on the plugin, creating a default one if `init` has not succeeded (the host
/// does not call the other hooks then, but a missing value must not trap).
fn with_plugin<P: Plugin, R>(f: impl FnOnce(&mut P) -> R) -> R {
    PLUGIN.with(|cell| {
        let mut slot = cell.borrow_mut();
        if !slot.as_ref().is_some_and(|b| b.is::<P>()) {
            *slot = Some(Box::new(P::default()));
        }
        match slot.as_mut().and_then(|b| b.downcast_mut::<P>()) {
            Some(plugin) => f(plugin),
            // Unreachable: the slot was just filled with a `P`.
            None => f(&mut P::default()),
        }
    })
}

/// Sends panic messages to the host's log before the call traps: with `panic = "abort"`
/// the message would otherwise go to a stderr nobody reads.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let what = info.payload_as_str().unwrap_or("(non-text payload)");
            let message = match info.location() {
                Some(at) => format!("panicked at {}:{}: {what}", at.file(), at.line()),
                None => format!("panicked: {what}"),
            };
            crate::log::error(message);
        }));
    });
}

/// Runs a hook, turning a panic into `Err` where the build can unwind. With
/// `panic = "abort"` (the plugin profile) this is a plain call and a panic traps after the
/// hook above has logged it.
fn guarded<R>(hook: &str, f: impl FnOnce() -> R) -> Result<R, String> {
    #[cfg(panic = "unwind")]
    {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-text payload".into());
            format!("plugin panicked in {hook}: {what}")
        })
    }
    #[cfg(not(panic = "unwind"))]
    {
        let _ = hook;
        Ok(f())
    }
}

impl<P: Plugin> bindings::Guest for Adapter<P> {
    fn init(config: String) -> Result<wit::Manifest, String> {
        install_panic_hook();
        let cfg = Config::parse(&config)?;
        let mut plugin = P::default();
        let manifest = guarded("init", || plugin.init(cfg))??;
        manifest.check()?;
        COMMANDS.with(|c| *c.borrow_mut() = manifest.command_specs().to_vec());
        PLUGIN.with(|cell| *cell.borrow_mut() = Some(Box::new(plugin)));
        Ok(manifest.into())
    }

    fn on_command(ctx: wit::CommandContext, args: Vec<String>) -> Result<wit::Message, String> {
        install_panic_hook();
        let cmd = COMMANDS.with(|c| Command::from_host(ctx, args, &c.borrow()));
        let reply: Reply = with_plugin::<P, _>(|p| guarded("on_command", || p.on_command(cmd)))??;
        Ok(reply.into_message())
    }

    fn on_event(event: wit::Event) {
        install_panic_hook();
        // Nobody awaits an event, so a caught panic can only be logged.
        let outcome = with_plugin::<P, _>(|p| match event {
            wit::Event::Timer(tag) => guarded("on_timer", || p.on_timer(&tag)),
            wit::Event::Notice(notice) => guarded("on_notice", || p.on_notice(&notice)),
            wit::Event::FilesChanged(batch) => {
                let batch = crate::watch::FilesChanged::from(batch);
                guarded("on_files_changed", || p.on_files_changed(batch))
            }
            wit::Event::JobEnded(ended) => {
                let ended = crate::process::JobEnded::from(ended);
                guarded("on_job_ended", || p.on_job_ended(ended))
            }
        });
        if let Err(e) = outcome {
            crate::log::error(e);
        }
    }

    fn status() -> String {
        install_panic_hook();
        with_plugin::<P, _>(|p| guarded("status", || p.status())).unwrap_or_else(|e| e)
    }

    fn on_webhook(request: wit::WebhookRequest) -> wit::WebhookResponse {
        install_panic_hook();
        let request = crate::webhook::Request::from(request);
        let outcome = with_plugin::<P, _>(|p| guarded("on_webhook", || p.on_webhook(request)));
        match outcome {
            Ok(response) => response.into(),
            Err(e) => {
                crate::log::error(&e);
                crate::webhook::Response::status(500).text(e).into()
            }
        }
    }
}

/// Makes a [`Plugin`] type the component's implementation of the `roost:plugin` world:
/// writes the exported `init`, `on-command`, `on-event`, `status` and `on-webhook` functions, keeps the
/// plugin value in a cell between calls, and logs panics to the host's log.
///
/// Call it once, at the top level of the plugin crate (a `cdylib`):
///
/// ```text
/// #[derive(Default)]
/// struct MyPlugin;
/// impl roost_plugin::Plugin for MyPlugin { /* … */ }
/// roost_plugin::export_plugin!(MyPlugin);
/// ```
///
/// The plugin value is created with `Default` and then given to `init`; it lives until
/// the host drops the instance. With `panic = "abort"` (the plugin workspace profile) a
/// panic traps the call after its message is logged, and the host rebuilds the instance
/// from `Default` and `init`. Off wasm (unit tests on the build machine) it only checks
/// that the type is a `Plugin`.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        const _: () = {
            // The wit-bindgen export macro wants a plain identifier.
            #[cfg(target_arch = "wasm32")]
            type __RoostPluginExport = $crate::__private::Adapter<$plugin>;
            #[cfg(target_arch = "wasm32")]
            $crate::__bindings::__export_plugin_world!(
                __RoostPluginExport with_types_in $crate::__bindings
            );
            // Fail here, with a clear message, if the type is not a plugin.
            const fn __roost_assert_plugin<P: $crate::Plugin>() {}
            __roost_assert_plugin::<$plugin>();
        };
    };
}
