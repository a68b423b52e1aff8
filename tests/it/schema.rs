//! schema.graphql is what `incubase export-schema` prints.
#[test]
fn schema_graphql_is_up_to_date() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.graphql");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let current = api::graphql::sdl();
    if committed != current {
        let diff: Vec<String> = diff_lines(&committed, &current);
        panic!(
            "schema.graphql is out of date. Regenerate it with\n\n    cargo run -- export-schema --output schema.graphql\n\n{}",
            diff.join("\n")
        );
    }
}

/// Lines only in one of the two texts, marked - (committed) and + (current).
fn diff_lines(old: &str, new: &str) -> Vec<String> {
    let old_set: std::collections::HashSet<&str> = old.lines().collect();
    let new_set: std::collections::HashSet<&str> = new.lines().collect();
    let mut out: Vec<String> = old.lines().filter(|l| !new_set.contains(l)).map(|l| format!("- {l}")).collect();
    out.extend(new.lines().filter(|l| !old_set.contains(l)).map(|l| format!("+ {l}")));
    out
}
