//! `tracing` events on stderr as hclog JSON lines, the format the host parses.
//!
//! Each event becomes one line such as
//! `{"@level":"warn","@message":"user does not exist","@module":"inmem_plugin","@timestamp":"2026-12-04T10:00:00.123456Z","username":"v-x"}`.
//! `@level`, `@message` and `@timestamp` are always JSON strings (the host panics on any
//! other type), the timestamp has exactly six fractional digits, and the level is one of
//! the five names hclog knows, so the host logs the line at the same level.
//!
//! The threshold comes from `DBPLUGIN_LOG_LEVEL` (`trace`, `debug`, `info`, `warn`, `error`,
//! `off`; default `debug`); the host applies its own level on top.

use std::fmt::Write as _;
use std::io::Write as _;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

/// The layer that writes hclog JSON lines to stderr.
#[derive(Debug)]
pub(crate) struct HclogLayer {
    max: Option<Level>,
}

impl HclogLayer {
    pub(crate) fn from_env() -> Self {
        let max = match std::env::var("DBPLUGIN_LOG_LEVEL")
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "trace" => Some(Level::TRACE),
            "info" => Some(Level::INFO),
            "warn" => Some(Level::WARN),
            "error" => Some(Level::ERROR),
            "off" => None,
            _ => Some(Level::DEBUG),
        };
        HclogLayer { max }
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    rest: Map<String, Value>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            self.rest
                .insert(field.name().to_owned(), Value::String(format!("{value:?}")));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.rest.insert(field.name().to_owned(), value.into());
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.rest.insert(field.name().to_owned(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.rest.insert(field.name().to_owned(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.rest.insert(field.name().to_owned(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.rest.insert(field.name().to_owned(), value.into());
    }
}

/// `2026-12-04T10:00:00.123456Z`: the layout the host parses (six fractional digits).
pub(crate) fn hclog_timestamp(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// One event as one hclog JSON line (with the trailing newline).
pub(crate) fn format_line(
    level: Level,
    module: &str,
    message: String,
    fields: Map<String, Value>,
    now: time::OffsetDateTime,
) -> String {
    let mut obj = Map::new();
    obj.insert("@level".into(), level_name(level).into());
    obj.insert("@message".into(), message.into());
    obj.insert("@module".into(), module.into());
    obj.insert("@timestamp".into(), hclog_timestamp(now).into());
    for (k, v) in fields {
        // A field may not replace the reserved keys: the host reads them unchecked.
        if !k.starts_with('@') {
            obj.insert(k, v);
        }
    }
    let mut line = Value::Object(obj).to_string();
    line.push('\n');
    line
}

impl HclogLayer {
    fn wants(&self, metadata: &tracing::Metadata<'_>) -> bool {
        self.max.is_some_and(|max| {
            let max = if is_transport_target(metadata.target()) {
                max.min(Level::WARN)
            } else {
                max
            };
            *metadata.level() <= max
        })
    }
}

impl<S: Subscriber> Layer<S> for HclogLayer {
    // The decision depends only on the callsite, so it is made once per callsite and
    // cached: the transport's per-frame trace events then cost nothing on the hot path.
    fn register_callsite(
        &self,
        metadata: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if self.wants(metadata) {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    fn enabled(&self, metadata: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
        self.wants(metadata)
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(self.max.map_or(
            tracing::level_filters::LevelFilter::OFF,
            tracing::level_filters::LevelFilter::from_level,
        ))
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let module = meta.target().split("::").next().unwrap_or_default();
        let line = format_line(
            *meta.level(),
            module,
            fields.message,
            fields.rest,
            time::OffsetDateTime::now_utc(),
        );
        // One write call per line keeps lines whole when several threads log.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// The transport's own crates log every frame at debug; only their warnings and errors
/// are worth the host's log.
fn is_transport_target(target: &str) -> bool {
    const NOISY: &[&str] = &[
        "h2",
        "hyper",
        "hyper_util",
        "tonic",
        "tower",
        "rustls",
        "tokio_rustls",
        "mio",
    ];
    let krate = target.split("::").next().unwrap_or_default();
    NOISY.contains(&krate)
}

/// Installs the hclog layer as the global subscriber, unless one is already set.
pub(crate) fn install() {
    use tracing_subscriber::layer::SubscriberExt;
    let subscriber = tracing_subscriber::registry().with(HclogLayer::from_env());
    let _ = tracing::subscriber::set_global_default(subscriber);
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn line_has_string_reserved_keys_and_six_digit_timestamp() {
        let mut fields = Map::new();
        fields.insert("username".into(), "v-a".into());
        fields.insert("@level".into(), 7.into());
        let line = format_line(
            Level::WARN,
            "inmem_plugin",
            "user does not exist".into(),
            fields,
            datetime!(2026-12-04 10:00:00.123456789 UTC),
        );
        assert!(line.ends_with('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["@level"], "warn");
        assert_eq!(v["@message"], "user does not exist");
        assert_eq!(v["@module"], "inmem_plugin");
        assert_eq!(v["@timestamp"], "2026-12-04T10:00:00.123456Z");
        assert_eq!(v["username"], "v-a");
    }

    #[test]
    fn every_level_is_a_name_hclog_parses() {
        for (level, name) in [
            (Level::TRACE, "trace"),
            (Level::DEBUG, "debug"),
            (Level::INFO, "info"),
            (Level::WARN, "warn"),
            (Level::ERROR, "error"),
        ] {
            assert_eq!(level_name(level), name);
        }
    }
}
