//! Small types shared by several domains of the schema.
use async_graphql::{InputObject, SimpleObject};

/// One line of a budget: what, and how much in fen.
#[derive(SimpleObject, InputObject, Clone, Debug)]
#[graphql(input_name = "BudgetLineInput", name = "BudgetLine")]
pub struct BudgetLine {
    pub item: String,
    pub amount_fen: i64,
}
