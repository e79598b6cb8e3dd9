//! The `jq:FILTER` reducer's interpreter: compiles a jq program once (jaq, with its standard
//! library) and runs it on JSON values. Knows nothing of streams or storage.

use std::sync::Arc;

use jaq_core::data::JustLut;
use jaq_core::load::{self, Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Exn, Vars, compile};
use jaq_json::{Num, Val};
use serde_json::Value;

use crate::reduce::ReduceError;

type Data = JustLut<Val>;
type Filter = jaq_core::Filter<Data>;

/// A compiled jq program; cheap to clone.
#[derive(Clone)]
pub struct Program {
    source: Arc<str>,
    /// `jq:` and the first 16 hex digits of the program's blake3: computed once, since
    /// every reconstruction compares it with its snapshots'.
    fingerprint: Arc<str>,
    filter: Arc<Filter>,
}

impl Program {
    /// Compiles a program, or explains where and why it does not compile.
    pub fn compile(source: &str) -> Result<Self, ReduceError> {
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs());
        let funs = jaq_core::funs()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs());
        let arena = Arena::default();
        let modules = Loader::new(defs)
            .load(
                &arena,
                File {
                    code: source,
                    path: (),
                },
            )
            .map_err(|errs| ReduceError::JqCompile(load_errors(&errs)))?;
        let filter = Compiler::default()
            .with_funs(funs)
            .compile(modules)
            .map_err(|errs| ReduceError::JqCompile(compile_errors(&errs)))?;
        let hash = blake3::hash(source.as_bytes()).to_hex();
        Ok(Self {
            source: source.into(),
            fingerprint: format!("jq:{}", &hash[..16]).into(),
            filter: Arc::new(filter),
        })
    }

    /// Identifies the program: a snapshot built with another one is stale.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The program text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Runs the program on one input; it must produce exactly one output.
    pub fn run(&self, input: &Value) -> Result<Value, ReduceError> {
        let ctx = Ctx::<Data>::new(&self.filter.lut, Vars::new([]));
        let mut outputs = Vec::with_capacity(1);
        for out in self.filter.id.run((ctx, to_val(input))) {
            let val = out.map_err(|e| ReduceError::Jq(exception(e)))?;
            outputs.push(val);
            if outputs.len() > 1 {
                // Do not run an unbounded generator to the end just to count it.
                return Err(ReduceError::JqOutputs(2));
            }
        }
        match outputs.pop() {
            Some(val) if outputs.is_empty() => from_val(&val).map_err(ReduceError::Jq),
            _ => Err(ReduceError::JqOutputs(0)),
        }
    }
}

/// `error(…)` values are shown as jq shows them; `halt` is reported, never obeyed.
fn exception(e: Exn<'_, Val>) -> String {
    match e.get_err() {
        Ok(err) => match err.into_val() {
            Val::TStr(b) | Val::BStr(b) => String::from_utf8_lossy(&b).into_owned(),
            v => v.to_string(),
        },
        Err(e) => match e.get_halt() {
            Ok(code) => format!("the program called halt (exit code {code})"),
            Err(e) => format!("{e:?}"),
        },
    }
}

fn line_col(code: &str, part: &str) -> String {
    let (start, end) = (code.as_ptr() as usize, part.as_ptr() as usize);
    if end < start || end > start + code.len() {
        return "?".into();
    }
    let before = &code[..load::span(code, part).start];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before, |i| &before[i + 1..])
        .chars()
        .count()
        + 1;
    format!("{line}:{col}")
}

fn found(part: &str) -> String {
    if part.is_empty() {
        "the end of the program".into()
    } else {
        format!("`{part}`")
    }
}

fn load_errors(errs: &load::Errors<&str, ()>) -> String {
    let mut msgs = Vec::new();
    for (file, err) in errs {
        match err {
            load::Error::Io(items) => msgs.extend(
                items
                    .iter()
                    .map(|(path, e)| format!("cannot load `{path}`: {e}")),
            ),
            load::Error::Lex(items) => msgs.extend(items.iter().map(|(expect, part)| {
                format!(
                    "at {}: expected {}, found {}",
                    line_col(file.code, part),
                    expect.as_str(),
                    found(part)
                )
            })),
            load::Error::Parse(items) => msgs.extend(items.iter().map(|(expect, part)| {
                format!(
                    "at {}: expected {}, found {}",
                    line_col(file.code, part),
                    expect.as_str(),
                    found(part)
                )
            })),
        }
    }
    msgs.join("; ")
}

fn compile_errors(errs: &compile::Errors<&str, ()>) -> String {
    let mut msgs = Vec::new();
    for (file, items) in errs {
        for (name, undefined) in items {
            let what = match undefined {
                compile::Undefined::Filter(arity) => format!("{name}/{arity}"),
                _ => (*name).to_string(),
            };
            msgs.push(format!(
                "at {}: undefined {} `{what}`",
                line_col(file.code, name),
                undefined.as_str()
            ));
        }
    }
    msgs.join("; ")
}

fn to_val(v: &Value) -> Val {
    match v {
        Value::Null => Val::Null,
        Value::Bool(b) => Val::Bool(*b),
        Value::Number(n) => Val::Num(if let Some(i) = n.as_i64() {
            Num::from_integral(i)
        } else if let Some(u) = n.as_u64() {
            Num::from_integral(u)
        } else {
            Num::Float(n.as_f64().unwrap_or(f64::NAN))
        }),
        Value::String(s) => Val::from(s.clone()),
        Value::Array(items) => items.iter().map(to_val).collect(),
        Value::Object(map) => Val::obj(
            map.iter()
                .map(|(k, v)| (Val::from(k.clone()), to_val(v)))
                .collect(),
        ),
    }
}

fn from_val(v: &Val) -> Result<Value, String> {
    Ok(match v {
        Val::Null => Value::Null,
        Val::Bool(b) => Value::Bool(*b),
        Val::Num(n) => number(n)?,
        Val::TStr(b) | Val::BStr(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
        Val::Arr(items) => Value::Array(items.iter().map(from_val).collect::<Result<_, _>>()?),
        Val::Obj(map) => {
            let mut out = serde_json::Map::with_capacity(map.len());
            for (k, v) in map.iter() {
                let key = match k {
                    Val::TStr(b) | Val::BStr(b) => String::from_utf8_lossy(b).into_owned(),
                    other => return Err(format!("object key {other} is not a string")),
                };
                out.insert(key, from_val(v)?);
            }
            Value::Object(out)
        }
    })
}

fn number(n: &Num) -> Result<Value, String> {
    let float = |f: f64| {
        // A whole float (e.g. `4 / 2`) is stored as an integer so that states stay stable.
        #[allow(clippy::cast_possible_truncation, clippy::float_cmp)] // checked by the round trip
        if f.fract() == 0.0 && f.abs() < 9.0e15 && (f as i64) as f64 == f {
            return Ok(Value::from(f as i64));
        }
        serde_json::Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| format!("the number {f} cannot be stored in JSON"))
    };
    match n {
        Num::Int(i) => Ok(Value::from(*i as i64)),
        Num::BigInt(b) => {
            let text = b.to_string();
            if let Ok(i) = text.parse::<i64>() {
                Ok(Value::from(i))
            } else if let Ok(u) = text.parse::<u64>() {
                Ok(Value::from(u))
            } else {
                float(text.parse::<f64>().map_err(|e| e.to_string())?)
            }
        }
        Num::Float(f) => float(*f),
        Num::Dec(text) => float(text.parse::<f64>().map_err(|e| e.to_string())?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_bank_reducer_applies_domain_events() {
        let p = Program::compile(
            r#"if .event.type == "Deposited" then .state.balance += .event.data.amount | .state
               else .state end"#,
        )
        .unwrap();
        let out = p.run(&json!({"state": {"balance": 10}, "event": {"type": "Deposited", "data": {"amount": 5}}}));
        assert_eq!(out.unwrap(), json!({"balance": 15}));
    }

    #[test]
    fn a_syntax_error_says_where() {
        let err = Program::compile(".state | {").err().unwrap().to_string();
        assert!(err.contains("1:11"), "{err}");
        let err = Program::compile(".state | nosuch(1)")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("nosuch/1"), "{err}");
    }

    #[test]
    fn runtime_errors_and_halt_are_errors_not_exits() {
        let input = json!({"state": {"x": 1}});
        for program in [r#".state.x + "a""#, r#"error("boom")"#, "halt"] {
            assert!(
                Program::compile(program).unwrap().run(&input).is_err(),
                "{program}"
            );
        }
    }

    #[test]
    fn a_reducer_must_produce_exactly_one_output() {
        let input = json!({"state": {}});
        assert_eq!(
            Program::compile("empty").unwrap().run(&input),
            Err(ReduceError::JqOutputs(0))
        );
        assert_eq!(
            Program::compile("repeat(1)").unwrap().run(&input),
            Err(ReduceError::JqOutputs(2))
        );
    }

    #[test]
    fn numbers_survive_the_round_trip() {
        let v = json!({"i": 12_345_678_901_234_567_i64, "u": u64::MAX, "f": 1.5, "half": 4});
        assert_eq!(Program::compile(".").unwrap().run(&v).unwrap(), v);
        assert_eq!(
            Program::compile(".half / 2").unwrap().run(&v).unwrap(),
            json!(2)
        );
    }
}
