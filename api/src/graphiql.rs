//! GraphiQL served by the binary itself: the page and every file it loads (GraphiQL's and
//! React's production builds, vendored in `api/assets/graphiql/` by `scripts/vendor-graphiql`)
//! come from this server, so it draws offline and where public CDNs are slow or blocked. Its
//! Content-Security-Policy lets the page talk to this origin only. Off in production unless
//! `INCUBASE_GRAPHIQL=true`.
use poem::http::{StatusCode, header};
use poem::web::Path;
use poem::{IntoResponse, Response, handler};

/// The vendored GraphiQL release; part of the asset paths, so browsers may keep the files forever.
pub const GRAPHIQL_VERSION: &str = "4.1.2";

/// Where the page's files are served: `/graphiql/<version>/<file>`.
pub const ASSET_ROUTE: &str = "/graphiql/:version/:file";

const ASSETS: &[(&str, &str, &[u8])] = &[
    ("graphiql.min.js", "text/javascript; charset=utf-8", include_bytes!("../assets/graphiql/graphiql.min.js")),
    ("graphiql.min.css", "text/css; charset=utf-8", include_bytes!("../assets/graphiql/graphiql.min.css")),
    (
        "react.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/react-dom.production.min.js"),
    ),
    ("boot.js", "text/javascript; charset=utf-8", include_bytes!("../assets/graphiql/boot.js")),
];

/// Scripts and styles from this origin only, requests to this origin only (WebSockets
/// included), no frames, no forms. GraphiQL sets inline styles, so styles allow them.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

const DEFAULT_QUERY: &str = "# Welcome to incubase. Ctrl-Enter runs the query; the Docs panel lists the whole API.\n\
# Signed-in calls: put {\"Authorization\": \"Bearer <accessToken>\"} in Headers below.\n\
query Directory {\n  organizations(first: 5) {\n    totalCount\n    edges { node { id name stage } }\n  }\n}\n";

/// The GraphiQL page for `endpoint` (HTTP) and `subscription_endpoint` (WebSocket).
pub fn page(endpoint: &str, subscription_endpoint: &str) -> Response {
    let base = format!("/graphiql/{GRAPHIQL_VERSION}");
    let html = format!(
        r#"<!DOCTYPE html>
<html lang="zh-CN">
  <head>
    <meta charset="utf-8">
    <meta name="robots" content="noindex">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>incubase GraphiQL</title>
    <link rel="icon" href="data:,">
    <link rel="stylesheet" href="{base}/graphiql.min.css">
    <style>html, body {{ height: 100%; margin: 0; overflow: hidden; }} #graphiql {{ height: 100vh; }}</style>
  </head>
  <body>
    <div id="graphiql" data-endpoint="{endpoint}" data-subscription-endpoint="{subscription}" data-default-query="{query}">Loading…</div>
    <script src="{base}/react.production.min.js"></script>
    <script src="{base}/react-dom.production.min.js"></script>
    <script src="{base}/graphiql.min.js"></script>
    <script src="{base}/boot.js"></script>
  </body>
</html>
"#,
        endpoint = attribute(endpoint),
        subscription = attribute(subscription_endpoint),
        query = attribute(DEFAULT_QUERY),
    );
    poem::web::Html(html)
        .with_header(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY)
        .with_header(header::CACHE_CONTROL, "no-cache")
        .with_header("x-content-type-options", "nosniff")
        .into_response()
}

/// Escapes `text` for a double-quoted HTML attribute.
fn attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' => out.push_str("&#10;"),
            c => out.push(c),
        }
    }
    out
}

/// One of the page's files; any other version or name is 404.
#[handler]
pub fn asset(Path((version, file)): Path<(String, String)>) -> Response {
    let found = (version == GRAPHIQL_VERSION).then(|| ASSETS.iter().find(|(name, _, _)| *name == file)).flatten();
    match found {
        Some((_, kind, bytes)) => Response::builder()
            .content_type(*kind)
            .header(header::CACHE_CONTROL, "public, max-age=31536000, immutable")
            .header("x-content-type-options", "nosniff")
            .body(*bytes),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
