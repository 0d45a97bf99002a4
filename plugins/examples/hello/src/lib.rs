//! The smallest complete roost plugin, walked through in PLUGINS.md: `!hello [name]`
//! greets, `!count` counts how often it was asked, in storage that survives restarts.

use roost_plugin::prelude::*;

/// The plugin's state between calls: only what config set at `init`.
#[derive(Default)]
struct Hello {
    /// The greeting word, `greeting` in `[plugins.hello.config]`.
    greeting: String,
}

impl Plugin for Hello {
    fn init(&mut self, cfg: Config) -> Result<Manifest, String> {
        self.greeting = cfg.get_or("greeting", "hello");
        Ok(Manifest::new("hello", env!("CARGO_PKG_VERSION"))
            .command(CommandSpec::new("hello", "!hello [name]", "Say hello"))
            .command(CommandSpec::new(
                "count",
                "!count",
                "Count how often I was asked",
            )))
    }

    fn on_command(&mut self, cmd: Command) -> Result<Reply, String> {
        match cmd.name() {
            "hello" => {
                let name = cmd.arg(0).unwrap_or("world");
                Ok(Reply::text(format!("{}, {name}!", self.greeting)))
            }
            "count" => {
                // Stored text is ours, but never trust it blindly: a bad value restarts at 0.
                let seen: u64 = kv::get_string("count")?
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                kv::set_string("count", &(seen + 1).to_string())?;
                Ok(Reply::text((seen + 1).to_string()))
            }
            other => Err(format!("hello does not serve `{other}`")),
        }
    }
}

export_plugin!(Hello);
