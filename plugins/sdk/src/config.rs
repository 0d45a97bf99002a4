//! [`Config`]: the plugin's own table from `roost.toml`.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The plugin's `[plugins.NAME.config]` table from `roost.toml`, given to
/// [`Plugin::init`](crate::Plugin::init). The host passes it as JSON; this type parses it
/// once and hands out typed values, so a plugin never handles JSON text.
///
/// Keys are the table's top-level keys; a nested table is one key whose value
/// deserializes into a map or a `#[derive(Deserialize)]` struct.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    values: Map<String, Value>,
}

impl Config {
    /// Parses the JSON the host passes to `init`. Empty text and `null` mean "no config";
    /// anything but a JSON object is an error.
    pub fn parse(json: &str) -> Result<Self, String> {
        if json.trim().is_empty() {
            return Ok(Self::default());
        }
        match serde_json::from_str::<Value>(json) {
            Ok(Value::Object(values)) => Ok(Self { values }),
            Ok(Value::Null) => Ok(Self::default()),
            Ok(other) => Err(format!(
                "plugin config must be a table, got {}",
                json_kind(&other)
            )),
            Err(e) => Err(format!("plugin config is not valid JSON: {e}")),
        }
    }

    /// The value of `key` as a `T`. A missing key is an error unless `T` accepts `null`
    /// (an `Option`, which then is `None`); a value of the wrong type is an error naming
    /// the key. The message is ready to return from `init`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<T, String> {
        match self.values.get(key) {
            Some(value) => T::deserialize(value).map_err(|e| format!("config key `{key}`: {e}")),
            None => {
                T::deserialize(&Value::Null).map_err(|_| format!("config key `{key}` is missing"))
            }
        }
    }

    /// The value of `key`, or `default` when the key is missing. The value's type comes
    /// from where the result goes (`self.channel = cfg.get_or("channel", "ops")` reads a
    /// `String`; `if cfg.get_or("verbose", false)` a `bool`); spell it out where nothing
    /// says, as in `cfg.get_or::<u64>("limit", 10)`. A value of the wrong type is logged as
    /// a warning and `default` is used, so a typo in config never stops a plugin that has a
    /// sensible fallback; use [`get`](Self::get) to refuse it instead.
    pub fn get_or<T: ConfigValue>(&self, key: &str, default: T::Default<'_>) -> T {
        match self.values.get(key) {
            None => T::from_default(default),
            Some(value) => match T::deserialize(value) {
                Ok(v) => v,
                Err(e) => {
                    crate::log::warn(format!("config key `{key}`: {e}; using the default"));
                    T::from_default(default)
                }
            },
        }
    }

    /// The whole table as a `T`, typically a `#[derive(Deserialize)]` struct with
    /// `#[serde(default)]`, for plugins with many settings.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, String> {
        T::deserialize(Value::Object(self.values.clone()))
            .map_err(|e| format!("plugin config: {e}"))
    }

    /// Whether the table sets `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    /// The keys the table sets, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// The raw table, for plugins that want to walk it themselves.
    pub fn as_json(&self) -> &Map<String, Value> {
        &self.values
    }
}

/// A type [`Config::get_or`] can read, with the type its default is written in: the type
/// itself, except that a `String` setting takes a `&str` default. Implemented for `bool`,
/// the integer and float types, `char`, `String`, and `Vec`s and `Option`s of anything
/// deserializable; for other types use `cfg.get::<Option<T>>(key)?.unwrap_or(..)`.
pub trait ConfigValue: DeserializeOwned {
    /// How a default for this type is written at the call site.
    type Default<'a>;
    /// Turns the default into a value.
    fn from_default(default: Self::Default<'_>) -> Self;
}

macro_rules! config_value_is_itself {
    ($($t:ty),*) => {$(
        impl ConfigValue for $t {
            type Default<'a> = $t;
            fn from_default(default: $t) -> $t {
                default
            }
        }
    )*};
}

config_value_is_itself!(
    bool, char, u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64
);

impl ConfigValue for String {
    type Default<'a> = &'a str;
    fn from_default(default: &str) -> String {
        default.to_string()
    }
}

impl<T: DeserializeOwned> ConfigValue for Vec<T> {
    type Default<'a> = Vec<T>;
    fn from_default(default: Vec<T>) -> Vec<T> {
        default
    }
}

impl<T: DeserializeOwned> ConfigValue for Option<T> {
    type Default<'a> = Option<T>;
    fn from_default(default: Option<T>) -> Option<T> {
        default
    }
}

/// A word for a JSON value's type, for error messages.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_null_configs_are_empty_tables() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
        assert_eq!(Config::parse("null").unwrap(), Config::default());
        assert_eq!(Config::parse(" {} ").unwrap(), Config::default());
    }

    #[test]
    fn a_config_that_is_not_a_table_is_an_error() {
        assert!(Config::parse("[1]").unwrap_err().contains("an array"));
        assert!(Config::parse("{").unwrap_err().contains("not valid JSON"));
    }

    #[test]
    fn get_is_typed_and_names_the_key_when_wrong() {
        let cfg = Config::parse(r#"{"n": 3, "s": "x", "b": true}"#).unwrap();
        assert_eq!(cfg.get::<u32>("n"), Ok(3));
        assert_eq!(cfg.get::<String>("s"), Ok("x".to_string()));
        assert!(cfg.get::<u32>("s").unwrap_err().contains("`s`"));
        assert_eq!(
            cfg.get::<u32>("zz"),
            Err("config key `zz` is missing".to_string())
        );
        assert_eq!(cfg.get::<Option<u32>>("zz"), Ok(None));
        assert_eq!(cfg.get::<Option<bool>>("b"), Ok(Some(true)));
    }

    #[test]
    fn get_or_falls_back_when_missing() {
        let cfg = Config::parse(r#"{"channel": "ops"}"#).unwrap();
        let channel: String = cfg.get_or("channel", "general");
        let other: String = cfg.get_or("other", "general");
        assert_eq!((channel.as_str(), other.as_str()), ("ops", "general"));
        assert!(!cfg.get_or::<bool>("fail_init", false));
        let limit: u64 = cfg.get_or("limit", 10);
        assert_eq!(limit, 10);
        let names: Vec<String> = cfg.get_or("names", vec![]);
        assert!(names.is_empty());
    }

    #[test]
    fn decode_reads_the_whole_table() {
        let cfg = Config::parse(r#"{"a": 1, "b": [2, 3]}"#).unwrap();
        let all: std::collections::BTreeMap<String, Value> = cfg.decode().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(cfg.keys().collect::<Vec<_>>(), ["a", "b"]);
    }
}
