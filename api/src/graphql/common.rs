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

/// Money in fen; the scalar's description (on the impl) is what clients read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Fen(pub i64);

/// An amount of money in fen (1 yuan = 100 fen), CNY: a signed 64-bit integer, sent as a JSON
/// number. GraphQL's `Int` is 32-bit (at most 21,474,836.47 yuan), so every amount, argument
/// and sum of money in this API is `Fen`. Input is a JSON number or a string of digits, within
/// ±(2^53 − 1) so JavaScript reads it exactly; code generators map it to a 64-bit integer
/// (Kotlin/Java `Long`, Swift `Int64`, TypeScript `number`). Reports in CSV carry the same
/// values as plain numbers.
#[Scalar(name = "Fen")]
impl ScalarType for Fen {
    fn parse(value: Value) -> InputValueResult<Self> {
        parse_i64(value, "an amount in fen").map(Fen).map_err(InputValueError::custom)
    }

    fn is_valid(value: &Value) -> bool {
        matches!(value, Value::Number(n) if n.is_i64()) || matches!(value, Value::String(_))
    }

    fn to_value(&self) -> Value {
        Value::Number(self.0.into())
    }
}

impl From<i64> for Fen {
    fn from(fen: i64) -> Self {
        Fen(fen)
    }
}

impl From<Fen> for i64 {
    fn from(fen: Fen) -> Self {
        fen.0
    }
}

/// A 64-bit count of person-times; the scalar's description (on the impl) is what clients read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Count(pub i64);

/// A count that sums people over many records — person-times served — and so can pass
/// GraphQL's 32-bit `Int`: a signed 64-bit integer, sent as a JSON number (input: a JSON
/// number or a string of digits, within ±(2^53 − 1)). Counts of rows (`totalCount`, seats,
/// donations) stay `Int`.
#[Scalar(name = "Count")]
impl ScalarType for Count {
    fn parse(value: Value) -> InputValueResult<Self> {
        parse_i64(value, "a count").map(Count).map_err(InputValueError::custom)
    }

    fn is_valid(value: &Value) -> bool {
        matches!(value, Value::Number(n) if n.is_i64()) || matches!(value, Value::String(_))
    }

    fn to_value(&self) -> Value {
        Value::Number(self.0.into())
    }
}

impl From<i64> for Count {
    fn from(n: i64) -> Self {
        Count(n)
    }
}

impl From<Count> for i64 {
    fn from(n: Count) -> Self {
        n.0
    }
}

/// One line of a budget: what, and how much in fen.
#[derive(SimpleObject, InputObject, Clone, Debug)]
#[graphql(input_name = "BudgetLineInput", name = "BudgetLine")]
pub struct BudgetLine {
    pub item: String,
    pub amount_fen: Fen,
}
