//! Plain HTTP downloads: the impact report as CSV and the PIPL data export. They take the
//! same credentials and errors as `/graphql` ([`super::route_viewer`]).
use poem::http::{StatusCode, header};
use poem::{Request, Response, handler};
use serde::Deserialize;

use super::{error_response, route_request, route_viewer, service_error_response};
use crate::auth::Viewer;
use crate::error::AppError;
use crate::service::impact;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImpactReportParams {
    from: Option<String>,
    to: Option<String>,
    group_by: Option<String>,
}

/// The impact report as CSV, the same figures as `baseStats` (staff, Bearer token):
/// `GET /reports/impact.csv?from=2026-01-01&to=2026-12-31&groupBy=QUARTER`.
#[handler]
pub(super) async fn impact_csv(req: &Request, state: poem::web::Data<&AppState>) -> Response {
    let (_, params): (_, ImpactReportParams) = match route_request(req, &state, Viewer::require_impact_report).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let date = |name: &str, raw: Option<String>| -> Result<chrono::NaiveDate, String> {
        let raw = raw.ok_or_else(|| format!("`{name}` (YYYY-MM-DD) is required"))?;
        raw.trim().parse().map_err(|_| format!("`{name}` is not a YYYY-MM-DD date"))
    };
    let (from, to) = match (date("from", params.from), date("to", params.to)) {
        (Ok(from), Ok(to)) => (from, to),
        (Err(message), _) | (_, Err(message)) => {
            return error_response(StatusCode::BAD_REQUEST, &message, "BAD_USER_INPUT");
        }
    };
    let group_by = match params.group_by.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None | Some("MONTH") => impact::GroupBy::Month,
        Some("QUARTER") => impact::GroupBy::Quarter,
        Some("YEAR") => impact::GroupBy::Year,
        Some(_) => {
            return error_response(StatusCode::BAD_REQUEST, "`groupBy` is MONTH, QUARTER or YEAR", "BAD_USER_INPUT");
        }
    };
    let dashboard = impact::Dashboard { db: &state.db, cache: &state.cache };
    match dashboard.base_stats(from, to, group_by).await {
        Ok(stats) => Response::builder()
            .content_type("text/csv; charset=utf-8")
            .header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"impact-{from}-{to}.csv\""))
            .body(impact::to_csv(&stats)),
        // Internal failures answer without their detail (the database's text stays in the log).
        Err(error) => service_error_response(&error),
    }
}

/// The signed-in person's data as a JSON download (`Authorization: Bearer <access token>`):
/// profile, memberships, registrations, bookings and donations. Never cached.
#[handler]
pub(super) async fn account_export(req: &Request, state: poem::web::Data<&AppState>) -> Response {
    let viewer = match route_viewer(req, &state).await {
        Ok(viewer) => viewer,
        Err(refused) => return refused,
    };
    match crate::service::account::export(&state.db, &viewer).await {
        Ok(data) => {
            let id = data["profile"]["id"].as_i64().unwrap_or_default();
            Response::builder()
                .content_type("application/json; charset=utf-8")
                .header(header::CACHE_CONTROL, "no-store")
                .header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"incubase-account-{id}.json\""))
                .body(data.to_string())
        }
        Err(error @ (AppError::Unauthenticated | AppError::Forbidden(_))) => service_error_response(&error),
        Err(error) => {
            tracing::error!(?error, "the data export failed");
            service_error_response(&error)
        }
    }
}
