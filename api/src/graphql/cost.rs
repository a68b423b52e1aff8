//! Checks on a parsed document that async-graphql's own limits do not make: fields per
//! operation with fragments expanded (`__typename` counted, which complexity does not) and
//! aliases per request.
use std::collections::HashMap;

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, Selection, SelectionSet};

use crate::config::Limits;

/// Brackets nested deeper than this are refused before parsing: deep nesting is the cheap
/// way to make a recursive parser use a lot of stack.
pub const MAX_NESTING: usize = 64;

/// A document over a limit: a message and a stable code.
pub struct OverLimit {
    pub message: String,
    pub code: &'static str,
}

pub fn check(doc: &ExecutableDocument, limits: &Limits) -> Result<(), OverLimit> {
    let mut aliases = 0usize;
    for fragment in doc.fragments.values() {
        aliases += count_aliases(&fragment.node.selection_set.node);
    }
    let operations: Vec<&SelectionSet> = match &doc.operations {
        DocumentOperations::Single(op) => vec![&op.node.selection_set.node],
        DocumentOperations::Multiple(ops) => ops.values().map(|op| &op.node.selection_set.node).collect(),
    };
    for set in &operations {
        aliases += count_aliases(set);
    }
    if aliases > limits.max_aliases {
        return Err(OverLimit {
            message: format!("the request uses {aliases} aliases; at most {} are allowed", limits.max_aliases),
            code: "TOO_MANY_ALIASES",
        });
    }
    let mut memo = HashMap::new();
    for set in operations {
        let fields = count_fields(doc, set, &mut memo, 0, limits.max_fields);
        if fields > limits.max_fields {
            return Err(OverLimit {
                message: format!("the operation selects more than {} fields", limits.max_fields),
                code: "TOO_MANY_FIELDS",
            });
        }
    }
    Ok(())
}

fn count_aliases(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(f) => usize::from(f.node.alias.is_some()) + count_aliases(&f.node.selection_set.node),
            Selection::InlineFragment(f) => count_aliases(&f.node.selection_set.node),
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}

/// Fields selected with fragment spreads expanded; stops counting once over `cap`. Fragment
/// cycles count as nothing here: validation rejects them.
fn count_fields<'a>(
    doc: &'a ExecutableDocument,
    set: &'a SelectionSet,
    memo: &mut HashMap<&'a str, usize>,
    depth: usize,
    cap: usize,
) -> usize {
    if depth > 64 {
        return cap + 1;
    }
    let mut total = 0usize;
    for item in &set.items {
        total = total.saturating_add(match &item.node {
            Selection::Field(f) => 1 + count_fields(doc, &f.node.selection_set.node, memo, depth + 1, cap),
            Selection::InlineFragment(f) => count_fields(doc, &f.node.selection_set.node, memo, depth + 1, cap),
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                if let Some(known) = memo.get(name) {
                    *known
                } else if let Some(fragment) = doc.fragments.get(&spread.node.fragment_name.node) {
                    memo.insert(name, 0); // a cycle reads 0 while this fragment is counted
                    let n = count_fields(doc, &fragment.node.selection_set.node, memo, depth + 1, cap);
                    memo.insert(name, n);
                    n
                } else {
                    0
                }
            }
        });
        if total > cap {
            return total;
        }
    }
    total
}

/// Deepest nesting of `{ [ (` outside strings and comments.
pub fn nesting_depth(query: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut chars = query.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '"' => {
                let mut escaped = false;
                for c in chars.by_ref() {
                    match (escaped, c) {
                        (false, '\\') => escaped = true,
                        (false, '"') => break,
                        _ => escaped = false,
                    }
                }
            }
            '{' | '[' | '(' => {
                depth += 1;
                max = max.max(depth);
            }
            '}' | ']' | ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}
