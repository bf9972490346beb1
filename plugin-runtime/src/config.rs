//! The connection configuration as the host sends and stores it.
//!
//! On the wire it is a `google.protobuf.Struct`; plugin code sees a JSON object
//! ([`ConfigMap`]). The conversion follows the Go SDK: every number arrives as a double, and
//! a top-level number without a fractional part becomes an integer (nested numbers stay
//! floating point), in both directions.

use prost_types::{ListValue, Struct, Value, value::Kind};
use serde_json::{Map, Number, Value as Json};

use crate::Error;

/// The configuration map: what the operator wrote to `database/config/<name>`, minus the
/// keys the host keeps for itself.
pub type ConfigMap = Map<String, Json>;

/// `Struct` → map, with the top-level whole-number rule.
pub(crate) fn struct_to_map(s: Option<Struct>) -> ConfigMap {
    let mut out = Map::new();
    for (key, value) in s.map(|s| s.fields).unwrap_or_default() {
        let json = match value.kind {
            Some(Kind::NumberValue(n)) => whole_number(n),
            other => value_to_json(other),
        };
        out.insert(key, json);
    }
    out
}

fn whole_number(n: f64) -> Json {
    // Go: math.Floor(f) == f → int64(f). Conversion saturates like Go's on amd64 only within
    // range; outside it the value stays a float, which loses nothing.
    if n.is_finite() && n.floor() == n && n >= i64::MIN as f64 && n < i64::MAX as f64 {
        Json::Number(Number::from(n as i64))
    } else {
        float(n)
    }
}

fn float(n: f64) -> Json {
    Number::from_f64(n).map_or(Json::Null, Json::Number)
}

fn value_to_json(kind: Option<Kind>) -> Json {
    match kind {
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::NumberValue(n)) => float(n),
        Some(Kind::StringValue(s)) => Json::String(s),
        Some(Kind::BoolValue(b)) => Json::Bool(b),
        Some(Kind::StructValue(s)) => Json::Object(
            s.fields
                .into_iter()
                .map(|(k, v)| (k, value_to_json(v.kind)))
                .collect(),
        ),
        Some(Kind::ListValue(l)) => Json::Array(
            l.values
                .into_iter()
                .map(|v| value_to_json(v.kind))
                .collect(),
        ),
    }
}

/// Map → `Struct`. Fails on numbers a double cannot hold exactly? No: like Go, every number
/// becomes a double; only non-finite values are refused.
pub(crate) fn map_to_struct(map: ConfigMap) -> Result<Struct, Error> {
    map_to_struct_at(map, 0)
}

/// How deeply a config may nest (the protobuf decoder allows about 33 levels on the wire).
const MAX_DEPTH: usize = 64;

fn map_to_struct_at(map: ConfigMap, depth: usize) -> Result<Struct, Error> {
    let mut fields = std::collections::BTreeMap::new();
    for (key, value) in map {
        let v =
            json_to_value(value, depth + 1).map_err(|e| e.context(format_args!("key {key:?}")))?;
        fields.insert(key, v);
    }
    Ok(Struct { fields })
}

fn json_to_value(json: Json, depth: usize) -> Result<Value, Error> {
    if depth > MAX_DEPTH {
        return Err(Error::new(format!(
            "the config nests deeper than {MAX_DEPTH} levels"
        )));
    }
    let kind = match json {
        Json::Null => Kind::NullValue(0),
        Json::Bool(b) => Kind::BoolValue(b),
        Json::Number(n) => Kind::NumberValue(
            n.as_f64()
                .ok_or_else(|| Error::new(format!("number {n} is not representable")))?,
        ),
        Json::String(s) => Kind::StringValue(s),
        Json::Array(items) => Kind::ListValue(ListValue {
            values: items
                .into_iter()
                .map(|v| json_to_value(v, depth + 1))
                .collect::<Result<_, _>>()?,
        }),
        Json::Object(map) => Kind::StructValue(map_to_struct_at(map, depth)?),
    };
    Ok(Value { kind: Some(kind) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn num(n: f64) -> Value {
        Value {
            kind: Some(Kind::NumberValue(n)),
        }
    }

    #[test]
    fn top_level_whole_numbers_become_integers_nested_ones_do_not() {
        let mut inner = Struct::default();
        inner.fields.insert("n".into(), num(4.0));
        let mut s = Struct::default();
        s.fields.insert("max_open_connections".into(), num(4.0));
        s.fields.insert("ratio".into(), num(0.5));
        s.fields.insert(
            "nested".into(),
            Value {
                kind: Some(Kind::StructValue(inner)),
            },
        );
        let map = struct_to_map(Some(s));
        assert_eq!(map["max_open_connections"], json!(4));
        assert!(map["max_open_connections"].is_i64());
        assert_eq!(map["ratio"], json!(0.5));
        assert!(map["nested"]["n"].is_f64());
    }

    #[test]
    fn round_trip_keeps_every_json_shape() {
        let map = json!({"a": null, "b": true, "c": "s", "d": [1, "x", {"e": 2.5}], "f": 7})
            .as_object()
            .unwrap()
            .clone();
        let back = struct_to_map(Some(map_to_struct(map.clone()).unwrap()));
        assert_eq!(back["b"], json!(true));
        assert_eq!(back["c"], json!("s"));
        assert_eq!(back["d"], json!([1.0, "x", {"e": 2.5}]));
        assert_eq!(back["f"], json!(7));
        assert_eq!(back["a"], Json::Null);
    }

    #[test]
    fn missing_struct_is_an_empty_map() {
        assert!(struct_to_map(None).is_empty());
    }
}
