//! The error model: each service error's `extensions` (code, reason, field, typed details
//! with global IDs), internal failures without their text, and request errors coded by the
//! stage of the pipeline that refused them.
use std::collections::BTreeSet;

use api::error::{AppError, BookingConflict, ConflictingBooking, Details, FreeSlot, Rejection, SkippedOccurrence};
use api::graphql::errors::extensions_json;
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::spaces::{CREATE_BOOKING, at, space};

fn keys(value: &Value) -> BTreeSet<&str> {
    value.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default()
}

fn gid(kind: &str, id: i64) -> String {
    api::graphql::ids::encode(kind, id).to_string()
}

#[test]
fn each_code_has_one_shape_with_its_reason_and_field() {
    let cases = [
        (AppError::bad_input("name", "a name is required"), json!({ "code": "BAD_USER_INPUT", "field": "name" })),
        (
            AppError::rule("endsAt", "END_BEFORE_START", "the booking ends before it starts"),
            json!({ "code": "BAD_USER_INPUT", "reason": "END_BEFORE_START", "field": "endsAt" }),
        ),
        (
            AppError::refused("REGISTRATION_CLOSED", "registration has closed"),
            json!({ "code": "BAD_USER_INPUT", "reason": "REGISTRATION_CLOSED" }),
        ),
        (
            AppError::conflict("CLIENT_KEY_REUSED", "reused"),
            json!({ "code": "CONFLICT", "reason": "CLIENT_KEY_REUSED" }),
        ),
        (AppError::Conflict("taken".into()), json!({ "code": "CONFLICT" })),
        (
            AppError::forbidden("ORIGIN_NOT_ALLOWED", "not this origin"),
            json!({ "code": "FORBIDDEN", "reason": "ORIGIN_NOT_ALLOWED" }),
        ),
        (AppError::Forbidden("only staff".into()), json!({ "code": "FORBIDDEN" })),
        (AppError::NotFound("organization".into()), json!({ "code": "NOT_FOUND" })),
        (AppError::Unauthenticated, json!({ "code": "UNAUTHENTICATED" })),
        (AppError::InvalidCredentials, json!({ "code": "UNAUTHENTICATED" })),
        (AppError::RateLimited { retry_after_secs: 7 }, json!({ "code": "RATE_LIMITED", "retryAfter": 7 })),
        (
            AppError::Conflict(
                Rejection::new("cannot confirm").reason("WRONG_STATUS").details(Details::Status("CANCELLED".into())),
            ),
            json!({ "code": "CONFLICT", "reason": "WRONG_STATUS", "status": "CANCELLED" }),
        ),
    ];
    for (error, expected) in cases {
        assert_eq!(extensions_json(&error), expected, "{error:?}");
    }
    assert_eq!(AppError::NotFound("organization".into()).to_string(), "organization not found");
    assert_eq!(
        AppError::rule("endsAt", "END_BEFORE_START", "ends before it starts").to_string(),
        "ends before it starts"
    );
}

#[test]
fn internal_failures_tell_the_client_nothing_of_their_cause() {
    let secret = "relation \"accounts\" does not exist at 10.0.0.7:5432";
    for (error, code, message) in [
        (AppError::Internal(secret.into()), "INTERNAL", "internal error"),
        (AppError::Transient(secret.into()), "SERVICE_UNAVAILABLE", "the database is busy; retry"),
        (AppError::ServiceUnavailable(secret.into()), "SERVICE_UNAVAILABLE", "service temporarily unavailable"),
    ] {
        assert_eq!(error.to_string(), message);
        let extensions = extensions_json(&error);
        assert_eq!(extensions, json!({ "code": code }));
        assert!(!format!("{}{extensions}", error).contains("accounts"), "{error:?}");
        assert_eq!(error.internal_detail(), Some(secret), "the log still gets it");
    }
}

#[test]
fn a_booking_conflict_names_bookings_and_slots_by_global_id() {
    let t = |h: u32, m: u32| Utc.with_ymd_and_hms(2026, 12, 3, h, m, 0).unwrap();
    let conflict = BookingConflict {
        conflicts_with: vec![
            ConflictingBooking {
                booking_id: 7,
                event_id: None,
                starts_at: t(2, 0),
                ends_at: t(4, 0),
                blocked_from: t(1, 30),
                blocked_until: t(4, 15),
            },
            ConflictingBooking {
                booking_id: 8,
                event_id: Some(3),
                starts_at: t(5, 0),
                ends_at: t(6, 0),
                blocked_from: t(5, 0),
                blocked_until: t(6, 0),
            },
        ],
        suggestions: vec![FreeSlot {
            space_id: 2,
            space_name: "培训室 B".into(),
            starts_at: t(4, 45),
            ends_at: t(5, 45),
        }],
        other_spaces: vec![FreeSlot {
            space_id: 5,
            space_name: "会议室 C".into(),
            starts_at: t(4, 0),
            ends_at: t(5, 0),
        }],
    };
    let error =
        AppError::Conflict(Rejection::new("培训室 B is already booked").reason("BOOKING_OVERLAP").details(conflict));
    assert_eq!(
        extensions_json(&error),
        json!({
            "code": "CONFLICT",
            "reason": "BOOKING_OVERLAP",
            "conflictsWith": [
                { "bookingId": gid("Booking", 7), "startsAt": "2026-12-03T02:00:00Z", "endsAt": "2026-12-03T04:00:00Z",
                  "blockedFrom": "2026-12-03T01:30:00Z", "blockedUntil": "2026-12-03T04:15:00Z" },
                { "bookingId": gid("Booking", 8), "eventId": gid("Event", 3),
                  "startsAt": "2026-12-03T05:00:00Z", "endsAt": "2026-12-03T06:00:00Z",
                  "blockedFrom": "2026-12-03T05:00:00Z", "blockedUntil": "2026-12-03T06:00:00Z" },
            ],
            "suggestions": [{ "spaceId": gid("Space", 2), "spaceName": "培训室 B",
                "startsAt": "2026-12-03T04:45:00Z", "endsAt": "2026-12-03T05:45:00Z" }],
            "otherSpaces": [{ "spaceId": gid("Space", 5), "spaceName": "会议室 C",
                "startsAt": "2026-12-03T04:00:00Z", "endsAt": "2026-12-03T05:00:00Z" }],
        })
    );

    let skipped = vec![SkippedOccurrence {
        starts_at: t(2, 0),
        ends_at: t(3, 0),
        reason: "BOOKING_OVERLAP",
        message: "培训室 B is already booked".into(),
    }];
    let error = AppError::Conflict(Rejection::new("no occurrence").reason("OCCURRENCES_UNAVAILABLE").details(skipped));
    assert_eq!(
        extensions_json(&error),
        json!({ "code": "CONFLICT", "reason": "OCCURRENCES_UNAVAILABLE", "skipped": [{
            "startsAt": "2026-12-03T02:00:00Z", "endsAt": "2026-12-03T03:00:00Z",
            "reason": "BOOKING_OVERLAP", "message": "培训室 B is already booked" }] })
    );
}

/// The schema alone (no database): each refusal's code comes from where it happened.
#[tokio::test]
async fn request_errors_are_coded_by_the_stage_that_refused_them() {
    let limits = api::config::Limits { max_depth: 3, max_complexity: 20, ..Default::default() };
    let schema = api::graphql::build_schema(None, &limits, &api::config::Environment::Development);
    let wide: String = (0..30).map(|i| format!("a{i}: organizations {{ totalCount }} ")).collect();
    let nested = format!("{}{}", "{ a ".repeat(40), "}".repeat(40));
    let directives = format!("{{ __typename {} }}", "@include(if: true) ".repeat(50));
    let cases = [
        ("{ organizations { ".to_owned(), "GRAPHQL_PARSE_FAILED", None),
        ("{ noSuchField }".to_owned(), "GRAPHQL_VALIDATION_FAILED", None),
        // Parsed, then refused by the parse stage's recursion and directive checks.
        (nested, "GRAPHQL_VALIDATION_FAILED", None),
        (directives, "GRAPHQL_VALIDATION_FAILED", None),
        (
            "{ organizations(first: 1) { edges { node { stageHistory { note } } } } }".to_owned(),
            "QUERY_TOO_DEEP",
            Some("Query is nested too deep."),
        ),
        (format!("{{ {wide} }}"), "QUERY_TOO_COMPLEX", Some("Query is too complex.")),
    ];
    for (query, code, message) in cases {
        let body = serde_json::to_value(schema.execute(query.as_str()).await).unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], code, "{query}: {body}");
        if let Some(message) = message {
            assert_eq!(body["errors"][0]["message"], message, "the message async-graphql's own limit gave");
        }
    }
}

backend_tests! {
    async fn refusals_over_http_carry_typed_details_and_nothing_more(app) {
        let room = space(&app, "培训室 E", 20, json!({ "setupMinutes": 30 })).await;
        let input = |start: &str, end: &str| json!({ "spaceId": room["id"], "startsAt": start, "endsAt": end,
            "attendees": 10, "purpose": "项目管理培训" });
        let first = app.ok(CREATE_BOOKING, json!({ "input": input(&at(2, 10, 0), &at(2, 12, 0)) })).await;
        let first = &first["createBooking"]["booking"];

        let body = app.gql(CREATE_BOOKING, json!({ "input": input(&at(2, 11, 0), &at(2, 13, 0)) })).await;
        let ext = &body["errors"][0]["extensions"];
        assert_eq!(
            keys(ext),
            BTreeSet::from(["code", "reason", "conflictsWith", "suggestions", "otherSpaces"]),
            "{body}"
        );
        assert_eq!((ext["code"].as_str(), ext["reason"].as_str()), (Some("CONFLICT"), Some("BOOKING_OVERLAP")));
        let clash = &ext["conflictsWith"][0];
        assert_eq!(
            keys(clash),
            BTreeSet::from(["bookingId", "startsAt", "endsAt", "blockedFrom", "blockedUntil"]),
            "a booking without an event has no eventId, and no row id leaks: {body}"
        );
        assert_eq!(clash["bookingId"], first["id"]);
        let instant = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
        assert_eq!(instant(&clash["blockedFrom"]), instant(&first["blockedFrom"]), "the setup buffer: {body}");
        let suggestion = &ext["suggestions"][0];
        assert_eq!(keys(suggestion), BTreeSet::from(["spaceId", "spaceName", "startsAt", "endsAt"]), "{body}");
        assert_eq!(suggestion["spaceId"], room["id"]);

        // A broken rule names its field; nothing was written by either refusal.
        let body = app.gql(CREATE_BOOKING, json!({ "input": input(&at(2, 15, 0), &at(2, 14, 0)) })).await;
        assert_eq!(
            body["errors"][0]["extensions"],
            json!({ "code": "BAD_USER_INPUT", "reason": "END_BEFORE_START", "field": "endsAt" }),
            "{body}"
        );
        let mine = app.ok("{ myBookings { totalCount } }", json!({})).await;
        assert_eq!(mine["myBookings"]["totalCount"], 1);
    }
}
