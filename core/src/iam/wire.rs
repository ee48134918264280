//! The IAM objects as written in YAML (what `kubectl apply` takes), and
//! [`parse_documents`] for multi-document sources.
//!
//! These mirror the faas-netes `iam.openfaas.com/v1` types. `spec` structs
//! deny unknown fields so a typo (`statment:`) fails loudly; `metadata`
//! keeps only `name` and `namespace` and ignores labels, annotations and the
//! like; a top-level `status` is allowed and ignored.

use std::fmt;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::condition::{ConditionSpec, PrincipalSpec};
use super::error::{IamError, IamErrorKind, IamErrors, ObjectRef};

/// The only apiVersion accepted.
pub const API_VERSION: &str = "iam.openfaas.com/v1";

/// Marks a value in the shipped examples (`k8s/examples`) that the user
/// must replace: an issuer, an audience, a principal or a condition value
/// of a Role holding it is refused, by the engine and by the CRDs alike, so
/// examples applied unedited fail loudly instead of trusting a stranger.
pub const PLACEHOLDER: &str = "EDIT-ME";

/// The kinds of IAM object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    JwtIssuer,
    Policy,
    Role,
}

impl ObjectKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            ObjectKind::JwtIssuer => "JwtIssuer",
            ObjectKind::Policy => "Policy",
            ObjectKind::Role => "Role",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [ObjectKind::JwtIssuer, ObjectKind::Policy, ObjectKind::Role]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One parsed, not yet validated, IAM object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IamObject {
    JwtIssuer(Object<JwtIssuerSpec>),
    Policy(Object<PolicySpec>),
    Role(Object<RoleSpec>),
}

impl IamObject {
    pub fn kind(&self) -> ObjectKind {
        match self {
            IamObject::JwtIssuer(_) => ObjectKind::JwtIssuer,
            IamObject::Policy(_) => ObjectKind::Policy,
            IamObject::Role(_) => ObjectKind::Role,
        }
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            IamObject::JwtIssuer(o) => &o.metadata,
            IamObject::Policy(o) => &o.metadata,
            IamObject::Role(o) => &o.metadata,
        }
    }
}

/// `metadata` and `spec` of one object; `apiVersion` and `kind` are implied
/// by where it sits in [`IamObject`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Object<S> {
    pub metadata: ObjectMeta,
    pub spec: S,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ObjectMeta {
    pub name: String,
    /// Usually `openfaas`. Absent means "the namespace of the other objects".
    #[serde(default)]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JwtIssuerSpec {
    pub iss: String,
    #[serde(default)]
    pub iss_internal: Option<String>,
    pub aud: Vec<String>,
    #[serde(default)]
    pub token_expiry: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    pub statement: Vec<StatementSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementSpec {
    #[serde(default)]
    pub sid: String,
    pub effect: String,
    pub action: Vec<String>,
    pub resource: Vec<String>,
    #[serde(default)]
    pub condition: Option<ConditionSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    pub policy: Vec<String>,
    #[serde(default)]
    pub principal: Option<PrincipalSpec>,
    #[serde(default)]
    pub condition: Option<ConditionSpec>,
}

/// The whole document, to check nothing else sits at the top level.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document<S> {
    #[serde(rename = "apiVersion")]
    _api_version: IgnoredAny,
    #[serde(rename = "kind")]
    _kind: IgnoredAny,
    metadata: ObjectMeta,
    spec: S,
    #[serde(default, rename = "status")]
    _status: Option<IgnoredAny>,
}

/// Parses every IAM object in a YAML source (one file), which may hold many
/// `---`-separated documents. `origin` names the source in errors.
///
/// Empty documents (nothing, or only comments, as a leading or trailing
/// `---` produces) are skipped. Any other document must be an
/// `iam.openfaas.com/v1` JwtIssuer, Policy or Role, or it is an error:
/// nothing is dropped silently. Errors of all documents are collected,
/// except after a YAML syntax error, which ends reading the source.
pub fn parse_documents(origin: &str, yaml: &str) -> Result<Vec<IamObject>, IamErrors> {
    // Pass 1 reads each document as a generic value: it finds syntax
    // errors and duplicate keys (which typed maps would silently collapse),
    // and tells the kind. Pass 2 reads each again, typed, so schema errors
    // carry the decoder's field path and line.
    let mut errors = Vec::new();
    let mut kinds = Vec::new();
    for (i, document) in serde_yaml::Deserializer::from_str(yaml).enumerate() {
        let doc = i + 1;
        let value = match serde_yaml::Value::deserialize(document) {
            Ok(v) => v,
            Err(e) => {
                // The decoder cannot resync: it would repeat this forever.
                let object = ObjectRef {
                    kind: None,
                    name: None,
                    document: Some(doc),
                };
                errors.push(IamError::new(
                    origin,
                    Some(object),
                    None,
                    IamErrorKind::Syntax(e),
                ));
                return Err(IamErrors::new(errors));
            }
        };
        match classify(&value, doc) {
            Ok(kind) => kinds.push(kind),
            Err((object, kind)) => {
                errors.push(IamError::new(origin, Some(object), None, kind));
                kinds.push(None);
            }
        }
    }

    let mut objects = Vec::new();
    for (i, document) in serde_yaml::Deserializer::from_str(yaml).enumerate() {
        let Some(Some((kind, name))) = kinds.get(i) else {
            continue;
        };
        let parsed = match kind {
            ObjectKind::JwtIssuer => typed(document).map(IamObject::JwtIssuer),
            ObjectKind::Policy => typed(document).map(IamObject::Policy),
            ObjectKind::Role => typed(document).map(IamObject::Role),
        };
        match parsed {
            Ok(object) => objects.push(object),
            Err(e) => {
                let object = ObjectRef {
                    kind: Some(kind.as_str().to_owned()),
                    name: name.clone(),
                    document: Some(i + 1),
                };
                errors.push(IamError::new(
                    origin,
                    Some(object),
                    None,
                    IamErrorKind::Schema(e),
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(objects)
    } else {
        Err(IamErrors::new(errors))
    }
}

fn typed<'de, S: Deserialize<'de>>(
    document: serde_yaml::Deserializer<'de>,
) -> Result<Object<S>, serde_yaml::Error> {
    let d = Document::<S>::deserialize(document)?;
    Ok(Object {
        metadata: d.metadata,
        spec: d.spec,
    })
}

type Classified = Option<(ObjectKind, Option<String>)>;

/// The kind and (best-effort) name of a document; None for an empty one.
fn classify(
    value: &serde_yaml::Value,
    doc: usize,
) -> Result<Classified, (ObjectRef, IamErrorKind)> {
    use serde_yaml::Value;
    let map = match value {
        Value::Null => return Ok(None),
        Value::Mapping(map) => map,
        _ => {
            let object = ObjectRef {
                kind: None,
                name: None,
                document: Some(doc),
            };
            return Err((object, IamErrorKind::NotAnObject));
        }
    };
    let text = |key: &str| map.get(key).and_then(Value::as_str);
    let name = map
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let kind_text = text("kind");
    let object = ObjectRef {
        kind: kind_text.map(str::to_owned),
        name: name.clone(),
        document: Some(doc),
    };
    let Some(api_version) = text("apiVersion") else {
        return Err((object, IamErrorKind::MissingField("apiVersion")));
    };
    let Some(kind_text) = kind_text else {
        return Err((object, IamErrorKind::MissingField("kind")));
    };
    if api_version != API_VERSION {
        let found = api_version.to_owned();
        return Err((object, IamErrorKind::UnsupportedApiVersion { found }));
    }
    match ObjectKind::parse(kind_text) {
        Some(kind) => Ok(Some((kind, name))),
        None => {
            let found = kind_text.to_owned();
            Err((object, IamErrorKind::UnknownKind { found }))
        }
    }
}
