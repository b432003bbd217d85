//! Query parameters as typed structs. Each route's parameters derive `Deserialize` (what it
//! accepts) and `IntoParams` (what the OpenAPI document says it accepts), so the two cannot
//! drift apart. [`Filters`] reads them strictly: an unknown, repeated or bad parameter is a
//! 400 naming it, since a misspelt filter must not silently return everything.

use std::fmt;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use serde::de::{self, DeserializeOwned};
use serde::{Deserialize, Deserializer};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{KnownFormat, RefOr};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use crate::error::AppError;
use crate::store::query::Order;

/// Default and largest page sizes.
pub const DEFAULT_LIMIT: i64 = 50;
/// The largest `limit`.
pub const MAX_LIMIT: i64 = 500;

/// Message types a `type` filter may name.
pub const MESSAGE_TYPES: &[&str] = &[
    "TEXT", "IMAGE", "FILE", "VOICE", "LOCATION", "VIDEO", "CONTACT",
];

/// A route's query parameters, read into `T`.
#[derive(Debug)]
pub struct Filters<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + IntoParams> FromRequestParts<S> for Filters<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        let query = parts.uri.query().unwrap_or_default();
        read(query.as_bytes(), names::<T>).map(Filters)
    }
}

/// A list's query parameters: its own filters `T`, the time [`Window`] of the lists that
/// have one (`W`; [`NoParams`] for the others), and the [`Paging`] of every list. Each
/// parameter goes to the part that names it; one no part names is refused like an unknown
/// one of [`Filters`].
#[derive(Debug)]
pub struct Listing<T, W = NoParams>(pub T, pub W, pub Paging);

/// A part of the parameters that lists share, with the names it takes: a query is split by
/// these on every request, so they are constants rather than read from `IntoParams` (which
/// builds each parameter's whole description).
pub trait Shared: DeserializeOwned + IntoParams {
    /// The names of its parameters.
    const NAMES: &'static [&'static str];
}

impl<St, T, W> FromRequestParts<St> for Listing<T, W>
where
    St: Send + Sync,
    T: DeserializeOwned + IntoParams,
    W: Shared,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, AppError> {
        let query = parts.uri.query().unwrap_or_default();
        let mut split: [_; 3] =
            std::array::from_fn(|_| form_urlencoded::Serializer::new(String::new()));
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let part = if W::NAMES.contains(&&*name) {
                1
            } else if Paging::NAMES.contains(&&*name) {
                2
            } else {
                0
            };
            split[part].append_pair(&name, &value);
        }
        let known = || [names::<T>(), names::<W>(), names::<Paging>()].concat();
        let [own, window, paging] = split.map(|mut part| part.finish());
        Ok(Listing(
            read(own.as_bytes(), known)?,
            read(window.as_bytes(), known)?,
            read(paging.as_bytes(), known)?,
        ))
    }
}

fn names<T: IntoParams>() -> Vec<String> {
    T::into_params(|| None)
        .into_iter()
        .map(|p| p.name)
        .collect()
}

/// Reads `T` from a query string; `known` names the parameters the route takes.
fn read<T: DeserializeOwned>(query: &[u8], known: impl Fn() -> Vec<String>) -> Result<T, AppError> {
    let pairs = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query));
    serde_path_to_error::deserialize(pairs)
        .map_err(|e| refused(e.path().to_string(), e.into_inner().to_string(), known))
}

/// The error for a parameter the route did not take. serde names an unknown or repeated
/// field in back-quotes; the value types' own messages say what a good value is.
fn refused(path: String, inner: String, known: impl Fn() -> Vec<String>) -> AppError {
    let quoted = |prefix: &str| {
        inner
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    let (name, message) = if let Some(name) = quoted("unknown field `") {
        let known = known();
        let known = if known.is_empty() {
            "this route takes no parameters".to_owned()
        } else {
            format!("known: {}", known.join(", "))
        };
        let message = format!("unknown parameter ({known})");
        (name, message)
    } else if let Some(name) = quoted("duplicate field `") {
        (name, "given more than once".to_owned())
    } else {
        (path, inner)
    };
    AppError::InvalidParameter {
        message: format!("{name}: {message}"),
        name,
    }
}

/// Reads a parameter's text and checks it with `parse`, whose error says what is wrong.
fn parsed<'de, D: Deserializer<'de>, T>(
    d: D,
    parse: impl FnOnce(String) -> Result<T, String>,
) -> Result<T, D::Error> {
    let text = String::deserialize(d)?;
    if text.is_empty() {
        return Err(de::Error::custom("must not be empty"));
    }
    parse(text).map_err(de::Error::custom)
}

/// Implements `Deserialize` through [`parsed`] and the schema from `$schema`.
macro_rules! value {
    ($name:ident, $parse:expr, $schema:expr) => {
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                parsed(d, $parse)
            }
        }

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                let schema: ObjectBuilder = $schema;
                schema.into()
            }
        }

        impl ToSchema for $name {}
    };
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn one_of(values: &[&str]) -> ObjectBuilder {
    string().enum_values(Some(values.iter().copied()))
}

/// Non-empty text.
#[derive(Debug, Clone)]
pub struct Text(pub String);
value!(Text, |v| Ok(Text(v)), string().min_length(Some(1)));

impl Text {
    /// The text, if given.
    pub fn of(t: Option<Text>) -> Option<String> {
        t.map(|t| t.0)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An RFC 3339 time.
#[derive(Debug, Clone, Copy)]
pub struct At(pub DateTime<Utc>);
value!(
    At,
    |v| DateTime::parse_from_rfc3339(&v)
        .map(|t| At(t.with_timezone(&Utc)))
        .map_err(|_| format!("{v:?} is not an RFC 3339 time")),
    string().format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
);

impl At {
    /// The time, if given.
    pub fn of(t: Option<At>) -> Option<DateTime<Utc>> {
        t.map(|t| t.0)
    }
}

/// A page size: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when not given.
#[derive(Debug, Clone, Copy)]
pub struct Limit(pub i64);
value!(
    Limit,
    |v| match v.parse::<i64>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(Limit(n)),
        _ => Err(format!("must be a whole number from 1 to {MAX_LIMIT}")),
    },
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(1))
        .maximum(Some(MAX_LIMIT))
        .default(Some(DEFAULT_LIMIT.into()))
);

impl Limit {
    /// The page size asked for, or the default.
    pub fn of(l: Option<Limit>) -> i64 {
        l.map_or(DEFAULT_LIMIT, |l| l.0)
    }
}

/// `v` upper-cased when `good` takes it; otherwise what `bad` says of it.
fn upper(
    v: String,
    good: impl Fn(&str) -> bool,
    bad: impl Fn(&str) -> String,
) -> Result<String, String> {
    let up = v.to_ascii_uppercase();
    if good(&up) { Ok(up) } else { Err(bad(&v)) }
}

/// A message type, upper-cased; one of [`MESSAGE_TYPES`].
#[derive(Debug, Clone)]
pub struct MessageType(pub String);
value!(
    MessageType,
    |v| upper(
        v,
        |up| MESSAGE_TYPES.contains(&up),
        |v| {
            format!(
                "unknown message type {v:?}; one of {}",
                MESSAGE_TYPES.join(", ")
            )
        }
    )
    .map(MessageType),
    one_of(MESSAGE_TYPES)
);

/// An event type: an upper-case identifier such as `POST_UPDATE`, upper-cased.
#[derive(Debug, Clone)]
pub struct EventType(pub String);
value!(
    EventType,
    |v| upper(
        v,
        |up| {
            up.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && up
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        },
        |v| format!("{v:?} is not an event type")
    )
    .map(EventType),
    string().pattern(Some("^[A-Za-z][A-Za-z0-9_]*$"))
);

/// `SELLER` or `BUYER` (also `supply`/`demand`, any case), as stored.
#[derive(Debug, Clone)]
pub struct SenderSide(pub String);
value!(
    SenderSide,
    |v| match v.to_ascii_lowercase().as_str() {
        "seller" | "supply" => Ok(SenderSide("SELLER".to_owned())),
        "buyer" | "demand" => Ok(SenderSide("BUYER".to_owned())),
        _ => Err(format!("{v:?} is not SELLER or BUYER")),
    },
    one_of(&["SELLER", "BUYER"])
);

/// `asc` (default) or `desc`.
#[derive(Debug, Clone, Copy)]
pub struct SortOrder(pub Order);
value!(
    SortOrder,
    |v| match v.as_str() {
        "asc" => Ok(SortOrder(Order::Asc)),
        "desc" => Ok(SortOrder(Order::Desc)),
        _ => Err(format!("{v:?} is not asc or desc")),
    },
    one_of(&["asc", "desc"]).default(Some("asc".into()))
);

impl SortOrder {
    /// The order asked for, or oldest first.
    pub fn of(o: Option<SortOrder>) -> Order {
        o.map_or(Order::Asc, |o| o.0)
    }
}

/// The paging parameters every list takes.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// 1–500, default 50
    #[param(inline)]
    pub limit: Option<Limit>,
    /// next_cursor of the previous page
    #[param(inline)]
    pub cursor: Option<Text>,
}

impl Paging {
    /// The page size asked for, or the default.
    pub fn limit(&self) -> i64 {
        Limit::of(self.limit)
    }
}

/// The time span and order of the two logs and the message lists.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Window {
    /// At or after (RFC 3339): received, for the logs; sent, for messages
    #[param(inline)]
    pub since: Option<At>,
    /// Before (RFC 3339)
    #[param(inline)]
    pub until: Option<At>,
    /// asc (default: oldest first) or desc (newest first)
    #[param(inline)]
    pub order: Option<SortOrder>,
}

impl Shared for Window {
    const NAMES: &'static [&'static str] = &["since", "until", "order"];
}

impl Shared for Paging {
    const NAMES: &'static [&'static str] = &["limit", "cursor"];
}

impl Shared for NoParams {
    const NAMES: &'static [&'static str] = &[];
}

impl Window {
    /// The span's times and its order.
    pub fn split(self) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>, Order) {
        (
            At::of(self.since),
            At::of(self.until),
            SortOrder::of(self.order),
        )
    }
}

/// A comma-separated list of names, checked by the route.
#[derive(Debug, Clone, Default)]
pub struct Names(pub Vec<String>);
value!(
    Names,
    |v| Ok(Names(v.split(',').map(|p| p.trim().to_owned()).collect())),
    string().min_length(Some(1))
);

impl Names {
    /// The names, each one of `allowed`.
    pub fn only(
        names: Option<Names>,
        parameter: &str,
        allowed: &[&str],
    ) -> Result<Vec<String>, AppError> {
        let names = names.unwrap_or_default().0;
        for name in &names {
            choice(parameter, Some(name), allowed)?;
        }
        Ok(names)
    }
}

/// 400 naming the choices unless `value` of `parameter`, where given, is one of `allowed`.
pub fn choice(parameter: &str, value: Option<&str>, allowed: &[&str]) -> Result<(), AppError> {
    match value.filter(|v| !allowed.contains(v)) {
        None => Ok(()),
        Some(bad) => Err(AppError::InvalidParameter {
            name: parameter.to_owned(),
            message: format!("{parameter}: {bad:?} is not one of {}", allowed.join(", ")),
        }),
    }
}

/// The one of `all` whose name is `value`, where given; else 400 naming the choices.
pub fn chosen<T: Copy>(
    parameter: &str,
    value: Option<&str>,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<Option<T>, AppError> {
    let names: Vec<&str> = all.iter().map(|t| name(*t)).collect();
    choice(parameter, value, &names)?;
    Ok(value.and_then(|v| all.iter().copied().find(|t| name(*t) == v)))
}

/// The parameters of a route that takes none.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NoParams {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, IntoParams)]
    #[serde(deny_unknown_fields)]
    #[into_params(parameter_in = Query)]
    struct Sample {
        #[param(inline)]
        limit: Option<Limit>,
        #[param(inline)]
        since: Option<At>,
    }

    fn said(e: AppError) -> String {
        match e {
            AppError::InvalidParameter { name, message } => format!("{name}|{message}"),
            other => format!("{other:?}"),
        }
    }

    fn sample(query: &str) -> Result<Sample, String> {
        read(query.as_bytes(), names::<Sample>).map_err(said)
    }

    #[test]
    fn values_are_typed_and_errors_name_the_parameter() {
        let s = sample("limit=7&since=2025-03-09T08:14:27Z").unwrap();
        assert_eq!(s.limit.unwrap().0, 7);
        assert_eq!(s.since.unwrap().0.timestamp(), 1_741_508_067);
        for (query, error) in [
            (
                "limit=0",
                "limit|limit: must be a whole number from 1 to 500",
            ),
            ("since=", "since|since: must not be empty"),
            (
                "limt=5",
                "limt|limt: unknown parameter (known: limit, since)",
            ),
            ("limit=5&limit=6", "limit|limit: given more than once"),
        ] {
            assert_eq!(sample(query).unwrap_err(), error, "{query}");
        }
    }

    /// A list's own filters, beside its paging.
    #[derive(Debug, Deserialize, IntoParams)]
    #[serde(deny_unknown_fields)]
    #[into_params(parameter_in = Query)]
    struct Own {
        #[param(inline)]
        since: Option<At>,
    }

    async fn listing(query: &str) -> Result<Listing<Own>, String> {
        let request = axum::http::Request::get(format!("/list?{query}"))
            .body(())
            .unwrap();
        let (mut parts, ()) = request.into_parts();
        Listing::from_request_parts(&mut parts, &())
            .await
            .map_err(said)
    }

    #[test]
    fn the_shared_parts_name_what_they_take() {
        fn agree<S: Shared>() {
            assert_eq!(S::NAMES, names::<S>(), "{}", std::any::type_name::<S>());
        }
        agree::<Window>();
        agree::<Paging>();
        agree::<NoParams>();
    }

    #[tokio::test]
    async fn a_listing_gives_each_parameter_to_the_part_that_names_it() {
        let Listing(own, NoParams {}, paging) =
            listing("limit=7&since=2025-03-09T08:14:27Z&cursor=x%20y")
                .await
                .unwrap();
        assert_eq!(own.since.unwrap().0.timestamp(), 1_741_508_067);
        assert_eq!(paging.limit(), 7);
        let Listing(own, NoParams {}, paging) = listing("").await.unwrap();
        assert!(own.since.is_none());
        assert_eq!(paging.limit(), DEFAULT_LIMIT);
        for (query, error) in [
            (
                "limt=5",
                "limt|limt: unknown parameter (known: since, limit, cursor)",
            ),
            ("limit=5&limit=6", "limit|limit: given more than once"),
            (
                "since=2025&limit=5",
                "since|since: \"2025\" is not an RFC 3339 time",
            ),
            (
                "limit=0",
                "limit|limit: must be a whole number from 1 to 500",
            ),
        ] {
            assert_eq!(listing(query).await.unwrap_err(), error, "{query}");
        }
    }
}
