//! Small types shared by several domains of the schema.
use async_graphql::{InputObject, InputValueError, InputValueResult, Scalar, ScalarType, SimpleObject, Value};

/// The largest magnitude a 64-bit scalar accepts: 2^53 − 1, so that JavaScript clients, which
/// read JSON numbers as doubles, see every value exactly (90 trillion yuan is far beyond any
/// sum the base keeps).
const MAX_SAFE: i64 = (1 << 53) - 1;

/// Reads a 64-bit integer sent as a JSON number or as a string of decimal digits (what some
/// Java and Swift clients send for 64-bit types).
fn parse_i64(value: Value, what: &str) -> Result<i64, String> {
    let n = match &value {
        Value::Number(n) => n.as_i64().ok_or_else(|| format!("{what} must be a whole number"))?,
        Value::String(s) => s.trim().parse::<i64>().map_err(|_| format!("{what} must be a whole number"))?,
        _ => return Err(format!("{what} must be a whole number")),
    };
    if !(-MAX_SAFE..=MAX_SAFE).contains(&n) {
        return Err(format!("{what} must lie within ±(2^53 − 1)"));
    }
    Ok(n)
}

/// A 64-bit integer scalar: the newtype, its `ScalarType` (input through `parse_i64`, output
/// a JSON number) and the conversions from and to `i64`. The doc comments given go on the
/// impl, where clients read them as the scalar's description; `$what` names a value in errors.
macro_rules! int64_scalar {
    ($(#[doc = $struct_doc:literal])* $name:ident, $what:literal, $(#[doc = $scalar_doc:literal])*) => {
        $(#[doc = $struct_doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
        pub struct $name(pub i64);

        $(#[doc = $scalar_doc])*
        #[Scalar]
        impl ScalarType for $name {
            fn parse(value: Value) -> InputValueResult<Self> {
                parse_i64(value, $what).map($name).map_err(InputValueError::custom)
            }

            fn is_valid(value: &Value) -> bool {
                matches!(value, Value::Number(n) if n.is_i64()) || matches!(value, Value::String(_))
            }

            fn to_value(&self) -> Value {
                Value::Number(self.0.into())
            }
        }

        impl From<i64> for $name {
            fn from(n: i64) -> Self {
                $name(n)
            }
        }

        impl From<$name> for i64 {
            fn from(n: $name) -> Self {
                n.0
            }
        }
    };
}

int64_scalar!(
    /// Money in fen; the scalar's description (on the impl) is what clients read.
    Fen,
    "an amount in fen",
    /// An amount of money in fen (1 yuan = 100 fen), CNY: a signed 64-bit integer, sent as a JSON
    /// number. GraphQL's `Int` is 32-bit (at most 21,474,836.47 yuan), so every amount, argument
    /// and sum of money in this API is `Fen`. Input is a JSON number or a string of digits, within
    /// ±(2^53 − 1) so JavaScript reads it exactly; code generators map it to a 64-bit integer
    /// (Kotlin/Java `Long`, Swift `Int64`, TypeScript `number`). Reports in CSV carry the same
    /// values as plain numbers.
);

int64_scalar!(
    /// A 64-bit count of person-times; the scalar's description (on the impl) is what clients read.
    Count,
    "a count",
    /// A count that sums people over many records — person-times served — and so can pass
    /// GraphQL's 32-bit `Int`: a signed 64-bit integer, sent as a JSON number (input: a JSON
    /// number or a string of digits, within ±(2^53 − 1)). Counts of rows (`totalCount`, seats,
    /// donations) stay `Int`.
);

/// `From` between a schema type and the service's type with the same fields, each converted
/// with `Into` (those after `;` are lists, converted item by item): `A => B` one way, `A, B`
/// both ways.
macro_rules! convert_fields {
    ($from:ty => $to:ty { $($field:ident),* $(; $($list:ident),*)? }) => {
        // Fields of the same type on both sides convert to themselves.
        #[allow(clippy::useless_conversion)]
        impl From<$from> for $to {
            fn from(x: $from) -> Self {
                Self { $($field: x.$field.into(),)* $($($list: x.$list.into_iter().map(Into::into).collect(),)*)? }
            }
        }
    };
    ($a:ty, $b:ty { $($field:ident),* $(; $($list:ident),*)? }) => {
        convert_fields!($a => $b { $($field),* $(; $($list),*)? });
        convert_fields!($b => $a { $($field),* $(; $($list),*)? });
    };
}
pub(crate) use convert_fields;

/// Declares a mutation's payload of one field: `payload!(EventPayload { event: Event })` is
/// `#[derive(SimpleObject)] pub struct EventPayload { pub event: Event }`.
macro_rules! payload {
    ($name:ident { $field:ident: $ty:ty }) => {
        #[derive(async_graphql::SimpleObject)]
        pub struct $name {
            pub $field: $ty,
        }
    };
}
pub(crate) use payload;

/// One line of a budget: what, and how much in fen.
#[derive(SimpleObject, InputObject, Clone, Debug)]
#[graphql(input_name = "BudgetLineInput", name = "BudgetLine")]
pub struct BudgetLine {
    pub item: String,
    pub amount_fen: Fen,
}
