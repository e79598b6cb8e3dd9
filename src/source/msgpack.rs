//! LangGraph's value encodings, rendered as JSON: a checkpoint's blobs and its writes are
//! stored by LangGraph's serializer (`JsonPlusSerializer`) as a pair (type, bytes), and what
//! the user sees is the value as LangGraph's own JSON rendering shows it. Knows nothing of
//! tables or streams.
//!
//! The type is `msgpack` nearly always, sometimes `json`, `bytes`, `bytearray` or `null`;
//! `pickle` and anything encrypted (`…+aes`) cannot be read here, and say so. msgpack
//! extension types carry a Python object as `(module, class, argument…)`; each is rendered
//! as the argument it stores (a UUID as its dashed form, a date as `[y, m, d]`, a model or
//! dataclass as its fields), a DeltaChannel snapshot as the value it wraps, a numpy array
//! as nested lists. Bytes are rendered as base64 text, floats JSON cannot hold as the text
//! Python prints for them, and map keys that are not text as their JSON text.
//!
//! Decoding is bounded by its input: nothing is allocated for a length the bytes do not
//! hold, and nesting deeper than [`MAX_DEPTH`] is an error, not a stack overflow.

use base64::Engine as _;
use rmpv::ValueRef;
use serde_json::{Map, Number, Value};

use crate::reduce::MAX_DEPTH;

/// Why a blob could not be rendered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// An encoding rewind does not read (pickle, encrypted, unknown).
    #[error("{0}")]
    Unreadable(String),
    /// The bytes are not what their type says.
    #[error("{0}")]
    Malformed(String),
}

/// A map key that is a structure shows at most this many characters of its JSON text.
const KEY_TEXT: usize = 200;

/// LangGraph's extension codes (`langgraph.checkpoint.serde.jsonplus`).
const CONSTRUCTOR_SINGLE_ARG: i8 = 0;
const CONSTRUCTOR_POS_ARGS: i8 = 1;
const CONSTRUCTOR_KW_ARGS: i8 = 2;
const METHOD_SINGLE_ARG: i8 = 3;
const PYDANTIC_V1: i8 = 4;
const PYDANTIC_V2: i8 = 5;
const NUMPY_ARRAY: i8 = 6;
const DELTA_SNAPSHOT: i8 = 7;

/// Renders one stored value given the type LangGraph recorded beside it.
pub fn decode_typed(kind: &str, bytes: &[u8]) -> Result<Value, DecodeError> {
    match kind {
        "msgpack" => decode_msgpack(bytes),
        "null" | "empty" => Ok(Value::Null),
        "bytes" | "bytearray" => Ok(Value::String(base64_text(bytes))),
        "json" => {
            let value: Value = serde_json::from_slice(bytes)
                .map_err(|e| DecodeError::Malformed(format!("not JSON: {e}")))?;
            if crate::reduce::depth(&value) > MAX_DEPTH {
                return Err(too_deep());
            }
            Ok(value)
        }
        "pickle" => Err(DecodeError::Unreadable(
            "stored with pickle (LangGraph's fallback for objects msgpack cannot hold), which rewind does not read".into(),
        )),
        kind if kind.contains('+') => Err(DecodeError::Unreadable(format!(
            "encrypted ({kind}); rewind does not decrypt"
        ))),
        kind => Err(DecodeError::Unreadable(format!(
            "stored as {:?}, an encoding rewind does not know",
            crate::text::clean(kind, 40)
        ))),
    }
}

/// Renders one msgpack value (LangGraph's dialect) as JSON. The bytes must hold exactly one.
pub fn decode_msgpack(bytes: &[u8]) -> Result<Value, DecodeError> {
    let value = read_one(bytes, MAX_DEPTH)?;
    render(&value, MAX_DEPTH)
}

/// Renders one member of a stored map (a checkpoint's `channel_values`) without rendering
/// the rest; `None` where the value is not a map or has no such member.
pub fn decode_member(kind: &str, bytes: &[u8], member: &str) -> Result<Option<Value>, DecodeError> {
    Ok(decode_member_marking(kind, bytes, member)?.map(|(value, _)| value))
}

/// [`decode_member`], and the keys of the member (a map of channels) whose values are
/// DeltaChannel snapshots: a DeltaChannel's value is stored only at its snapshots, so where
/// such a channel is missing, its value is the last snapshot and the writes since.
pub fn decode_member_marking(
    kind: &str,
    bytes: &[u8],
    member: &str,
) -> Result<Option<(Value, Vec<String>)>, DecodeError> {
    if kind != "msgpack" {
        return decode_typed(kind, bytes)
            .map(|mut v| v.get_mut(member).map(|m| (m.take(), Vec::new())));
    }
    let value = read_one(bytes, MAX_DEPTH)?;
    let ValueRef::Map(pairs) = &value else {
        return Ok(None);
    };
    // The last pair whose key shows as the member's name, as rendering the whole map finds.
    let mut found = None;
    for (key, value) in pairs.iter().rev() {
        if key_text(key, MAX_DEPTH - 1)? == member {
            found = Some(value);
            break;
        }
    }
    let Some(found) = found else {
        return Ok(None);
    };
    let mut marked = Vec::new();
    if let ValueRef::Map(channels) = found {
        for (key, value) in channels {
            if matches!(value, ValueRef::Ext(DELTA_SNAPSHOT, _)) {
                marked.push(key_text(key, MAX_DEPTH - 2)?);
            }
        }
    }
    Ok(Some((render(found, MAX_DEPTH - 1)?, marked)))
}

/// Decodes the one value `bytes` hold (not yet rendered), within `depth` levels.
fn read_one(bytes: &[u8], depth: usize) -> Result<ValueRef<'_>, DecodeError> {
    let mut rest = bytes;
    // rmpv counts a level for each container and for each string or binary in it.
    let value = rmpv::decode::read_value_ref_with_max_depth(&mut rest, 2 * depth + 2).map_err(
        |e| match e {
            rmpv::decode::Error::DepthLimitExceeded => too_deep(),
            e => DecodeError::Malformed(format!("not msgpack: {e}")),
        },
    )?;
    if !rest.is_empty() {
        return Err(DecodeError::Malformed(format!(
            "{} bytes follow the msgpack value",
            rest.len()
        )));
    }
    Ok(value)
}

fn too_deep() -> DecodeError {
    DecodeError::Malformed(format!("the value nests deeper than {MAX_DEPTH} levels"))
}

/// Renders a decoded value; `depth` is how many more levels of containers may follow.
fn render(value: &ValueRef<'_>, depth: usize) -> Result<Value, DecodeError> {
    Ok(match value {
        ValueRef::Nil => Value::Null,
        ValueRef::Boolean(b) => Value::Bool(*b),
        ValueRef::Integer(i) => match (i.as_i64(), i.as_u64()) {
            (Some(n), _) => Value::from(n),
            (None, Some(n)) => Value::from(n),
            (None, None) => Value::Null,
        },
        ValueRef::F32(f) => float(f64::from(*f)),
        ValueRef::F64(f) => float(*f),
        ValueRef::String(s) => Value::String(text(s)),
        ValueRef::Binary(b) => Value::String(base64_text(b)),
        ValueRef::Array(items) => {
            let depth = deeper(depth)?;
            Value::Array(
                items
                    .iter()
                    .map(|item| render(item, depth))
                    .collect::<Result<_, _>>()?,
            )
        }
        ValueRef::Map(pairs) => {
            let depth = deeper(depth)?;
            // Built at once (sorted, then the tree made from the sorted run) rather than a
            // key at a time; of keys shown alike, the last pair wins, as Python's dict keeps.
            let pairs: Vec<(String, Value)> = pairs
                .iter()
                .map(|(key, value)| Ok((key_text(key, depth)?, render(value, depth)?)))
                .collect::<Result<_, DecodeError>>()?;
            Value::Object(pairs.into_iter().collect::<Map<String, Value>>())
        }
        ValueRef::Ext(code, payload) => extension(*code, payload, depth)?,
    })
}

fn deeper(depth: usize) -> Result<usize, DecodeError> {
    depth.checked_sub(1).ok_or_else(too_deep)
}

/// A float as JSON, or the text Python prints for one JSON has no number for.
fn float(f: f64) -> Value {
    match Number::from_f64(f) {
        Some(n) => Value::Number(n),
        None if f.is_nan() => Value::String("NaN".into()),
        None if f > 0.0 => Value::String("Infinity".into()),
        None => Value::String("-Infinity".into()),
    }
}

fn text(s: &rmpv::Utf8StringRef<'_>) -> String {
    match s.as_str() {
        Some(s) => s.to_owned(),
        // ormsgpack writes lone surrogates as U+FFFD; other invalid text is damage, shown so.
        None => String::from_utf8_lossy(&s.into_bytes()).into_owned(),
    }
}

fn base64_text(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A map key as an object key: text as it is, a number as its JSON text (the way
/// `json.dumps` turns an integer key into text), and a structure (a tuple: Python allows
/// any hashable key) as Python prints it, `('a', 1)`, cut short. Python's form needs no
/// escaping, so a key of a key of a key … grows by a few characters a level, never doubles.
fn key_text(key: &ValueRef<'_>, depth: usize) -> Result<String, DecodeError> {
    Ok(match key {
        ValueRef::String(s) => text(s),
        key => match render(key, depth)? {
            Value::String(s) => s,
            number @ Value::Number(_) => number.to_string(),
            other => {
                let mut out = String::new();
                python_text(&other, &mut out);
                match out.char_indices().nth(KEY_TEXT) {
                    Some((cut, _)) => format!("{}…", &out[..cut]),
                    None => out,
                }
            }
        },
    })
}

/// A rendered value as Python's `repr` prints it (a list as the tuple it was), stopping once
/// past [`KEY_TEXT`] characters.
fn python_text(value: &Value, out: &mut String) {
    if out.len() > 4 * KEY_TEXT {
        return;
    }
    match value {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => {
            out.push('\'');
            out.push_str(s);
            out.push('\'');
        }
        Value::Array(items) => {
            out.push('(');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                python_text(item, out);
            }
            if items.len() == 1 {
                out.push(',');
            }
            out.push(')');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                python_text(&Value::String(key.clone()), out);
                out.push_str(": ");
                python_text(item, out);
            }
            out.push('}');
        }
    }
}

/// Renders a LangGraph extension: the argument it stores for the Python object.
fn extension(code: i8, payload: &[u8], depth: usize) -> Result<Value, DecodeError> {
    let depth = deeper(depth)?;
    let inner = read_one(payload, depth).map_err(|e| match e {
        DecodeError::Malformed(what) if !what.contains("nests deeper") => {
            DecodeError::Malformed(format!("extension type {code}: {what}"))
        }
        e => e,
    })?;
    let malformed = |what: &str| DecodeError::Malformed(format!("extension type {code}: {what}"));
    match code {
        DELTA_SNAPSHOT => render(&inner, depth),
        CONSTRUCTOR_SINGLE_ARG
        | CONSTRUCTOR_POS_ARGS
        | CONSTRUCTOR_KW_ARGS
        | METHOD_SINGLE_ARG
        | PYDANTIC_V1
        | PYDANTIC_V2 => {
            let ValueRef::Array(parts) = &inner else {
                return Err(malformed("not a (module, class, argument) tuple"));
            };
            let [module, class, argument, ..] = parts.as_slice() else {
                return Err(malformed("not a (module, class, argument) tuple"));
            };
            let name = |v: &ValueRef<'_>| match v {
                ValueRef::String(s) => s.as_str().map(str::to_owned),
                _ => None,
            };
            if let (Some(module), Some(class), ValueRef::String(hex)) =
                (name(module), name(class), argument)
                && code == CONSTRUCTOR_SINGLE_ARG
                && module == "uuid"
                && class == "UUID"
                && let Some(dashed) = hex.as_str().and_then(super::dashed_uuid)
            {
                return Ok(Value::String(dashed));
            }
            render(argument, depth)
        }
        NUMPY_ARRAY => numpy(&inner, depth).ok_or_else(|| {
            malformed("not a numpy array (dtype, shape, order, buffer) rewind can read")
        }),
        _ => Ok(Value::String(format!(
            "<msgpack extension type {code}, {} bytes>",
            payload.len()
        ))),
    }
}

/// A numpy array (`dtype.str`, shape, order `C` or `F`, raw buffer) as nested lists, the way
/// `tolist()` gives it, for booleans, integers and floats of 1, 2, 4 or 8 bytes.
/// The nested lists a numpy array renders as, beyond two a byte of its items, before it shows
/// as its shape instead.
const FEW_LISTS: usize = 16;

fn numpy(inner: &ValueRef<'_>, depth: usize) -> Option<Value> {
    let ValueRef::Array(parts) = inner else {
        return None;
    };
    let [
        ValueRef::String(dtype),
        ValueRef::Array(shape),
        ValueRef::String(order),
        buffer,
    ] = parts.as_slice()
    else {
        return None;
    };
    let buffer: &[u8] = match buffer {
        ValueRef::Binary(b) => b,
        _ => return None,
    };
    let dtype = dtype.as_str()?;
    let (endian, kind, size) = {
        let b = dtype.as_bytes();
        if b.len() < 3 {
            return None;
        }
        (b[0], b[1], dtype[2..].parse::<usize>().ok()?)
    };
    if !matches!(size, 1 | 2 | 4 | 8) || !matches!(kind, b'b' | b'i' | b'u' | b'f') {
        return None;
    }
    let shape: Vec<usize> = shape
        .iter()
        .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
        .collect::<Option<_>>()?;
    if shape.len() > depth {
        return None;
    }
    let count = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))?;
    if count.checked_mul(size)? != buffer.len() {
        return None;
    }
    // The nested lists `tolist()` gives cost a few bytes each in JSON, and the shape alone says
    // how many: an empty array of a long outer shape (`(10**9, 0)`), or one with many axes of
    // length 1, is a few bytes that would render huge. Past two lists a byte of items, the array
    // shows as its shape.
    let lists = shape
        .iter()
        .scan(1usize, |outer, &d| {
            let here = *outer;
            *outer = outer.saturating_mul(d);
            Some(here)
        })
        .fold(0usize, usize::saturating_add);
    if lists > 2 * buffer.len() + FEW_LISTS {
        let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
        return Some(Value::String(format!(
            "<numpy array {dtype} of shape ({}), {count} items>",
            dims.join(", ")
        )));
    }
    let big = endian == b'>';
    let item = |i: usize| -> Value {
        let raw = &buffer[i * size..(i + 1) * size];
        let mut word = [0u8; 8];
        if big {
            word[8 - size..].copy_from_slice(raw);
            word.reverse();
        } else {
            word[..size].copy_from_slice(raw);
        }
        let bits = u64::from_le_bytes(word);
        match (kind, size) {
            (b'b', _) => Value::Bool(bits != 0),
            (b'u', _) => Value::from(bits),
            (b'i', _) => {
                let shift = 64 - 8 * size as u32;
                Value::from(((bits << shift) as i64) >> shift)
            }
            (_, 2) => Value::String(format!("<float16 {bits:#06x}>")),
            (_, 4) => float(f64::from(f32::from_bits(bits as u32))),
            _ => float(f64::from_bits(bits)),
        }
    };
    // Index i of the flat buffer for a position: C order is row-major, F column-major.
    let fortran = order.as_str() == Some("F");
    Some(nest(&shape, &mut Vec::new(), &|position: &[usize]| {
        let mut index = 0;
        if fortran {
            for (p, d) in position.iter().zip(&shape).rev() {
                index = index * d + p;
            }
        } else {
            for (p, d) in position.iter().zip(&shape) {
                index = index * d + p;
            }
        }
        item(index)
    }))
}

fn nest(shape: &[usize], position: &mut Vec<usize>, at: &dyn Fn(&[usize]) -> Value) -> Value {
    let level = position.len();
    if level == shape.len() {
        return at(position);
    }
    let mut items = Vec::with_capacity(shape[level]);
    for i in 0..shape[level] {
        position.push(i);
        items.push(nest(shape, position, at));
        position.pop();
    }
    Value::Array(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// msgpack of a LangGraph extension: `(module, class, argument)` under `code`.
    fn ext(code: i8, parts: &[rmpv::Value]) -> rmpv::Value {
        let mut payload = Vec::new();
        rmpv::encode::write_value(&mut payload, &rmpv::Value::Array(parts.to_vec())).unwrap();
        rmpv::Value::Ext(code, payload)
    }

    fn bytes(value: &rmpv::Value) -> Vec<u8> {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, value).unwrap();
        out
    }

    fn s(text: &str) -> rmpv::Value {
        rmpv::Value::from(text)
    }

    #[test]
    fn extensions_render_as_the_argument_they_store() {
        let value = rmpv::Value::Map(vec![
            (
                s("id"),
                ext(
                    0,
                    &[s("uuid"), s("UUID"), s("0123456789abcdef0123456789abcdef")],
                ),
            ),
            (
                s("when"),
                ext(
                    3,
                    &[
                        s("datetime"),
                        s("datetime"),
                        s("2025-01-02T03:04:05+00:00"),
                        s("fromisoformat"),
                    ],
                ),
            ),
            (
                s("day"),
                ext(
                    1,
                    &[
                        s("datetime"),
                        s("date"),
                        rmpv::Value::Array(vec![2025.into(), 1.into(), 2.into()]),
                    ],
                ),
            ),
            (
                s("amount"),
                ext(0, &[s("decimal"), s("Decimal"), s("12.50")]),
            ),
            (
                s("message"),
                ext(
                    5,
                    &[
                        s("langchain_core.messages.human"),
                        s("HumanMessage"),
                        rmpv::Value::Map(vec![(s("content"), s("hi")), (s("type"), s("human"))]),
                        s("model_validate_json"),
                    ],
                ),
            ),
            (
                s("delta"),
                rmpv::Value::Ext(7, bytes(&rmpv::Value::Array(vec![1.into(), 2.into()]))),
            ),
            (rmpv::Value::from(7), rmpv::Value::from(u64::MAX)),
        ]);
        assert_eq!(
            decode_msgpack(&bytes(&value)).unwrap(),
            json!({
                "id": "01234567-89ab-cdef-0123-456789abcdef",
                "when": "2025-01-02T03:04:05+00:00",
                "day": [2025, 1, 2],
                "amount": "12.50",
                "message": {"content": "hi", "type": "human"},
                "delta": [1, 2],
                "7": u64::MAX,
            })
        );
    }

    #[test]
    fn a_numpy_array_renders_as_nested_lists_in_its_order() {
        let buffer: Vec<u8> = [1.5f64, 2.0, 3.0, 4.0, 5.0, 6.0]
            .iter()
            .flat_map(|f| f.to_le_bytes())
            .collect();
        let array = |order: &str| {
            ext(
                6,
                &[
                    s("<f8"),
                    rmpv::Value::Array(vec![2.into(), 3.into()]),
                    s(order),
                    rmpv::Value::Binary(buffer.clone()),
                ],
            )
        };
        assert_eq!(
            decode_msgpack(&bytes(&array("C"))).unwrap(),
            json!([[1.5, 2.0, 3.0], [4.0, 5.0, 6.0]])
        );
        assert_eq!(
            decode_msgpack(&bytes(&array("F"))).unwrap(),
            json!([[1.5, 3.0, 5.0], [2.0, 4.0, 6.0]])
        );
    }

    #[test]
    fn a_numpy_array_whose_shape_alone_would_render_huge_shows_as_its_shape() {
        let array = |dtype: &str, shape: Vec<rmpv::Value>, buffer: Vec<u8>| {
            let value = ext(
                6,
                &[
                    s(dtype),
                    rmpv::Value::Array(shape),
                    s("C"),
                    rmpv::Value::Binary(buffer),
                ],
            );
            decode_msgpack(&bytes(&value)).unwrap()
        };
        let empty = |shape: Vec<rmpv::Value>| array("<i8", shape, Vec::new());
        assert_eq!(empty(vec![3.into(), 0.into()]), json!([[], [], []]));
        // A few bytes that would otherwise be four billion empty lists.
        assert_eq!(
            empty(vec![u32::MAX.into(), 0.into()]),
            json!("<numpy array <i8 of shape (4294967295, 0), 0 items>")
        );
        // Axes of length 1 cost a list per item each.
        assert_eq!(
            array("|b1", vec![2.into(), 1.into()], vec![1, 0]),
            json!([[true], [false]])
        );
        let mut deep = vec![rmpv::Value::from(4)];
        deep.extend(std::iter::repeat_n(rmpv::Value::from(1), 9));
        assert_eq!(
            array("|i1", deep, vec![1, 2, 3, 4]),
            json!("<numpy array |i1 of shape (4, 1, 1, 1, 1, 1, 1, 1, 1, 1), 4 items>")
        );
    }

    #[test]
    fn unreadable_encodings_say_what_they_are() {
        let pickle = decode_typed("pickle", b"\x80\x04").unwrap_err();
        assert!(pickle.to_string().contains("pickle"), "{pickle}");
        let aes = decode_typed("msgpack+aes", b"xx").unwrap_err();
        assert!(aes.to_string().contains("encrypted (msgpack+aes)"), "{aes}");
        assert_eq!(decode_typed("null", b"").unwrap(), Value::Null);
        assert_eq!(decode_typed("bytes", b"hi").unwrap(), json!("aGk="));
        assert_eq!(
            decode_typed("json", br#"{"a":1}"#).unwrap(),
            json!({"a": 1})
        );
    }

    #[test]
    fn damaged_bytes_are_errors_never_a_value() {
        // A map that says it holds 2^32-1 pairs and holds none: no allocation, an error.
        assert!(decode_msgpack(&[0xdf, 0xff, 0xff, 0xff, 0xff]).is_err());
        // Trailing bytes after the value.
        assert!(decode_msgpack(&[0xc0, 0xc0]).is_err());
        // An extension that is not a (module, class, argument) tuple.
        assert!(decode_msgpack(&bytes(&rmpv::Value::Ext(0, bytes(&1.into())))).is_err());
        // Nesting past the bound, in arrays and inside extensions.
        let mut deep = rmpv::Value::Nil;
        for _ in 0..=MAX_DEPTH {
            deep = rmpv::Value::Array(vec![deep]);
        }
        let err = decode_msgpack(&bytes(&deep)).unwrap_err();
        assert!(err.to_string().contains("nests deeper"), "{err}");
        let mut deep = rmpv::Value::Nil;
        for _ in 0..=MAX_DEPTH {
            deep = rmpv::Value::Ext(7, bytes(&deep));
        }
        assert!(decode_msgpack(&bytes(&deep)).is_err());
    }

    #[test]
    fn floats_json_cannot_hold_are_shown_as_python_prints_them() {
        assert_eq!(
            decode_msgpack(&bytes(&rmpv::Value::F64(f64::NAN))).unwrap(),
            json!("NaN")
        );
        assert_eq!(
            decode_msgpack(&bytes(&rmpv::Value::F64(f64::NEG_INFINITY))).unwrap(),
            json!("-Infinity")
        );
    }

    /// Found by the langgraph_msgpack fuzz target: maps used as keys of maps, 60 deep, took
    /// longer than any timeout (each level escaped the one below again).
    #[test]
    fn keys_nested_in_keys_render_in_bounded_time_and_size() {
        let mut bytes = vec![0x81u8; 60];
        bytes.extend([0xc0; 61]);
        let value = decode_msgpack(&bytes).unwrap();
        assert!(value.to_string().len() < 16 * bytes.len() + 64, "{value}");
        // What the fuzzer found: eleven maps as keys of maps, 21 bytes that rendered as 402.
        let found = [
            0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x78, 0x01, 0x19,
            0x68, 0xff, 0xff, 0x18, 0xff, 0xff, 0xff, 0xff,
        ];
        let value = decode_msgpack(&found[1..]).unwrap();
        assert!(value.to_string().len() <= 16 * 21 + 64, "{value}");
        // A tuple key shows as Python prints the tuple.
        let tuple = [0x81, 0x92, 0xa1, b'a', 0x01, 0xc3];
        assert_eq!(decode_msgpack(&tuple).unwrap(), json!({"('a', 1)": true}));
    }
}
