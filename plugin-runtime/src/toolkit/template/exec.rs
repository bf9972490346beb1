//! Executing a parsed template.

use super::funcs::{self, Func, Ty};
use super::parse::{Arg, Command, MAIN, Node, Number, Pipe};
use super::value::{self, Value};
use super::{Environment, TemplateData, TemplateError};

/// The node an error is reported at, as Go's `state.at`.
#[derive(Clone, Copy)]
enum At<'n> {
    None,
    Arg(&'n Arg),
    Cmd(&'n Command),
    Pipe(&'n Pipe),
    Action(usize, &'n Pipe),
    Template(usize, &'n [u8], Option<&'n Pipe>),
}

pub(crate) struct State<'a> {
    pub(crate) src: &'a str,
    pub(crate) data: &'a dyn TemplateData,
    pub(crate) env: &'a dyn Environment,
    pub(crate) out: Vec<u8>,
    templates: &'a [(Vec<u8>, Vec<Node>)],
    /// The template being executed (named in errors as Go does).
    name: &'a [u8],
    vars: Vec<(String, Value)>,
    at: At<'a>,
    steps: u64,
    depth: usize,
}

pub(crate) enum Flow {
    Normal,
    Break,
    Continue,
}

type R<T> = Result<T, TemplateError>;

const MAX_STEPS: u64 = 1_000_000;
const MAX_OUTPUT: usize = 64 << 20;
/// How deep `{{template}}` calls may nest (Go's `maxExecDepth`). Templates that call
/// templates run on a thread with a stack of [`super::CALL_STACK`] bytes.
pub(crate) const MAX_TEMPLATE_DEPTH: usize = 100_000;

impl<'a> State<'a> {
    pub(crate) fn new(
        src: &'a str,
        templates: &'a [(Vec<u8>, Vec<Node>)],
        data: &'a dyn TemplateData,
        env: &'a dyn Environment,
    ) -> Self {
        State {
            src,
            data,
            env,
            out: Vec::new(),
            templates,
            name: MAIN,
            vars: vec![("$".into(), Value::Data)],
            at: At::None,
            steps: 0,
            depth: 0,
        }
    }

    /// Runs the main template (Go's `Execute`).
    pub(crate) fn run(&mut self) -> R<()> {
        let main = self
            .templates
            .iter()
            .find(|(n, _)| n == MAIN)
            .map(|(_, nodes)| nodes.as_slice())
            .unwrap_or(&[]);
        self.walk(main)?;
        Ok(())
    }

    fn errorf(&self, msg: impl Into<String>) -> TemplateError {
        let msg = msg.into();
        let (pos, ctx) = match self.at {
            At::None => return TemplateError::exec(0, format!("template: template: {msg}")),
            At::Arg(a) => (a.pos(), a.text()),
            At::Cmd(c) => (c.pos, c.text()),
            At::Pipe(p) => (p.pos, p.text()),
            At::Action(pos, p) => (pos, format!("{{{{{}}}}}", p.text())),
            At::Template(pos, name, pipe) => (
                pos,
                match pipe {
                    Some(p) => format!(
                        "{{{{template {} {}}}}}",
                        value::go_quote_bytes(name),
                        p.text()
                    ),
                    None => format!("{{{{template {}}}}}", value::go_quote_bytes(name)),
                },
            ),
        };
        let before = &self.src[..pos.min(self.src.len())];
        let line = 1 + before.matches('\n').count();
        let col = match before.rfind('\n') {
            Some(i) => pos - (i + 1),
            None => pos,
        };
        TemplateError::exec(
            pos,
            format!(
                "template: template:{line}:{col}: executing {} at <{ctx}>: {msg}",
                value::go_quote_bytes(self.name)
            ),
        )
    }

    fn data_text(&self) -> String {
        self.data.display()
    }

    pub(crate) fn walk(&mut self, nodes: &'a [Node]) -> R<Flow> {
        for node in nodes {
            self.steps += 1;
            if self.steps > MAX_STEPS || self.out.len() > MAX_OUTPUT {
                return Err(TemplateError::exec(
                    0,
                    "template: template: execution too long".into(),
                ));
            }
            match node {
                Node::Text(t) => self.out.extend_from_slice(t.as_bytes()),
                Node::Action(pos, pipe) => {
                    self.at = At::Action(*pos, pipe);
                    let v = self.pipeline(pipe)?;
                    if pipe.decl.is_empty() {
                        let s = value::print_value(&v, &|| self.data_text());
                        self.out.extend_from_slice(&s);
                    }
                }
                Node::Template(pos, name, pipe) => self.call_template(*pos, name, pipe.as_ref())?,
                Node::If(pipe, list, else_list) | Node::With(pipe, list, else_list) => {
                    let mark = self.vars.len();
                    let v = self.pipeline(pipe)?;
                    let flow = if v.truth() {
                        if matches!(node, Node::With(..)) {
                            self.vars.push((".".into(), v));
                        }
                        self.walk(list)?
                    } else {
                        self.walk(else_list)?
                    };
                    self.vars.truncate(mark);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::Range(pipe, list, else_list) => {
                    let mark = self.vars.len();
                    // Evaluated without declaring: the variables get the iteration values.
                    let v = self.pipeline_value(pipe)?;
                    let n = match v {
                        Value::Int(n) => n,
                        other => {
                            return Err(self.errorf(format!(
                                "range can't iterate over {}",
                                value::print_text(&other, &|| self.data_text())
                            )));
                        }
                    };
                    if n <= 0 {
                        self.walk(else_list)?;
                    }
                    for i in 0..n.max(0) {
                        self.steps += 1;
                        if self.steps > MAX_STEPS || self.out.len() > MAX_OUTPUT {
                            return Err(self.errorf("execution too long"));
                        }
                        let inner = self.vars.len();
                        if let Some(first) = pipe.decl.first() {
                            self.vars.push((first.clone(), Value::Int(i)));
                        }
                        self.vars.push((".".into(), Value::Int(i)));
                        let flow = self.walk(list)?;
                        self.vars.truncate(inner);
                        if matches!(flow, Flow::Break) {
                            break;
                        }
                    }
                    self.vars.truncate(mark);
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    /// Go's `walkTemplate`: the named template with the pipeline's value as `.` and `$`,
    /// and none of the caller's variables.
    fn call_template(&mut self, pos: usize, name: &'a [u8], pipe: Option<&'a Pipe>) -> R<()> {
        self.at = At::Template(pos, name, pipe);
        let Some((tname, nodes)) = self.templates.iter().find(|(n, _)| n == name) else {
            return Err(self.errorf(format!(
                "template {} not defined",
                value::go_quote_bytes(name)
            )));
        };
        if self.depth >= MAX_TEMPLATE_DEPTH {
            return Err(self.errorf(format!(
                "exceeded maximum template depth ({MAX_TEMPLATE_DEPTH})"
            )));
        }
        // Variables the pipeline declares persist in the caller.
        let dot = match pipe {
            Some(p) => self.pipeline(p)?,
            None => Value::NoValue,
        };
        let vars = std::mem::replace(
            &mut self.vars,
            vec![("$".into(), dot.clone()), (".".into(), dot)],
        );
        let caller = std::mem::replace(&mut self.name, tname);
        self.depth += 1;
        let r = self.walk(nodes);
        self.depth -= 1;
        self.name = caller;
        self.vars = vars;
        r.map(|_| ())
    }

    fn dot(&self) -> Value {
        self.vars
            .iter()
            .rev()
            .find(|(k, _)| k == ".")
            .map(|(_, v)| v.clone())
            .unwrap_or(Value::Data)
    }

    fn pipeline_value(&mut self, pipe: &'a Pipe) -> R<Value> {
        self.at = At::Pipe(pipe);
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            value = Some(self.command(cmd, value)?);
        }
        Ok(value.unwrap_or(Value::NoValue))
    }

    fn pipeline(&mut self, pipe: &'a Pipe) -> R<Value> {
        let value = self.pipeline_value(pipe)?;
        for name in &pipe.decl {
            if pipe.assign {
                if let Some(slot) = self.vars.iter_mut().rev().find(|(k, _)| k == name) {
                    slot.1 = value.clone();
                }
            } else {
                self.vars.push((name.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, args: &[Arg], fin: &Option<Value>) -> R<()> {
        if args.len() > 1 || fin.is_some() {
            return Err(self.errorf(format!(
                "can't give argument to non-function {}",
                args[0].text()
            )));
        }
        Ok(())
    }

    fn command(&mut self, cmd: &'a Command, fin: Option<Value>) -> R<Value> {
        let first = &cmd.args[0];
        match first {
            Arg::Field(_, fields) => {
                self.at = At::Arg(first);
                let dot = self.dot();
                self.field_chain(dot, fields, &cmd.args, &fin)
            }
            Arg::Chain(_, inner, fields) => {
                self.at = At::Arg(first);
                let recv = self.arg_value(inner)?;
                self.field_chain(recv, fields, &cmd.args, &fin)
            }
            Arg::Ident(_, name) => self.function(first, name, Some(cmd), &cmd.args, fin),
            Arg::Pipe(p) => {
                self.not_a_function(&cmd.args, &fin)?;
                self.pipeline(p)
            }
            Arg::Var(_, name, fields) => {
                self.at = At::Arg(first);
                let v = self.var(name);
                if fields.is_empty() {
                    self.not_a_function(&cmd.args, &fin)?;
                    return Ok(v);
                }
                self.field_chain(v, fields, &cmd.args, &fin)
            }
            _ => {
                self.at = At::Arg(first);
                self.not_a_function(&cmd.args, &fin)?;
                match first {
                    Arg::Bool(_, b) => Ok(Value::Bool(*b)),
                    Arg::Dot(_) => Ok(self.dot()),
                    Arg::Nil(_) => Err(self.errorf("nil is not a command")),
                    Arg::Num(_, n) => self.ideal_constant(first, n),
                    Arg::Str(_, _, s) => Ok(Value::Str(s.clone())),
                    _ => unreachable!(),
                }
            }
        }
    }

    fn var(&self, name: &str) -> Value {
        self.vars
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or(Value::NoValue)
    }

    fn ideal_constant(&mut self, node: &'a Arg, n: &Number) -> R<Value> {
        self.at = At::Arg(node);
        let t = &n.text;
        let is_hex = t.len() > 2
            && t.trim_start_matches(['+', '-'])
                .to_ascii_lowercase()
                .starts_with("0x")
            && !t.to_ascii_lowercase().contains('p');
        let is_rune = t.starts_with('\'');
        if n.float.is_some() && !is_hex && !is_rune && t.contains(['.', 'e', 'E', 'p', 'P']) {
            return Ok(Value::Float(n.float.unwrap_or(0.0)));
        }
        match n.int {
            Some(i) => Ok(Value::Int(i)),
            None if n.uint => Err(self.errorf(format!("{t} overflows int"))),
            None => Ok(Value::Float(n.float.unwrap_or(0.0))),
        }
    }

    fn field_chain(
        &mut self,
        recv: Value,
        fields: &[String],
        args: &[Arg],
        fin: &Option<Value>,
    ) -> R<Value> {
        let mut recv = recv;
        for (i, f) in fields.iter().enumerate() {
            let last = i + 1 == fields.len();
            let has_args = last && (args.len() > 1 || fin.is_some());
            recv = self.field(&recv, f, has_args)?;
        }
        Ok(recv)
    }

    fn field(&mut self, recv: &Value, name: &str, has_args: bool) -> R<Value> {
        match recv {
            Value::Data => match self.data.field(name) {
                Some(v) => {
                    if has_args {
                        let what = if self.data.is_map() {
                            "is not a method but has arguments"
                        } else {
                            "has arguments but cannot be invoked as function"
                        };
                        return Err(self.errorf(format!("{name} {what}")));
                    }
                    Ok(v)
                }
                None if self.data.is_map() => {
                    if has_args {
                        return Err(
                            self.errorf(format!("{name} is not a method but has arguments"))
                        );
                    }
                    Ok(Value::NoValue)
                }
                None => Err(self.errorf(format!(
                    "can't evaluate field {name} in type {}",
                    self.data.type_name()
                ))),
            },
            Value::NoValue | Value::Nil => Ok(Value::NoValue),
            other => Err(self.errorf(format!(
                "can't evaluate field {name} in type {}",
                other.go_type(self.data.type_name())
            ))),
        }
    }

    /// Evaluates an argument without a target type (Go's `evalArg(dot, nil, n)`).
    fn arg_value(&mut self, a: &'a Arg) -> R<Value> {
        self.at = At::Arg(a);
        match a {
            Arg::Dot(_) => Ok(self.dot()),
            Arg::Nil(_) => Ok(Value::Nil),
            Arg::Field(_, f) => {
                let dot = self.dot();
                self.field_chain(dot, f, std::slice::from_ref(a), &None)
            }
            Arg::Var(_, name, f) => {
                let v = self.var(name);
                if f.is_empty() {
                    Ok(v)
                } else {
                    self.field_chain(v, f, &[], &None)
                }
            }
            Arg::Pipe(p) => self.pipeline(p),
            Arg::Ident(_, name) => self.function(a, name, None, std::slice::from_ref(a), None),
            Arg::Chain(_, inner, f) => {
                let recv = self.arg_value(inner)?;
                self.at = At::Arg(a);
                self.field_chain(recv, f, &[], &None)
            }
            Arg::Bool(_, b) => Ok(Value::Bool(*b)),
            Arg::Num(_, n) => self.ideal_constant(a, n),
            Arg::Str(_, _, s) => Ok(Value::Str(s.clone())),
        }
    }

    /// Go's `evalArg(dot, typ, n)`.
    fn typed_arg(&mut self, a: &'a Arg, ty: Ty) -> R<Value> {
        self.at = At::Arg(a);
        match a {
            Arg::Dot(_)
            | Arg::Field(..)
            | Arg::Var(..)
            | Arg::Pipe(_)
            | Arg::Ident(..)
            | Arg::Chain(..) => {
                let v = self.arg_value(a)?;
                return self.validate(v, ty);
            }
            Arg::Nil(_) => {
                if ty == Ty::Any {
                    return Ok(Value::Nil);
                }
                return Err(self.errorf(format!("cannot assign nil to {}", ty.go())));
            }
            _ => {}
        }
        match (ty, a) {
            (Ty::Any, Arg::Num(_, n)) => self.ideal_constant(a, n),
            (Ty::Any, other) => self.arg_value(other),
            (Ty::Int, Arg::Num(_, n)) if n.int.is_some() => Ok(Value::Int(n.int.unwrap_or(0))),
            (Ty::Int, other) => {
                Err(self.errorf(format!("expected integer; found {}", other.text())))
            }
            (Ty::Str, Arg::Str(_, _, s)) => Ok(Value::Str(s.clone())),
            (Ty::Str, other) => {
                Err(self.errorf(format!("expected string; found {}", other.text())))
            }
        }
    }

    fn validate(&self, v: Value, ty: Ty) -> R<Value> {
        match (ty, &v) {
            (Ty::Any, Value::NoValue) => Ok(Value::Nil),
            (Ty::Any, _) | (Ty::Int, Value::Int(_)) | (Ty::Str, Value::Str(_)) => Ok(v),
            (_, Value::NoValue) => Err(self.errorf(format!("invalid value; expected {}", ty.go()))),
            _ => Err(self.errorf(format!(
                "wrong type for value; expected {}; got {}",
                ty.go(),
                v.go_type(self.data.type_name())
            ))),
        }
    }

    fn function(
        &mut self,
        ident: &'a Arg,
        name: &str,
        cmd: Option<&'a Command>,
        args: &'a [Arg],
        fin: Option<Value>,
    ) -> R<Value> {
        self.at = At::Arg(ident);
        let Some(func) = funcs::lookup(name) else {
            return Err(self.errorf(format!("{name:?} is not a defined function")));
        };
        let args = &args[1..];
        let sig = func.sig();
        let num_in = args.len() + usize::from(fin.is_some());
        match sig.variadic {
            Some(_) => {
                if num_in < sig.params.len() {
                    return Err(self.errorf(format!(
                        "wrong number of args for {name}: want at least {} got {}",
                        sig.params.len(),
                        args.len()
                    )));
                }
            }
            None => {
                if num_in != sig.params.len() {
                    return Err(self.errorf(format!(
                        "wrong number of args for {name}: want {} got {num_in}",
                        sig.params.len()
                    )));
                }
            }
        }
        if matches!(func, Func::And | Func::Or) {
            let want = matches!(func, Func::Or);
            let mut v = Value::NoValue;
            for a in args {
                v = self.typed_arg(a, Ty::Any)?;
                if v.truth() == want {
                    return Ok(v);
                }
            }
            if let Some(f) = fin {
                v = self.validate(f, Ty::Any)?;
            }
            return Ok(v);
        }
        let mut argv = Vec::with_capacity(num_in);
        for (i, a) in args.iter().enumerate() {
            let ty = sig
                .params
                .get(i)
                .copied()
                .or(sig.variadic)
                .unwrap_or(Ty::Any);
            argv.push(self.typed_arg(a, ty)?);
        }
        if let Some(f) = fin {
            let ty = sig
                .params
                .get(args.len())
                .copied()
                .or(sig.variadic)
                .unwrap_or(Ty::Any);
            argv.push(self.validate(f, ty)?);
        }
        match funcs::call(func, &argv, self) {
            Ok(v) => Ok(v),
            Err(e) => {
                self.at = match cmd {
                    Some(c) => At::Cmd(c),
                    None => At::Arg(ident),
                };
                Err(self.errorf(format!("error calling {name}: {e}")))
            }
        }
    }
}
