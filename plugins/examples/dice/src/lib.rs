//! `!roll NdM` rolls dice and remembers the last roll; `!last` tells it. The Rust twin of
//! the Python SDK's `examples/dice.py` (PLUGINS.md shows both).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use roost_plugin::prelude::*;

/// No state between calls: the last roll lives in KV.
#[derive(Default)]
struct Dice;

/// A number in `1..=sides` from the host's randomness: std seeds each `RandomState` from
/// WASI's random source, which is all a dice roll needs (no extra crate).
fn roll_one(sides: u64) -> u64 {
    RandomState::new().hash_one(0u8) % sides + 1
}

/// `(count, sides)` from "NdM", or `None`.
fn parse(spec: &str) -> Option<(u64, u64)> {
    let (count, sides) = spec
        .to_ascii_lowercase()
        .split_once('d')
        .map(|(c, s)| (c.to_string(), s.to_string()))?;
    let (count, sides): (u64, u64) = (count.parse().ok()?, sides.parse().ok()?);
    ((1..=100).contains(&count) && sides >= 1).then_some((count, sides))
}

impl Plugin for Dice {
    fn init(&mut self, _cfg: Config) -> Result<Manifest, String> {
        Ok(Manifest::new("dice", env!("CARGO_PKG_VERSION"))
            .command(CommandSpec::new("roll", "!roll NdM", "roll dice").min_args(1))
            .command(CommandSpec::new("last", "!last", "the last roll")))
    }

    fn on_command(&mut self, cmd: Command) -> Result<Reply, String> {
        match cmd.name() {
            "roll" => {
                let spec = cmd.arg(0).unwrap_or_default();
                let Some((count, sides)) = parse(spec) else {
                    return Ok(Reply::text(format!(
                        "can't roll '{spec}': write NdM, e.g. 2d6"
                    )));
                };
                let total: u64 = (0..count).map(|_| roll_one(sides)).sum();
                kv::set_string("last", &format!("{}\t{total}", cmd.identity()))?;
                Ok(Reply::text(format!(
                    "{} rolled {spec}: {total}",
                    cmd.identity()
                )))
            }
            "last" => Ok(Reply::text(match kv::get_string("last")? {
                Some(last) => match last.split_once('\t') {
                    Some((by, total)) => format!("{by} rolled {total}"),
                    None => "nobody rolled yet".to_string(),
                },
                None => "nobody rolled yet".to_string(),
            })),
            other => Err(format!("dice does not serve `{other}`")),
        }
    }
}

export_plugin!(Dice);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_rolls_stay_in_range() {
        assert_eq!(parse("2d6"), Some((2, 6)));
        assert_eq!(parse("1D1"), Some((1, 1)));
        for bad in ["lots", "0d6", "101d6", "2d0", "d6", "2d"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert!((0..200).map(|_| roll_one(6)).all(|n| (1..=6).contains(&n)));
        assert_eq!(roll_one(1), 1);
    }
}
