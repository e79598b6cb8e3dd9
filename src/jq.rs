//! The `jq:FILTER` reducer's interpreter: compiles a jq program once (jaq, with its standard
//! library) and runs it on JSON values within the budget of [`crate::budget`]. Knows nothing
//! of streams or storage.
//!
//! jaq has no fuel: its interpreter is lazy iterators that can loop forever or recurse until
//! the stack is gone. But it asks its data for the program's lookup table every time it
//! evaluates a term, so the data it runs with here (`Run`) counts those calls: that is the
//! step count, checked there together with the stack the recursion has taken and the
//! watchdog's request to stop. Going over throws a payload that unwinds the interpreter
//! ([`std::panic::resume_unwind`]: no panic hook, no message), caught in [`Program::run`];
//! the program's values are its own and are dropped on the way, so nothing is left half
//! done (this needs `panic = "unwind"`, the default). `range`, whose numbers are made
//! natively without evaluating a term, counts a step for each.
//!
//! Two operations can cost more in one step than any count shows, and are rewritten in the
//! parsed program before it is compiled (see `rewrite`): `*`, which repeats a string any
//! number of times, measures it first; and turning a value into text (`"\(f)"`, hence
//! `tostring`; `tojson` is wrapped too) refuses one nested deeper than 512 levels, since it
//! recurses once per level. `fromjson` refuses such text for the same reason.

use std::cell::Cell;
use std::sync::{Arc, OnceLock};

use jaq_core::box_iter::box_once;
use jaq_core::data::{DataT, HasLut};
use jaq_core::load::{self, Arena, File, Loader, parse::Term};
use jaq_core::native::{Fun, v};
use jaq_core::{Compiler, Ctx, Cv, Exn, Lut, ValXs, Vars};
use jaq_json::{Num, Val};
use serde_json::Value;

use crate::budget::{self, Limit};
use crate::reduce::{MAX_DEPTH, ReduceError};

type Filter = jaq_core::Filter<Metered>;

/// A program may be this long: a reducer longer than this is a mistake, and one of any
/// length can nest deep enough to exhaust the compiler's stack.
const SOURCE: usize = 64 << 10;

/// `fromjson` refuses text, and `tojson`, `tostring` and string interpolation refuse
/// values, nested deeper than this: each recurses once per level, a kilobyte of stack each.
const NESTING: usize = 512;

/// An error value is shown up to this many characters.
const SHOWN: usize = 1000;

/// The data jaq runs a program with: its lookup table, and the meter that counts.
struct Metered;

impl DataT for Metered {
    type V<'a> = Val;
    type Data<'a> = Run<'a>;
}

/// What one run of a program carries: the lookup table and its meter.
#[derive(Clone, Copy)]
struct Run<'a> {
    lut: &'a Lut<Metered>,
    meter: &'a Meter<'a>,
}

impl<'a> HasLut<'a, Metered> for Run<'a> {
    #[inline]
    fn lut(&self) -> &'a Lut<Metered> {
        self.meter.step();
        self.lut
    }
}

/// One run's budget as it is spent.
struct Meter<'a> {
    steps: Cell<u64>,
    /// The most steps the run may take.
    limit: u64,
    /// Where the stack was when the run began.
    base: usize,
    /// Where the watchdog asks this run to stop.
    slot: &'a budget::Slot,
    generation: u64,
}

/// Thrown to stop a run that went over a limit.
struct Over(Limit);

impl Meter<'_> {
    /// One more step: a term evaluated, or a number `range` made.
    #[inline]
    fn step(&self) {
        let steps = self.steps.get() + 1;
        self.steps.set(steps);
        if steps > self.limit {
            over(Limit::Steps(self.limit));
        }
        if stack_position().abs_diff(self.base) as u64 > budget::STACK {
            over(Limit::Stack(budget::STACK));
        }
        // Every step: a step may follow one that took seconds (a string doubled).
        if let Some(limit) = self.slot.stop(self.generation) {
            over(limit);
        }
    }
}

#[cold]
fn over(limit: Limit) -> ! {
    std::panic::resume_unwind(Box::new(Over(limit)))
}

/// Roughly where the stack is now: the address of a local.
#[inline(never)]
fn stack_position() -> usize {
    let marker = 0u8;
    std::ptr::from_ref(std::hint::black_box(&marker)) as usize
}

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
        if source.len() > SOURCE {
            return Err(ReduceError::JqCompile(format!(
                "the program is {} bytes long; at most {} are allowed",
                crate::model::group(source.len() as u64),
                crate::model::group(SOURCE as u64)
            )));
        }
        // jaq's parser recurses once per level of nesting (`((((…`, `- - - …`, `if if …`):
        // a thread with a large stack parses anything of the length allowed. The binary's
        // threads have one; elsewhere the program is compiled on a thread of its own.
        let filter = if budget::has_large_stack() {
            build(source)
        } else {
            compile_on_large_stack(source)
        }?;
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

    /// Runs the program on one input; it must produce exactly one output, within the
    /// budget. `stream` and `version` name what is being applied if the watchdog has to
    /// end the process.
    pub fn run(&self, input: &Value, stream: &str, version: u64) -> Result<Value, ReduceError> {
        self.run_within(input, stream, version, budget::STEPS)
    }

    /// [`Self::run`] within at most `steps` evaluation steps (fewer than a reducer's: what
    /// only labels an event must not hold up the screen).
    pub fn run_within(
        &self,
        input: &Value,
        stream: &str,
        version: u64,
        steps: u64,
    ) -> Result<Value, ReduceError> {
        budget::watched(stream, version, |slot, generation| {
            let meter = Meter {
                steps: Cell::new(0),
                limit: steps.min(budget::STEPS),
                base: stack_position(),
                slot,
                generation,
            };
            // Nothing shared is changed by a run (the filter is only read), and every value
            // it made is dropped by the unwinding: nothing is left broken to observe.
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.evaluate(input, &meter)
            }));
            match ran {
                Ok(outcome) => outcome,
                Err(payload) => match payload.downcast::<Over>() {
                    Ok(over) => Err(ReduceError::OverBudget(over.0)),
                    Err(other) => std::panic::resume_unwind(other),
                },
            }
        })
    }

    fn evaluate(&self, input: &Value, meter: &Meter<'_>) -> Result<Value, ReduceError> {
        let run = Run {
            lut: &self.filter.lut,
            meter,
        };
        let ctx = Ctx::<Metered>::new(run, Vars::new([]));
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
            Some(val) if outputs.is_empty() => {
                let mut left = budget::OUTPUT;
                from_val(&val, 0, &mut left)
            }
            _ => Err(ReduceError::JqOutputs(0)),
        }
    }
}

/// [`build`] on a thread with [`budget::THREAD_STACK`] (or here, if none can be had).
fn compile_on_large_stack(source: &str) -> Result<Filter, ReduceError> {
    std::thread::scope(|scope| {
        let compiling = std::thread::Builder::new()
            .name(format!("{}jq-compile", crate::step::THREAD_PREFIX))
            .stack_size(budget::THREAD_STACK)
            .spawn_scoped(scope, || build(source));
        match compiling {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|_| Err(ReduceError::JqCompile("the compiler failed".into()))),
            Err(_) => build(source),
        }
    })
}

/// Compiles a program with every `*` made [`mul`], whose size is checked before the string
/// is built. A program that does not compile so is compiled as written, for its errors
/// (which then point into its text), and so is one with module directives (which could
/// not load anyway).
fn build(source: &str) -> Result<Filter, ReduceError> {
    if let Some(mut term) = load::parse(source, |p| p.term()) {
        rewrite(&mut term);
        let main = load::parse::Def {
            name: "_rewind_main",
            args: Vec::new(),
            body: term,
        };
        // jaq's definitions stringify too (`tostring` is `"\(.)"`): rewritten as well.
        let prelude = defs(true).iter().cloned();
        if let Ok(filter) = compile(prelude.chain([main]), "_rewind_main") {
            return Ok(filter);
        }
    }
    compile(defs(false).iter().cloned(), source)
}

fn compile<'s>(
    prelude: impl IntoIterator<Item = load::parse::Def<&'s str>>,
    code: &'s str,
) -> Result<Filter, ReduceError> {
    let arena = Arena::default();
    let modules = Loader::new(prelude)
        .load(&arena, File { code, path: () })
        .map_err(|errs| ReduceError::JqCompile(load_errors(&errs)))?;
    Compiler::default()
        .with_funs(funs())
        .compile(modules)
        .map_err(|errs| ReduceError::JqCompile(compile_errors(&errs)))
}

/// jaq's definitions, after ours (which come first: jaq's call `fromjson` too), as written
/// or `rewritten`. Parsed once per process: parsing them took most of compiling a short
/// program.
fn defs(rewritten: bool) -> &'static [load::parse::Def<&'static str>] {
    static AS_WRITTEN: OnceLock<Vec<load::parse::Def<&'static str>>> = OnceLock::new();
    static REWRITTEN: OnceLock<Vec<load::parse::Def<&'static str>>> = OnceLock::new();
    let parse = || {
        own_defs()
            .chain(jaq_core::defs())
            .chain(jaq_std::defs())
            .chain(jaq_json::defs())
            .chain(unrepeatable_defs())
    };
    if rewritten {
        REWRITTEN.get_or_init(|| {
            parse()
                .map(|mut def| {
                    rewrite(&mut def.body);
                    def
                })
                .collect()
        })
    } else {
        AS_WRITTEN.get_or_init(|| parse().collect())
    }
}

/// jaq's natives whose answers depend on when or where they run: a reducer must give the
/// same state on every replay (a snapshot is checked against one), so these are errors
/// that say why (`own_defs`).
const UNREPEATABLE: [&str; 4] = ["now", "env", "localtime", "strflocaltime"];

/// jaq's natives, with `range` counting its numbers and `fromjson` checking the nesting of
/// its text first (the parser behind it recurses once per level).
fn funs() -> impl Iterator<Item = Fun<Metered>> {
    let own: [Fun<Metered>; 4] = [
        jaq_core::native::run(("range", v(3), |cv| range(cv))),
        jaq_core::native::run(("_rewind_nesting", v(0), |cv| nesting(cv))),
        jaq_core::native::run(("_rewind_shallow", v(0), |cv| shallow(cv))),
        jaq_core::native::run(("_rewind_mul", v(2), |cv| mul(cv))),
    ];
    // Ours wrap these two (see `own_defs`).
    let fromjson = |(name, args, f): Fun<Metered>| {
        let name = match name {
            "fromjson" => "_rewind_fromjson",
            "tojson" => "_rewind_tojson",
            name => name,
        };
        (name, args, f)
    };
    own.into_iter()
        .chain(jaq_core::funs())
        .chain(jaq_std::funs().filter(|(name, _, _)| !UNREPEATABLE.contains(name)))
        .chain(jaq_json::funs().map(fromjson))
}

/// Definitions that replace jaq's natives in [`UNREPEATABLE`] with errors that say why; they
/// come after jaq's own, whose `error` they use.
fn unrepeatable_defs() -> impl Iterator<Item = load::parse::Def<&'static str>> {
    load::parse(
        "def now: error(\"now reads the clock, so every replay would give another state; use .event.ts (the event's time, µs since the epoch)\");
         def env: error(\"env reads the environment, so replays elsewhere would give another state\");
         def localtime: error(\"localtime depends on the machine's time zone, so replays elsewhere would give another state; use gmtime\");
         def strflocaltime($f): error(\"strflocaltime depends on the machine's time zone, so replays elsewhere would give another state; use strftime\");",
        |p| p.defs(),
    )
    .unwrap_or_default()
    .into_iter()
}

fn own_defs() -> impl Iterator<Item = load::parse::Def<&'static str>> {
    load::parse(
        "def fromjson: _rewind_nesting | _rewind_fromjson;
         def tojson: _rewind_shallow | _rewind_tojson;",
        |p| p.defs(),
    )
    .unwrap_or_default()
    .into_iter()
}

/// Makes every `l * r` in a program `_rewind_mul(l; r)`, and every `p *= f`
/// `f as $y | p |= _rewind_mul(.; $y)` (which is what jaq does with it): repeating a string
/// is the one operation that can build a value of any size from a small one in one step.
/// And every interpolation `"\(f)"` becomes `"\(f | _rewind_shallow)"`: turning a value
/// into text recurses once per level of it.
fn rewrite(term: &mut Term<&str>) {
    use jaq_core::ops::Math::Mul;
    use load::parse::{BinaryOp, Pattern};
    const Y: &str = "$__rewind_y";
    let mul = |l, r| Term::Call("_rewind_mul", vec![l, r]);
    match term {
        Term::Id | Term::Recurse | Term::Num(_) | Term::Var(_) | Term::Break(_) => {}
        Term::Arr(inner) => inner.iter_mut().for_each(|t| rewrite(t)),
        Term::Neg(t) | Term::Label(_, t) => rewrite(t),
        Term::Str(_, parts) => {
            for part in parts {
                if let load::lex::StrPart::Term(t) = part {
                    rewrite(t);
                    let shallow = Term::Call("_rewind_shallow", Vec::new());
                    *t = Term::BinOp(
                        Box::new(std::mem::take(t)),
                        BinaryOp::Pipe(None),
                        Box::new(shallow),
                    );
                }
            }
        }
        Term::Obj(members) => {
            for (k, v) in members {
                rewrite(k);
                v.iter_mut().for_each(rewrite);
            }
        }
        Term::Fold(_, xs, pattern, args) => {
            rewrite(xs);
            rewrite_pattern(pattern);
            args.iter_mut().for_each(rewrite);
        }
        Term::TryCatch(t, catch) => {
            rewrite(t);
            catch.iter_mut().for_each(|t| rewrite(t));
        }
        Term::IfThenElse(branches, otherwise) => {
            for (cond, then) in branches {
                rewrite(cond);
                rewrite(then);
            }
            otherwise.iter_mut().for_each(|t| rewrite(t));
        }
        Term::Def(defs, body) => {
            defs.iter_mut().for_each(|d| rewrite(&mut d.body));
            rewrite(body);
        }
        Term::Call(_, args) => args.iter_mut().for_each(rewrite),
        Term::Path(t, path) => {
            rewrite(t);
            for (part, _) in &mut path.0 {
                match part {
                    jaq_core::path::Part::Index(i) => rewrite(i),
                    jaq_core::path::Part::Range(from, upto) => {
                        from.iter_mut().chain(upto.iter_mut()).for_each(rewrite);
                    }
                }
            }
        }
        Term::BinOp(l, op, r) => {
            rewrite(l);
            rewrite(r);
            match op {
                BinaryOp::Math(Mul) => {
                    *term = mul(std::mem::take(&mut **l), std::mem::take(&mut **r));
                }
                BinaryOp::UpdateMath(Mul) => {
                    let (path, f) = (std::mem::take(&mut **l), std::mem::take(&mut **r));
                    let update = Term::BinOp(
                        Box::new(path),
                        BinaryOp::Update,
                        Box::new(mul(Term::Id, Term::Var(Y))),
                    );
                    *term = Term::BinOp(
                        Box::new(f),
                        BinaryOp::Pipe(Some(Pattern::Var(Y))),
                        Box::new(update),
                    );
                }
                BinaryOp::Pipe(Some(pattern)) => rewrite_pattern(pattern),
                _ => {}
            }
        }
    }
}

fn rewrite_pattern(pattern: &mut load::parse::Pattern<&str>) {
    use load::parse::Pattern;
    match pattern {
        Pattern::Var(_) => {}
        Pattern::Arr(items) => items.iter_mut().for_each(rewrite_pattern),
        Pattern::Obj(members) => {
            for (key, value) in members {
                rewrite(key);
                rewrite_pattern(value);
            }
        }
    }
}

/// `l * r`, refused before a repeated string would hold more than [`budget::OUTPUT`] bytes.
fn mul<'a>(mut cv: Cv<'a, Metered>) -> ValXs<'a, Val> {
    let r = cv.0.pop_var();
    let l = cv.0.pop_var();
    let bytes = match (&l, &r) {
        (Val::TStr(s) | Val::BStr(s), Val::Num(n)) | (Val::Num(n), Val::TStr(s) | Val::BStr(s)) => {
            let times = match n {
                Num::Int(i) => u64::try_from(*i).unwrap_or(0),
                Num::BigInt(b) if !b.to_string().starts_with('-') => u64::MAX,
                _ => 0,
            };
            times.saturating_mul(s.len() as u64)
        }
        _ => 0,
    };
    if bytes > budget::OUTPUT {
        over(Limit::String(budget::OUTPUT));
    }
    box_once((l * r).map_err(Exn::from))
}

/// `range($from; $to; $by)` as jaq makes it, one step a number.
fn range<'a>(mut cv: Cv<'a, Metered>) -> ValXs<'a, Val> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let meter = cv.0.data().meter;
    let by = cv.0.pop_var();
    let to = cv.0.pop_var();
    let mut from: Result<Val, Exn<'a, Val>> = Ok(cv.0.pop_var());
    let direction = by.partial_cmp(&Val::from(0isize)).unwrap_or(Equal);
    Box::new(std::iter::from_fn(move || match from.clone() {
        Ok(x) => {
            let more = match direction {
                Greater => x < to,
                Less => x > to,
                Equal => x != to,
            };
            more.then(|| {
                meter.step();
                std::mem::replace(&mut from, (x + by.clone()).map_err(Exn::from))
            })
        }
        Err(e) => {
            from = Ok(to.clone());
            Some(Err(e))
        }
    }))
}

/// Passes text on to `fromjson` unless it nests deeper than [`NESTING`].
fn nesting<'a>(cv: Cv<'a, Metered>) -> ValXs<'a, Val> {
    if let Val::TStr(text) | Val::BStr(text) = &cv.1
        && nests_deeper(text, NESTING)
    {
        let msg = format!("fromjson: the text nests deeper than {NESTING} levels");
        return box_once(Err(Exn::from(jaq_core::Error::str(msg))));
    }
    box_once(Ok(cv.1))
}

/// Passes a value on to be turned into text unless it nests deeper than [`NESTING`].
fn shallow<'a>(cv: Cv<'a, Metered>) -> ValXs<'a, Val> {
    if deeper_than(&cv.1, NESTING) {
        let msg = format!("cannot turn a value nested deeper than {NESTING} levels into text");
        return box_once(Err(Exn::from(jaq_core::Error::str(msg))));
    }
    box_once(Ok(cv.1))
}

/// Whether a value nests more than `limit` arrays and objects, found without recursion.
fn deeper_than(value: &Val, limit: usize) -> bool {
    let mut todo = vec![(value, 0)];
    while let Some((value, depth)) = todo.pop() {
        match value {
            Val::Arr(_) | Val::Obj(_) if depth >= limit => return true,
            Val::Arr(items) => todo.extend(items.iter().map(|item| (item, depth + 1))),
            Val::Obj(map) => {
                todo.extend(
                    map.iter()
                        .flat_map(|(k, v)| [(k, depth + 1), (v, depth + 1)]),
                );
            }
            _ => {}
        }
    }
    false
}

/// Whether JSON text opens more than `limit` arrays and objects at once.
fn nests_deeper(text: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in text {
        match (in_string, escaped, b) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') | (false, _, b'"') => in_string = !in_string,
            (false, _, b'[' | b'{') => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            (false, _, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// `error(…)` values are shown as jq shows them, cut at [`SHOWN`] characters (an error can
/// hold a value of any size); `halt` is reported, never obeyed.
fn exception(e: Exn<'_, Val>) -> String {
    match e.get_err() {
        Ok(err) => {
            let shown = bounded(&err, SHOWN);
            // A string thrown by `error("…")` is shown without its quotes.
            if shown.starts_with('"')
                && let Val::TStr(b) | Val::BStr(b) = err.into_val()
            {
                return crate::text::clean(&String::from_utf8_lossy(&b), SHOWN);
            }
            shown
        }
        Err(e) => match e.get_halt() {
            Ok(code) => format!("the program called halt (exit code {code})"),
            Err(e) => format!("{e:?}"),
        },
    }
}

/// What `value` displays, stopped after `max` bytes: formatting a value nested very deep
/// recurses once per level, so it must not go on.
fn bounded(value: &impl std::fmt::Display, max: usize) -> String {
    struct Upto {
        text: String,
        max: usize,
        cut: bool,
    }
    impl std::fmt::Write for Upto {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            let room = self.max - self.text.len();
            if s.len() <= room {
                self.text.push_str(s);
                return Ok(());
            }
            let mut end = room;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            self.text.push_str(&s[..end]);
            self.cut = true;
            Err(std::fmt::Error)
        }
    }
    let mut out = Upto {
        text: String::new(),
        max,
        cut: false,
    };
    let _ = std::fmt::Write::write_fmt(&mut out, format_args!("{value}"));
    if out.cut {
        out.text.push('…');
    }
    out.text
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

fn compile_errors(errs: &jaq_core::compile::Errors<&str, ()>) -> String {
    let mut msgs = Vec::new();
    for (file, items) in errs {
        for (name, undefined) in items {
            let what = match undefined {
                jaq_core::compile::Undefined::Filter(arity) => format!("{name}/{arity}"),
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

/// The JSON value of a program's output, refused if it nests deeper than [`MAX_DEPTH`]
/// (checked on the way down, so the walk itself stays shallow) or holds more than `left`
/// bytes of JSON (roughly: numbers count 8).
fn from_val(v: &Val, depth: usize, left: &mut u64) -> Result<Value, ReduceError> {
    let mut spend = |n: usize| {
        *left = left
            .checked_sub(n as u64)
            .ok_or(ReduceError::OverBudget(Limit::Output(budget::OUTPUT)))?;
        Ok::<_, ReduceError>(())
    };
    Ok(match v {
        Val::Null => {
            spend(4)?;
            Value::Null
        }
        Val::Bool(b) => {
            spend(5)?;
            Value::Bool(*b)
        }
        Val::Num(n) => {
            spend(8)?;
            number(n).map_err(ReduceError::Jq)?
        }
        Val::TStr(b) | Val::BStr(b) => {
            spend(b.len() + 2)?;
            Value::String(String::from_utf8_lossy(b).into_owned())
        }
        Val::Arr(items) => {
            if depth >= MAX_DEPTH {
                return Err(ReduceError::TooDeep);
            }
            spend(items.len() + 2)?;
            Value::Array(
                items
                    .iter()
                    .map(|item| from_val(item, depth + 1, left))
                    .collect::<Result<_, _>>()?,
            )
        }
        Val::Obj(map) => {
            if depth >= MAX_DEPTH {
                return Err(ReduceError::TooDeep);
            }
            spend(map.len() + 2)?;
            let mut out = serde_json::Map::with_capacity(map.len());
            for (k, v) in map.iter() {
                let key = match k {
                    Val::TStr(b) | Val::BStr(b) => {
                        *left = left
                            .checked_sub(b.len() as u64 + 3)
                            .ok_or(ReduceError::OverBudget(Limit::Output(budget::OUTPUT)))?;
                        String::from_utf8_lossy(b).into_owned()
                    }
                    other => {
                        return Err(ReduceError::Jq(format!(
                            "object key {} is not a string",
                            bounded(other, SHOWN)
                        )));
                    }
                };
                out.insert(key, from_val(v, depth + 1, left)?);
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
        let out = p.run(&json!({"state": {"balance": 10}, "event": {"type": "Deposited", "data": {"amount": 5}}}), "s", 1);
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
                Program::compile(program)
                    .unwrap()
                    .run(&input, "s", 1)
                    .is_err(),
                "{program}"
            );
        }
    }

    #[test]
    fn a_reducer_must_produce_exactly_one_output() {
        let input = json!({"state": {}});
        assert_eq!(
            Program::compile("empty").unwrap().run(&input, "s", 1),
            Err(ReduceError::JqOutputs(0))
        );
        assert_eq!(
            Program::compile("repeat(1)").unwrap().run(&input, "s", 1),
            Err(ReduceError::JqOutputs(2))
        );
    }

    fn run(program: &str) -> Result<Value, ReduceError> {
        Program::compile(program)
            .unwrap()
            .run(&json!({"state": {}, "event": {"data": {}}}), "s", 1)
    }

    fn over(limit: Limit) -> Result<Value, ReduceError> {
        Err(ReduceError::OverBudget(limit))
    }

    #[test]
    fn endless_programs_run_out_of_steps() {
        let steps = over(Limit::Steps(budget::STEPS));
        for program in [
            "last(range(1e10))",
            "[repeat(.)]",
            "def f: f; f",
            "[limit(1e9; repeat(1))] | length",
            "last(range(0; 1e10; 0.5))",
            "until(false; .)",
        ] {
            assert_eq!(run(program), steps, "{program}");
        }
    }

    #[test]
    fn a_run_the_watchdog_asks_to_stop_ends_at_its_next_step() {
        budget::stop_next_evaluation_here(true);
        assert_eq!(run(".state"), over(Limit::Memory(budget::MEMORY)));
        budget::stop_next_evaluation_here(false);
        assert_eq!(
            run("def f: f; f"),
            over(Limit::Time(budget::DEADLINE.as_secs()))
        );
        assert_eq!(run(".state").unwrap(), json!({}));
    }

    #[test]
    fn deep_recursion_runs_out_of_stack() {
        let stack = over(Limit::Stack(budget::STACK));
        for program in [
            "def f: 1 + f; f",
            "def f: [f]; f",
            "def f($n): [f($n + 1)]; f(0)",
        ] {
            assert_eq!(run(program), stack, "{program}");
        }
    }

    #[test]
    fn heavy_but_legitimate_programs_pass() {
        assert_eq!(
            run("[range(10000)] | add | {sum: .}").unwrap(),
            json!({"sum": 49_995_000})
        );
        assert_eq!(
            run("reduce range(10000) as $i (0; . + $i)").unwrap(),
            json!(49_995_000)
        );
        assert_eq!(run("first(range(1e10))").unwrap(), json!(0));
        assert_eq!(run("[limit(3; repeat(1))]").unwrap(), json!([1, 1, 1]));
        assert_eq!(run("[range(0; 10; 3)]").unwrap(), json!([0, 3, 6, 9]));
        assert_eq!(run("[range(5; 0; -2)]").unwrap(), json!([5, 3, 1]));
    }

    #[test]
    fn a_huge_result_is_over_budget_and_a_deep_one_too_deep() {
        assert_eq!(
            run(r#""x" * 40000000 | [., .]"#),
            over(Limit::Output(budget::OUTPUT))
        );
        assert_eq!(
            run("reduce range(200) as $i (null; [.])"),
            Err(ReduceError::TooDeep)
        );
        assert_eq!(
            run("reduce range(119) as $i (0; [.]) | length").unwrap(),
            json!(1)
        );
    }

    #[test]
    fn a_string_repeated_past_the_limit_is_refused_before_it_is_built() {
        let string = over(Limit::String(budget::OUTPUT));
        for program in [
            r#""x" * 100000000000"#,
            r#"100000000000 * "x""#,
            r#""x" * 1000000000000000000000"#,
            r#"{a: "xy"} | .a *= 40000000"#,
            r#"def f: . * 100000000000; "x" | f"#,
            r#"[1, 2] | .["x" * 100000000000]"#,
        ] {
            assert_eq!(run(program), string, "{program}");
        }
    }

    #[test]
    fn multiplication_is_otherwise_what_jq_makes_it() {
        assert_eq!(
            run(
                r#"{s: ("ab" * 3), n: (2 * 3.5), neg: ("x" * -1), m: ({a: {b: 1}} * {a: {c: 2}})}"#
            )
            .unwrap(),
            json!({"s": "ababab", "n": 7, "neg": null, "m": {"a": {"b": 1, "c": 2}}})
        );
        assert_eq!(
            run("{k: 3} | .k *= (2, 3)").unwrap_err(),
            ReduceError::JqOutputs(2)
        );
        assert_eq!(
            run("[1, 2] as [$a, $b] | {p: ($a * $b)} | .p *= 5").unwrap(),
            json!({"p": 10})
        );
        let err = run(r#""x" * 1e9"#).unwrap_err().to_string();
        assert!(err.contains("cannot calculate"), "{err}");
    }

    #[test]
    fn a_program_nested_deeper_than_any_stack_compiles_or_is_refused() {
        let nested = format!("{}1{}", "(".repeat(20_000), ")".repeat(20_000));
        assert_eq!(run(&nested).unwrap(), json!(1));
        let negated = format!("{}1", "- ".repeat(20_000));
        assert_eq!(run(&negated), over(Limit::Stack(budget::STACK)));
        let long = ".a".repeat(SOURCE);
        let err = Program::compile(&long).err().unwrap().to_string();
        assert!(err.contains("at most 65,536"), "{err}");
    }

    #[test]
    fn fromjson_refuses_text_nested_too_deep() {
        let err = run(r#"[range(1000)] | map("[") | add | fromjson"#).unwrap_err();
        assert!(err.to_string().contains("nests deeper than 512"), "{err}");
        let deep = "reduce range(600) as $i (0; [.])";
        for stringify in [
            "tojson",
            "tostring",
            r#""\(.)""#,
            "@json",
            "[.] | join(\",\")",
        ] {
            let err = run(&format!("{deep} | {stringify}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("deeper than 512 levels"), "{stringify}: {err}");
        }
        assert_eq!(
            run(r#"[1, {"a": [2]}] | [tojson, tostring, "\(.)"] | unique"#).unwrap(),
            json!([r#"[1,{"a":[2]}]"#])
        );
        assert_eq!(
            run(r#""[1,{\"a\":\"[[\"}]" | fromjson"#).unwrap(),
            json!([1, {"a": "[["}])
        );
    }

    #[test]
    fn errors_show_a_bounded_part_of_huge_values() {
        let err = run("error([range(100000)])").unwrap_err().to_string();
        assert!(err.len() < SHOWN + 100, "{}", err.len());
        assert!(err.ends_with('…'), "{err}");
        let err = run(r#"error("boom")"#).unwrap_err().to_string();
        assert_eq!(err, "jq: boom");
    }

    #[test]
    fn only_structure_counts_in_nesting() {
        assert!(nests_deeper(b"[[[", 2));
        assert!(!nests_deeper(b"[[]]", 2));
        assert!(!nests_deeper(br#"["[[[[", "\"[[["]"#, 2));
    }

    #[test]
    fn numbers_survive_the_round_trip() {
        let v = json!({"i": 12_345_678_901_234_567_i64, "u": u64::MAX, "f": 1.5, "half": 4});
        assert_eq!(Program::compile(".").unwrap().run(&v, "s", 1).unwrap(), v);
        assert_eq!(
            Program::compile(".half / 2")
                .unwrap()
                .run(&v, "s", 1)
                .unwrap(),
            json!(2)
        );
    }

    /// Found by the jq_program fuzz target: `now` gave another state on every run.
    #[test]
    fn what_depends_on_when_or_where_it_runs_is_an_error_that_says_why() {
        for (program, why) in [
            ("now", "now reads the clock"),
            ("{t: now}", "use .event.ts"),
            ("env", "env reads the environment"),
            ("0 | localtime", "time zone"),
            ("0 | strflocaltime(\"%H\")", "time zone"),
        ] {
            let err = Program::compile(program)
                .unwrap()
                .run(&json!({}), "s", 1)
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{program}: {err}");
        }
        // What does not depend on them still works.
        assert_eq!(
            Program::compile("1700000000 | gmtime | mktime")
                .unwrap()
                .run(&json!({}), "s", 1)
                .unwrap(),
            json!(1_700_000_000)
        );
    }
}
