//! `POST /reconcile/statements`: a statement uploaded as it was exported, for statements
//! larger than a GraphQL request may be (a day of 10,000 WeChat Pay lines is about 2 MiB; the
//! GraphQL body limit is 1 MiB). The same command as `importStatement`, the same credentials
//! as `/graphql` ([`super::route_viewer`]); the body is the CSV or JSON text itself, up to
//! `INCUBASE_MAX_STATEMENT_BYTES`, in UTF-8 or (CSV) GBK as exported, or in the `charset` its
//! `Content-Type` names:
//!
//!     POST /reconcile/statements?profile=WECHAT_PAY&statementId=1600000001-20261201&dryRun=false
//!
//! The answer holds the totals, the import's ID and the first mismatches; the whole report is
//! the import's `report` in GraphQL (`statementImports`).
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Body, Request, Response, handler};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{error_response, route_request, service_error_response};
use crate::auth::Viewer;
use crate::error::AppError;
use crate::graphql::ids;
use crate::service::statements::{self, ImportRequest, ProfileName};
use crate::state::AppState;

/// Mismatched lines in the answer; the report keeps them all.
const MISMATCHES_SHOWN: usize = 100;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Params {
    profile: Option<String>,
    statement_id: Option<String>,
    dry_run: Option<bool>,
    create_unmatched: Option<bool>,
}

fn profile(raw: Option<&str>) -> Option<ProfileName> {
    [ProfileName::WechatPay, ProfileName::Alipay, ProfileName::BankCsv, ProfileName::Json]
        .into_iter()
        .find(|p| raw.is_some_and(|r| r.eq_ignore_ascii_case(p.as_str())))
}

/// The `charset` parameter of the body's `Content-Type`, if it names one.
fn charset(req: &Request) -> Option<&str> {
    req.content_type()?.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim().eq_ignore_ascii_case("charset").then(|| value.trim().trim_matches('"'))
    })
}

fn failed(error: &AppError) -> Response {
    service_error_response(error)
}

#[handler]
pub(super) async fn upload(req: &Request, body: Body, state: Data<&AppState>) -> Response {
    // Refused before the body is read.
    let (viewer, params): (_, Params) = match route_request(req, &state, Viewer::require_reconcile_donations).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let Some(profile) = profile(params.profile.as_deref()) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "`profile` is WECHAT_PAY, ALIPAY, BANK_CSV or JSON",
            "BAD_USER_INPUT",
        );
    };
    let limit = state.settings.limits.max_statement_bytes;
    let read = tokio::time::timeout(state.settings.limits.body_read_timeout, body.into_bytes_limit(limit)).await;
    let Ok(read) = read else {
        return error_response(StatusCode::REQUEST_TIMEOUT, "the statement took too long to arrive", "REQUEST_TIMEOUT");
    };
    let content = match read {
        Ok(bytes) => match statements::decode(profile, Vec::from(bytes), charset(req)) {
            Ok(text) => text,
            Err(error) => return failed(&error),
        },
        Err(_) => {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("a statement is at most {limit} bytes"),
                "PAYLOAD_TOO_LARGE",
            );
        }
    };
    let request = ImportRequest {
        profile,
        content,
        statement_id: params.statement_id,
        dry_run: params.dry_run.unwrap_or(false),
        create_unmatched: params.create_unmatched.unwrap_or(false),
    };
    match statements::import_statement(state.ctx(), &viewer, request).await {
        Ok(report) => Response::builder()
            .content_type("application/json; charset=utf-8")
            .header("cache-control", "no-store")
            .body(answer(&report).to_string()),
        Err(error) => failed(&error),
    }
}

fn answer(r: &statements::ImportReport) -> Value {
    let gid = |kind: &str, id: Option<i64>| id.map(|id| ids::encode(kind, id).to_string());
    let mismatches: Vec<Value> = r
        .lines
        .iter()
        .filter(|l| l.reason.is_some())
        .take(MISMATCHES_SHOWN)
        .map(|l| {
            json!({
                "line": l.line,
                "lineId": l.line_id,
                "reference": l.reference,
                "amountFen": l.amount_fen,
                "action": l.action,
                "reason": l.reason,
                "donationId": gid(crate::graphql::crowdfunding::DONATION, l.donation_id),
            })
        })
        .collect();
    json!({
        "dryRun": r.dry_run,
        "alreadyImported": r.already_imported,
        "import": r.import.as_ref().map(|i| json!({
            "id": gid(crate::graphql::statements::STATEMENT_IMPORT, Some(i.id)),
            "profile": i.profile,
            "identity": i.identity,
            "createdAt": i.created_at,
            "appliedAt": i.applied_at,
        })),
        "report": {
            "lineCount": r.totals.lines,
            "confirmedCount": r.totals.confirmed,
            "heldCount": r.totals.held,
            "createdCount": r.totals.created,
            "mismatchCount": r.totals.mismatches,
            "confirmedFen": r.totals.confirmed_fen,
            "mismatches": mismatches,
        },
    })
}
