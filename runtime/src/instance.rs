//! Instances: an instance file read, its connector found and compiled, its values resolved.
//!
//! Every problem is a located [`Diagnostic`] naming the instance file (or the connector
//! file), and all of them are collected before anything is sent.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use compiler::ir::{Auth, Ir, Var};
use compiler::Diagnostic;
use connector_spec::instance::InstanceValue;

use crate::resolve::{resolve, Given};
use crate::value::Values;

/// A loaded instance, ready to authenticate.
#[derive(Debug, Clone)]
pub struct Instance {
    /// The instance's id (its `instance:` key, else the file name without extension).
    pub id: String,
    /// The instance file, as named.
    pub file: String,
    /// The connector file it uses.
    pub connector_file: PathBuf,
    /// The compiled connector.
    pub ir: Arc<Ir>,
    /// The chosen auth method's name.
    pub auth_name: String,
    /// Every variable's value (connector and auth method variables); secrets are
    /// [`crate::value::Value::Secret`].
    pub vars: Values,
    /// Warnings found while loading (an inline secret).
    pub warnings: Vec<Diagnostic>,
    /// The instance file's text with inline secrets masked, for the source lines of
    /// [`Instance::warnings`].
    pub source: String,
}

impl Instance {
    /// The chosen auth method.
    pub fn auth(&self) -> &Auth {
        &self.ir.auth[&self.auth_name]
    }

    /// The secrets among the values, to scrub from text shown to users.
    pub fn secrets(&self) -> impl Iterator<Item = &crate::secret::Secret> {
        self.vars.values().filter_map(|v| match v {
            crate::value::Value::Secret(s) => Some(s),
            _ => None,
        })
    }
}

/// Why an instance could not be loaded: diagnostics, and the text of the files they point
/// into (to print their source lines).
#[derive(Debug, Default)]
pub struct LoadError {
    /// Every problem, errors and warnings.
    pub diagnostics: Vec<Diagnostic>,
    /// File name → text, for the source lines of the diagnostics.
    pub sources: HashMap<String, String>,
}

impl LoadError {
    fn one(file: &str, d: Diagnostic) -> Self {
        let mut d = d;
        d.file = file.to_owned();
        LoadError {
            diagnostics: vec![d],
            sources: HashMap::new(),
        }
    }
}

/// Loads the instance file at `path`. `overrides` replace values of the file (the
/// `--sandbox` switch points `base_url` at the sandbox this way).
pub fn load(path: &Path, overrides: &[(String, Given)]) -> Result<Instance, LoadError> {
    load_with(path, overrides, &mut Connectors::default())
}

/// Why a connector did not compile: its errors, its file name and its text.
type Failure = Arc<(Vec<Diagnostic>, String, Option<String>)>;

/// Compiled connectors by file, so that instances of one connector share one IR.
#[derive(Debug, Default)]
pub struct Connectors {
    compiled: HashMap<PathBuf, Result<Arc<Ir>, Failure>>,
}

impl Connectors {
    /// The IR of the connector at `path`, compiled on first use.
    fn compile(&mut self, path: &Path) -> Result<Arc<Ir>, Failure> {
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        self.compiled
            .entry(key)
            .or_insert_with(|| {
                let name = path.display().to_string();
                let bytes = crate::read_capped(path).map_err(|e| {
                    let mut d =
                        Diagnostic::error("io", format!("cannot read the connector file: {e}"));
                    d.file = name.clone();
                    Arc::new((vec![d], name.clone(), None))
                })?;
                let compiled = compiler::compile(&name, &bytes);
                match compiled.ir {
                    Some(ir) => Ok(Arc::new(ir)),
                    None => Err(Arc::new((
                        compiled
                            .diagnostics
                            .into_iter()
                            .filter(Diagnostic::is_error)
                            .collect(),
                        name,
                        Some(String::from_utf8_lossy(&bytes).into_owned()),
                    ))),
                }
            })
            .clone()
    }
}

/// Loads an instance, compiling its connector through `connectors` (once per connector
/// file for a whole folder of instances).
pub fn load_with(
    path: &Path,
    overrides: &[(String, Given)],
    connectors: &mut Connectors,
) -> Result<Instance, LoadError> {
    let file = path.display().to_string();
    let bytes = crate::read_capped(path).map_err(|e| {
        LoadError::one(
            &file,
            Diagnostic::error("io", format!("cannot read the instance file: {e}")),
        )
    })?;
    let loaded = compiler::load_instance(&file, &bytes).map_err(|diagnostics| LoadError {
        diagnostics,
        sources: HashMap::from([(file.clone(), String::from_utf8_lossy(&bytes).into_owned())]),
    })?;
    let spec = &loaded.value;
    let loc = &loaded.locations;
    // Until the connector says which values are secrets, every inline value is masked.
    let masked = mask_inline_values(&loaded.text, loc, spec.values.keys());
    let mut err = LoadError {
        diagnostics: loaded.unknown_keys.clone(),
        sources: HashMap::from([(file.clone(), masked.clone())]),
    };
    let dir = path.parent().unwrap_or(Path::new("."));

    // The connector.
    let connector_file = match find_connector(dir, &spec.connector) {
        Ok(p) => p,
        Err(help) => {
            err.diagnostics.push(
                Diagnostic::error(
                    "unknown-connector",
                    format!("cannot find the connector `{}`", spec.connector),
                )
                .at("/connector", loc.value("/connector"))
                .help(help),
            );
            return Err(with_file(err, &file));
        }
    };
    let ir = match connectors.compile(&connector_file) {
        Ok(ir) => ir,
        Err(failure) => {
            let (diagnostics, name, source) = failure.as_ref().clone();
            err.diagnostics = diagnostics;
            if let Some(text) = source {
                err.sources.insert(name, text);
            }
            return Err(err);
        }
    };

    // The auth method.
    let Some(auth) = ir.auth.get(&spec.auth) else {
        let names: Vec<&str> = ir.auth.keys().map(String::as_str).collect();
        err.diagnostics.push(
            Diagnostic::error(
                "unknown-auth",
                format!(
                    "the connector `{}` has no auth method `{}`",
                    ir.connector, spec.auth
                ),
            )
            .at("/auth", loc.value("/auth"))
            .help(
                compiler::suggest_help(&spec.auth, &names, |n| format!("`{n}`"))
                    .unwrap_or_default(),
            ),
        );
        return Err(with_file(err, &file));
    };

    // The values.
    let declared: Vec<&Var> = ir.variables.iter().chain(auth.variables.iter()).collect();
    let masked = mask_inline_values(
        &loaded.text,
        loc,
        spec.values
            .keys()
            .filter(|n| declared.iter().any(|v| &v.name == *n && v.secret)),
    );
    err.sources.insert(file.clone(), masked.clone());
    let mut given: Vec<(String, Given)> = Vec::new();
    for (name, value) in &spec.values {
        let pointer = format!("/values/{}", compiler::yaml::escape(name));
        let secret = declared.iter().any(|v| &v.name == name && v.secret);
        if overrides.iter().any(|(n, _)| n == name) {
            continue;
        }
        match value {
            InstanceValue::Inline(s) => {
                if secret {
                    err.diagnostics.push(
                        Diagnostic::warning(
                            "inline-secret",
                            format!("the secret `{name}` is written inline in the instance file"),
                        )
                        .at(pointer.clone(), loc.value(&pointer))
                        .help(format!(
                            "read it from the environment (`{name}: {{ env: NAME }}`) or a file (`{name}: {{ file: PATH }}`), and keep it out of version control"
                        )),
                    );
                }
                given.push((name.clone(), Given::Json(crate::value::scalar_json(s))));
            }
            InstanceValue::Env(e) => match std::env::var(&e.env) {
                Ok(v) => given.push((name.clone(), Given::Text(v))),
                Err(_) => err.diagnostics.push(
                    Diagnostic::error(
                        "env-unset",
                        format!(
                            "the environment variable `{}` (the value of `{name}`) is not set",
                            e.env
                        ),
                    )
                    .at(pointer.clone(), loc.value(&pointer))
                    .help(format!("set it: `export {}=...`", e.env)),
                ),
            },
            InstanceValue::File(f) => {
                let p = dir.join(&f.file);
                match std::fs::read_to_string(&p) {
                    Ok(text) => {
                        let text = text
                            .strip_suffix("\r\n")
                            .or_else(|| text.strip_suffix('\n'))
                            .unwrap_or(&text)
                            .to_owned();
                        given.push((name.clone(), Given::Text(text)));
                    }
                    Err(e) => err.diagnostics.push(
                        Diagnostic::error(
                            "value-file",
                            format!("cannot read `{}` (the value of `{name}`): {e}", p.display()),
                        )
                        .at(pointer.clone(), loc.value(&pointer))
                        .help("the path is relative to the instance file"),
                    ),
                }
            }
        }
    }
    given.extend(overrides.iter().cloned());
    let (vars, problems) = resolve(&declared, &given, None, "variable");
    for p in problems {
        let pointer = format!("/values/{}", compiler::yaml::escape(&p.name));
        // A value that could not be read (an unset environment variable, an unreadable file)
        // already has its error; "has no value" would repeat it with the wrong advice.
        if p.code == "missing-value"
            && err
                .diagnostics
                .iter()
                .any(|d| d.is_error() && d.pointer == pointer)
        {
            continue;
        }
        let (pointer, pos) = if loc.contains(&pointer) {
            let pos = if p.code == "unknown-value" {
                loc.key(&pointer)
            } else {
                loc.value(&pointer)
            };
            (pointer, pos)
        } else if loc.contains("/values") {
            ("/values".to_owned(), loc.key("/values"))
        } else {
            ("/auth".to_owned(), loc.key("/auth"))
        };
        let mut help = p.help;
        if p.code == "unknown-value" {
            if let Some((other, _)) = ir
                .auth
                .iter()
                .find(|(_, a)| a.variables.iter().any(|v| v.name == p.name))
            {
                help = Some(format!(
                    "`{}` is a variable of the auth method `{other}`, not of `{}`",
                    p.name, spec.auth
                ));
            }
        }
        let mut d = Diagnostic::error(p.code, p.message).at(pointer, pos);
        if let Some(h) = help {
            d = d.help(h);
        }
        err.diagnostics.push(d);
    }
    if err.diagnostics.iter().any(Diagnostic::is_error) {
        compiler::diagnostic::sort(&mut err.diagnostics);
        return Err(with_file(err, &file));
    }
    let id = spec.instance.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "instance".into())
    });
    let warnings = with_file(err, &file).diagnostics;
    Ok(Instance {
        id,
        file,
        connector_file,
        auth_name: spec.auth.clone(),
        ir,
        vars,
        warnings,
        source: masked,
    })
}

/// The text with the inline values of `names` under `values:` replaced by `*`, so that
/// source lines printed with diagnostics never show an inline credential.
fn mask_inline_values<'a>(
    text: &str,
    loc: &compiler::yaml::Locations,
    names: impl Iterator<Item = &'a String>,
) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for name in names {
        let pointer = format!("/values/{}", compiler::yaml::escape(name));
        let Some(l) = loc.get(&pointer) else {
            continue;
        };
        let pos = l.value;
        if pos.line == 0 || pos.line > lines.len() {
            continue;
        }
        let line = &lines[pos.line - 1];
        let start = pos.column.saturating_sub(1);
        let chars: Vec<char> = line.chars().collect();
        if start >= chars.len() || chars[start] == '{' {
            continue; // `{ env: … }` and `{ file: … }` name where the value is, not the value.
        }
        let end = (start + pos.len.max(1)).min(chars.len());
        let masked: String = chars[..start]
            .iter()
            .chain("*".repeat(end - start).chars().collect::<Vec<_>>().iter())
            .chain(chars[end..].iter())
            .collect();
        lines[pos.line - 1] = masked;
    }
    let mut out = lines.join("\n");
    if text.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn with_file(mut err: LoadError, file: &str) -> LoadError {
    for d in &mut err.diagnostics {
        if d.file.is_empty() {
            d.file = file.to_owned();
        }
    }
    err
}

/// Finds the connector an instance names: a path relative to the instance file, or an id
/// looked up as `connectors/ID.yaml` (then by the `connector:` key of every file) in the
/// instance's folder, its ancestors, and the working directory.
pub fn find_connector(dir: &Path, name: &str) -> Result<PathBuf, String> {
    let looks_like_path = name.contains('/')
        || name.contains('\\')
        || name.ends_with(".yaml")
        || name.ends_with(".yml");
    if looks_like_path {
        let p = dir.join(name);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "`{}` does not exist (a path is relative to the instance file)",
                p.display()
            ))
        };
    }
    let mut folders: Vec<PathBuf> = dir.ancestors().map(|a| a.join("connectors")).collect();
    folders.push(PathBuf::from("connectors"));
    folders.retain(|f| f.is_dir());
    folders.dedup();
    for f in &folders {
        for ext in ["yaml", "yml"] {
            let p = f.join(format!("{name}.{ext}"));
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    let mut ids = Vec::new();
    for f in &folders {
        let Ok(entries) = std::fs::read_dir(f) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        for p in files {
            if !matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
                continue;
            }
            if let Some(id) = connector_id(&p) {
                if id == name {
                    return Ok(p);
                }
                ids.push(id);
            }
        }
    }
    if folders.is_empty() {
        return Err(
            "no `connectors/` folder beside the instance file, above it, or in the working directory; give a path such as `../connectors/x.yaml`"
                .to_owned(),
        );
    }
    ids.sort();
    ids.dedup();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    Err(compiler::suggest_help(name, &refs, |n| format!("`{n}`"))
        .map(|h| format!("{h} (connectors found: {})", refs.join(", ")))
        .unwrap_or_else(|| "no connector with this id was found".to_owned()))
}

/// The `connector:` id of a connector file, read cheaply.
fn connector_id(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        l.strip_prefix("connector:")
            .map(|v| v.trim().trim_matches(['"', '\'']).to_owned())
    })
}
