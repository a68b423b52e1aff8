//! Partner webhooks (the Standard Webhooks specification): the endpoints admins register, the
//! commands on them, what an endpoint may receive, and how a delivery is signed.
//!
//! Delivery itself (fanning events out of the log, claiming due deliveries, sending them) is
//! the background consumer in `crate::webhooks`.
use std::net::{IpAddr, SocketAddr};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Duration, Utc};
use entity::{api_key, domain_event, webhook_attempt, webhook_delivery, webhook_endpoint};
use hmac::{Hmac, Mac};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, Set, Statement, TransactionTrait,
};
use serde_json::{Value, json};

use super::common::found;
use super::pagination::{self, Page, PageRequest, SortDirection, SortKey};
use super::{Ctx, as_viewer};
use crate::auth::Viewer;
use crate::error::{AppError, AppResult};
use crate::events::{Actor, Aggregate, EventKind, NewEvent};
use crate::sealing::Sealing;

mod signing;
use signing::seal_secret;
pub use signing::{new_secret, reseal_stored_secrets, sign, signatures};

/// Endpoints in all.
pub const MAX_ENDPOINTS: u64 = 100;
/// Event types one endpoint subscribes to.
pub const MAX_EVENT_TYPES: usize = 100;
/// How long a rotated-out secret keeps signing by default.
pub const DEFAULT_GRACE_HOURS: i64 = 24;
/// The longest grace period of a rotation.
pub const MAX_GRACE_HOURS: i64 = 7 * 24;
/// Events one replay may queue.
pub const MAX_REPLAY: u64 = 10_000;

/// The statuses of a delivery.
pub const PENDING: &str = "PENDING";
pub const SUCCEEDED: &str = "SUCCEEDED";
pub const FAILED: &str = "FAILED";

/// Whether webhooks deliver events of `kind` at all: never their own endpoints' events (a
/// receiver would hear about itself), nor sign-ins and token refreshes (noise about people).
pub fn deliverable(kind: EventKind) -> bool {
    !matches!(kind.aggregate(), Aggregate::WebhookEndpoint | Aggregate::ApiKey | Aggregate::TrustedDocument)
        && !matches!(
            kind,
            EventKind::AccountSignedIn
                | EventKind::SessionRefreshed
                | EventKind::AccountSignedOut
                // Requests for mails are the person's business, not a partner's.
                | EventKind::AccountPasswordResetRequested
                | EventKind::AccountEmailVerificationRequested
                | EventKind::AccountEmailChangeRequested
        )
}

/// Whether an endpoint that belongs to a partner key may receive `kind`: changes to what
/// anyone may read (the directory, published events, campaigns and their totals, spaces,
/// results of grant rounds, funded projects). Everything else goes only to the federation's
/// own endpoints (no partner key).
pub fn partner_visible(kind: EventKind) -> bool {
    use EventKind::*;
    matches!(
        kind,
        OrganizationCreated
            | OrganizationUpdated
            | OrganizationStageChanged
            | SpaceCreated
            | SpaceUpdated
            | EventPublished
            | EventUpdated
            | EventCancelled
            | EventCompleted
            | CampaignApproved
            | CampaignUpdated
            | CampaignEnded
            | CampaignCancelled
            | CampaignUpdatePosted
            | DonationConfirmed
            | DonationRefunded
            | GrantRoundCreated
            | GrantRoundUpdated
            | GrantProposalAwarded
            | ServiceProjectCreated
            | DisbursementRecorded
            | GoalProgressRecorded
            | ServiceRecordAdded
    )
}

/// Whether `endpoint` receives `event` now: it is enabled, subscribed to the type, allowed to
/// see it, and the event happened after the endpoint was registered.
pub fn receives(endpoint: &webhook_endpoint::Model, types: &[String], event: &domain_event::Model) -> bool {
    let Some(kind) = EventKind::parse(&event.event_type) else { return false };
    endpoint.enabled
        && deliverable(kind)
        && (endpoint.api_key_id.is_none() || partner_visible(kind))
        && types.iter().any(|t| t == kind.name())
        && event.occurred_at >= endpoint.created_at
}

pub use super::endpoints::event_types_of;

/// The `webhook-id` of an event's deliveries: the same for every attempt and redelivery, so
/// receivers deduplicate by it.
pub fn message_id(event_id: i64) -> String {
    format!("msg_{event_id}")
}

fn global_id(type_name: &str, id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{type_name}:{id}"))
}

/// The JSON body of an event's delivery: its type, when it happened, and what it is about as
/// global IDs (the receiver reads the rest through the API with its own key, so a body never
/// holds more than that key could read).
pub fn body(event: &domain_event::Model) -> Value {
    let mut data = serde_json::Map::new();
    data.insert("object".into(), json!(event.aggregate_type));
    data.insert("id".into(), json!(global_id(&event.aggregate_type, event.aggregate_id)));
    for (key, type_name) in [
        ("campaignId", "Campaign"),
        ("eventId", "Event"),
        ("spaceId", "Space"),
        ("organizationId", "Organization"),
        ("roundId", "GrantRound"),
        ("projectId", "ServiceProject"),
    ] {
        if let Some(id) = event.payload.get(key).and_then(Value::as_i64) {
            data.insert(key.into(), json!(global_id(type_name, id)));
        }
    }
    if let Some(org) = event.organization_id {
        data.entry("organizationId").or_insert_with(|| json!(global_id("Organization", org)));
    }
    if let Some(amount) = event.payload.get("amountFen").and_then(Value::as_i64) {
        data.insert("amountFen".into(), json!(amount));
    }
    json!({
        "type": event.event_type,
        "timestamp": event.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "data": data,
    })
}

/// Addresses webhooks never reach unless `INCUBASE_WEBHOOK_ALLOW_PRIVATE=true`: loopback,
/// private, shared (CGNAT), link-local (cloud metadata at 169.254.169.254), unspecified,
/// broadcast, multicast, documentation and benchmarking ranges, IPv6 unique-local and
/// link-local, and IPv4 addresses written as IPv6.
pub fn forbidden_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_address(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8
                || (first == 0 && v6.segments()[1..6].iter().all(|s| *s == 0))
        }
    }
}

/// Where an endpoint's URL points: the parsed URL and the addresses to connect to, each
/// checked. Refused: other schemes than http(s), credentials in the URL, a name that does not
/// resolve, and (unless allowed) any forbidden address among those the name resolves to.
pub async fn resolve_target(raw: &str, allow_private: bool) -> AppResult<(reqwest::Url, Vec<SocketAddr>)> {
    let refuse = |message: String| AppError::rule("url", "WEBHOOK_URL_FORBIDDEN", message);
    let url = reqwest::Url::parse(raw.trim())
        .map_err(|e| AppError::rule("url", "INVALID_WEBHOOK_URL", format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(AppError::rule("url", "INVALID_WEBHOOK_URL", "a webhook URL is http:// or https://"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(AppError::rule("url", "INVALID_WEBHOOK_URL", "a webhook URL holds no credentials"));
    }
    let host = url
        .host_str()
        .ok_or_else(|| AppError::rule("url", "INVALID_WEBHOOK_URL", "a webhook URL names a host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => {
            tokio::time::timeout(std::time::Duration::from_secs(5), tokio::net::lookup_host((host.as_str(), port)))
                .await
                .map_err(|_| refuse(format!("{host} did not resolve in time")))?
                .map_err(|e| refuse(format!("{host} does not resolve: {e}")))?
                .collect()
        }
    };
    if addresses.is_empty() {
        return Err(refuse(format!("{host} resolves to no address")));
    }
    if !allow_private && let Some(bad) = addresses.iter().find(|a| forbidden_address(a.ip())) {
        return Err(refuse(format!(
            "{host} resolves to {}, a loopback, private, link-local or reserved address (INCUBASE_WEBHOOK_ALLOW_PRIVATE)",
            bad.ip()
        )));
    }
    Ok((url, addresses))
}

fn check_event_types(types: &[String]) -> AppResult<Vec<String>> {
    if types.is_empty() || types.len() > MAX_EVENT_TYPES {
        return Err(AppError::bad_input("eventTypes", format!("name 1 to {MAX_EVENT_TYPES} event types")));
    }
    let mut checked = Vec::with_capacity(types.len());
    for raw in types {
        let name = raw.trim();
        // Per-person messages for a relay (SMS, WeChat): only when named explicitly.
        if super::channels::is_message_type(name) {
            if !checked.iter().any(|c| c == name) {
                checked.push(name.to_owned());
            }
            continue;
        }
        let kind = EventKind::parse(name).filter(|k| deliverable(*k)).ok_or_else(|| {
            AppError::rule(
                "eventTypes",
                "UNKNOWN_EVENT_TYPE",
                format!("{name:?} is not an event type webhooks deliver"),
            )
        })?;
        if !checked.iter().any(|c| c == kind.name()) {
            checked.push(kind.name().to_owned());
        }
    }
    checked.sort();
    Ok(checked)
}

fn check_description(description: Option<&str>) -> AppResult<Option<String>> {
    let description = description.map(str::trim).filter(|d| !d.is_empty());
    if description.is_some_and(|d| d.chars().count() > 200) {
        return Err(AppError::bad_input("description", "a description is at most 200 characters"));
    }
    Ok(description.map(str::to_owned))
}

fn check_url_length(url: &str) -> AppResult<String> {
    let url = url.trim();
    if url.len() > 2000 {
        return Err(AppError::bad_input("url", "a webhook URL is at most 2000 characters"));
    }
    Ok(url.to_owned())
}

/// A new endpoint, as the admin asks for it.
#[derive(Clone, Debug)]
pub struct NewEndpoint {
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
    pub api_key_id: Option<i64>,
}

/// An endpoint and its secret (shown once, at registration or rotation).
pub struct WithSecret {
    pub endpoint: webhook_endpoint::Model,
    pub secret: String,
}

async fn endpoint(db: &impl ConnectionTrait, id: i64) -> AppResult<webhook_endpoint::Model> {
    found::<webhook_endpoint::Entity>(db, id, "webhook endpoint").await
}

/// Command: registers an endpoint (admins). Its URL must resolve to an address webhooks may
/// reach; a partner key named must exist and not be revoked; types must be delivered types,
/// and a partner key's endpoint takes only what the key could read.
pub async fn create_endpoint(ctx: Ctx<'_>, viewer: &Viewer, new: NewEndpoint) -> AppResult<WithSecret> {
    viewer.require_manage_webhooks()?;
    let url = check_url_length(&new.url)?;
    resolve_target(&url, ctx.settings.webhooks.allow_private).await?;
    let types = check_event_types(&new.event_types)?;
    let description = check_description(new.description.as_deref())?;
    if new.api_key_id.is_some()
        && let Some(hidden) = types.iter().find(|t| EventKind::parse(t).is_some_and(|k| !partner_visible(k)))
    {
        return Err(AppError::rule(
            "eventTypes",
            "EVENT_TYPE_NOT_VISIBLE",
            format!("{hidden} is not public: endpoints of a partner key receive public changes only"),
        ));
    }
    let by = viewer.account.as_ref().map(|a| a.id);
    let secret = new_secret();
    let sealed = seal_secret(&ctx.settings.webhooks.sealing, &secret)?;
    as_viewer!(viewer, |actor| async {
        let txn = ctx.db.begin().await?;
        if let Some(key_id) = new.api_key_id {
            let key = api_key::Entity::find_by_id(key_id).one(&txn).await?;
            if key.is_none_or(|k| k.revoked_at.is_some()) {
                return Err(AppError::bad_input("apiKeyId", "no such partner key, or it is revoked"));
            }
        }
        let count = webhook_endpoint::Entity::find().count(&txn).await?;
        if count >= MAX_ENDPOINTS {
            return Err(AppError::conflict("TOO_MANY_WEBHOOK_ENDPOINTS", format!("at most {MAX_ENDPOINTS} endpoints")));
        }
        let now = super::now();
        let created = webhook_endpoint::ActiveModel {
            url: Set(url.clone()),
            description: Set(description.clone()),
            event_types: Set(serde_json::to_string(&types).unwrap_or_else(|_| "[]".into())),
            api_key_id: Set(new.api_key_id),
            secret: Set(sealed.clone()),
            enabled: Set(true),
            created_by_account_id: Set(by),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        let event = NewEvent::new(EventKind::WebhookEndpointCreated, created.id)
            .payload(json!({ "url": created.url, "eventTypes": types, "apiKeyId": created.api_key_id }));
        ctx.commit(txn, actor, vec![event]).await?;
        Ok(WithSecret { endpoint: created, secret: secret.clone() })
    })
}

use sea_orm::PaginatorTrait;

/// What an update changes (`None`: unchanged).
#[derive(Clone, Debug, Default)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<Option<String>>,
    /// Enabling again clears the failure record (deliveries given up stay given up; replay
    /// them with `replay_since`).
    pub enabled: Option<bool>,
}

/// Command: changes an endpoint (admins).
pub async fn update_endpoint(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    id: i64,
    patch: EndpointPatch,
) -> AppResult<webhook_endpoint::Model> {
    viewer.require_manage_webhooks()?;
    let url = patch.url.as_deref().map(check_url_length).transpose()?;
    if let Some(url) = &url {
        resolve_target(url, ctx.settings.webhooks.allow_private).await?;
    }
    let types = patch.event_types.as_deref().map(check_event_types).transpose()?;
    let description = patch.description.as_ref().map(|d| check_description(d.as_deref())).transpose()?;
    as_viewer!(viewer, |actor| async {
        let txn = ctx.db.begin().await?;
        let current = endpoint(&txn, id).await?;
        if current.api_key_id.is_some()
            && let Some(hidden) =
                types.iter().flatten().find(|t| EventKind::parse(t).is_some_and(|k| !partner_visible(k)))
        {
            return Err(AppError::rule(
                "eventTypes",
                "EVENT_TYPE_NOT_VISIBLE",
                format!("{hidden} is not public: endpoints of a partner key receive public changes only"),
            ));
        }
        let mut changed = Vec::new();
        let mut model = current.clone().into_active_model();
        if let Some(url) = &url
            && *url != current.url
        {
            model.url = Set(url.clone());
            changed.push("url");
        }
        if let Some(types) = &types {
            let json = serde_json::to_string(types).unwrap_or_else(|_| "[]".into());
            if json != current.event_types {
                model.event_types = Set(json);
                changed.push("eventTypes");
            }
        }
        if let Some(description) = &description
            && *description != current.description
        {
            model.description = Set(description.clone());
            changed.push("description");
        }
        if let Some(enabled) = patch.enabled
            && enabled != current.enabled
        {
            model.enabled = Set(enabled);
            model.disabled_reason = Set((!enabled).then(|| "disabled by an admin".to_owned()));
            model.failing_since = Set(None);
            changed.push("enabled");
        }
        if changed.is_empty() {
            txn.rollback().await?;
            return Ok(current);
        }
        model.updated_at = Set(super::now());
        let updated = model.update(&txn).await?;
        let event = NewEvent::new(EventKind::WebhookEndpointUpdated, id)
            .payload(json!({ "changed": changed, "enabled": updated.enabled }));
        ctx.commit(txn, actor, vec![event]).await?;
        Ok(updated)
    })
}

/// Command: a new secret (admins); the previous one keeps signing for `grace_hours`
/// (default 24, 0 ends it at once), so receivers can switch without missing a delivery.
pub async fn rotate_secret(ctx: Ctx<'_>, viewer: &Viewer, id: i64, grace_hours: Option<i64>) -> AppResult<WithSecret> {
    viewer.require_manage_webhooks()?;
    let grace = grace_hours.unwrap_or(DEFAULT_GRACE_HOURS);
    if !(0..=MAX_GRACE_HOURS).contains(&grace) {
        return Err(AppError::bad_input("graceHours", format!("graceHours is 0 to {MAX_GRACE_HOURS}")));
    }
    let secret = new_secret();
    let sealed = seal_secret(&ctx.settings.webhooks.sealing, &secret)?;
    as_viewer!(viewer, |actor| async {
        let txn = ctx.db.begin().await?;
        let current = endpoint(&txn, id).await?;
        let now = super::now();
        let mut model = current.clone().into_active_model();
        model.previous_secret = Set((grace > 0).then(|| current.secret.clone()));
        model.previous_secret_expires_at = Set((grace > 0).then(|| now + Duration::hours(grace)));
        model.secret = Set(sealed.clone());
        model.updated_at = Set(now);
        let updated = model.update(&txn).await?;
        let event = NewEvent::new(EventKind::WebhookSecretRotated, id).payload(json!({ "graceHours": grace }));
        ctx.commit(txn, actor, vec![event]).await?;
        Ok(WithSecret { endpoint: updated, secret: secret.clone() })
    })
}

/// Command: removes an endpoint with its delivery log (admins).
pub async fn delete_endpoint(ctx: Ctx<'_>, viewer: &Viewer, id: i64) -> AppResult<webhook_endpoint::Model> {
    viewer.require_manage_webhooks()?;
    as_viewer!(viewer, |actor| async {
        let txn = ctx.db.begin().await?;
        let current = endpoint(&txn, id).await?;
        // The log goes first: SQLite enforces foreign keys only when asked to.
        let deliveries = webhook_delivery::Entity::find()
            .select_only()
            .column(webhook_delivery::Column::Id)
            .filter(webhook_delivery::Column::EndpointId.eq(id));
        webhook_attempt::Entity::delete_many()
            .filter(webhook_attempt::Column::DeliveryId.in_subquery(sea_orm::QueryTrait::into_query(deliveries)))
            .exec(&txn)
            .await?;
        webhook_delivery::Entity::delete_many().filter(webhook_delivery::Column::EndpointId.eq(id)).exec(&txn).await?;
        entity::channel_message::Entity::delete_many()
            .filter(entity::channel_message::Column::EndpointId.eq(id))
            .exec(&txn)
            .await?;
        webhook_endpoint::Entity::delete_by_id(id).exec(&txn).await?;
        let event = NewEvent::new(EventKind::WebhookEndpointDeleted, id).payload(json!({ "url": current.url }));
        ctx.commit(txn, actor, vec![event]).await?;
        Ok(current)
    })
}

use sea_orm::QuerySelect;

/// Command: sends one delivery again as soon as a deliverer is free (admins). It keeps its
/// `webhook-id`, so a receiver that already has it can tell.
pub async fn redeliver(ctx: Ctx<'_>, viewer: &Viewer, delivery_id: i64) -> AppResult<webhook_delivery::Model> {
    viewer.require_manage_webhooks()?;
    as_viewer!(viewer, |actor| async {
        let txn = ctx.db.begin().await?;
        let delivery = found::<webhook_delivery::Entity>(&txn, delivery_id, "webhook delivery").await?;
        let endpoint = endpoint(&txn, delivery.endpoint_id).await?;
        if !endpoint.enabled {
            return Err(AppError::conflict("WEBHOOK_ENDPOINT_DISABLED", "enable the endpoint before redelivering"));
        }
        let now = super::now();
        let mut model = delivery.into_active_model();
        model.status = Set(PENDING.into());
        model.attempts = Set(0);
        model.next_attempt_at = Set(now);
        model.claimed_until = Set(None);
        let queued = model.update(&txn).await?;
        let event = NewEvent::new(EventKind::WebhookRedeliveryRequested, endpoint.id)
            .payload(json!({ "deliveryId": delivery_id, "queued": 1 }));
        ctx.commit(txn, actor, vec![event]).await?;
        Ok(queued)
    })
}

/// Command: queues again every event since `since` that the endpoint receives (admins):
/// those delivered before go again under their `webhook-id`, those never queued (the endpoint
/// did not exist or was disabled) are queued. At most `MAX_REPLAY` events; returns how many.
pub async fn replay_since(ctx: Ctx<'_>, viewer: &Viewer, endpoint_id: i64, since: DateTime<Utc>) -> AppResult<u64> {
    viewer.require_manage_webhooks()?;
    let now = super::now();
    if since > now {
        return Err(AppError::bad_input("since", "`since` is in the future"));
    }
    as_viewer!(viewer, |actor| async {
        let txn = ctx.db.begin().await?;
        let current = endpoint(&txn, endpoint_id).await?;
        if !current.enabled {
            return Err(AppError::conflict("WEBHOOK_ENDPOINT_DISABLED", "enable the endpoint before replaying"));
        }
        let types = event_types_of(&current);
        let allowed: Vec<String> = types
            .iter()
            .filter(|t| {
                EventKind::parse(t)
                    .is_some_and(|k| deliverable(k) && (current.api_key_id.is_none() || partner_visible(k)))
            })
            .cloned()
            .collect();
        let events = domain_event::Entity::find()
            .filter(domain_event::Column::OccurredAt.gte(since))
            .filter(domain_event::Column::EventType.is_in(allowed))
            .order_by_asc(domain_event::Column::Id)
            .limit(MAX_REPLAY + 1)
            .all(&txn)
            .await?;
        if events.len() as u64 > MAX_REPLAY {
            return Err(AppError::bad_input(
                "since",
                format!("more than {MAX_REPLAY} events since then: replay a shorter period"),
            ));
        }
        let queued = queue(&txn, endpoint_id, &events, now, true).await?;
        let event = NewEvent::new(EventKind::WebhookRedeliveryRequested, endpoint_id)
            .payload(json!({ "since": since, "queued": queued }));
        ctx.commit(txn, actor, vec![event]).await?;
        Ok(queued)
    })
}

/// Queues `events` for `endpoint_id` in one statement; with `again`, deliveries that exist
/// are queued anew (a replay), otherwise left as they are (the fan-out). Returns how many rows
/// were written.
pub async fn queue(
    db: &impl ConnectionTrait,
    endpoint_id: i64,
    events: &[domain_event::Model],
    now: DateTime<Utc>,
    again: bool,
) -> AppResult<u64> {
    let rows: Vec<(i64, i64, String)> = events.iter().map(|e| (endpoint_id, e.id, e.event_type.clone())).collect();
    queue_rows(db, &rows, now, again).await
}

/// Queues `(endpoint, event, type)` rows in statements of up to 200 rows.
pub async fn queue_rows(
    db: &impl ConnectionTrait,
    rows: &[(i64, i64, String)],
    now: DateTime<Utc>,
    again: bool,
) -> AppResult<u64> {
    let backend = db.get_database_backend();
    let mut written = 0;
    for chunk in rows.chunks(200) {
        let mut sql = String::from(
            "INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, status, attempts, next_attempt_at, created_at) VALUES ",
        );
        let mut values: Vec<sea_orm::Value> = Vec::with_capacity(chunk.len() * 5);
        for (i, (endpoint_id, event_id, event_type)) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            let p: Vec<String> = (0..5)
                .map(|c| match backend {
                    DatabaseBackend::Postgres => format!("${}", i * 5 + c + 1),
                    _ => "?".to_owned(),
                })
                .collect();
            sql.push_str(&format!("({}, {}, {}, 'PENDING', 0, {}, {})", p[0], p[1], p[2], p[3], p[4]));
            values.extend([
                (*endpoint_id).into(),
                (*event_id).into(),
                event_type.clone().into(),
                now.into(),
                now.into(),
            ]);
        }
        sql.push_str(if again {
            " ON CONFLICT (endpoint_id, event_id) DO UPDATE SET status = 'PENDING', attempts = 0, \
             next_attempt_at = excluded.next_attempt_at, claimed_until = NULL"
        } else {
            " ON CONFLICT (endpoint_id, event_id) DO NOTHING"
        });
        written += db.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?.rows_affected();
    }
    Ok(written)
}

// ------------------------------------------------------------------ reads (admins)

pub async fn endpoints(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    page: PageRequest<'_>,
) -> AppResult<Page<webhook_endpoint::Model>> {
    viewer.require_manage_webhooks()?;
    let key = SortKey::<webhook_endpoint::Entity>::time(
        webhook_endpoint::Column::CreatedAt,
        webhook_endpoint::Column::Id,
        SortDirection::Desc,
    );
    pagination::paginate(db, webhook_endpoint::Entity::find(), &key, page).await
}

pub async fn endpoint_by_id(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    id: i64,
) -> AppResult<Option<webhook_endpoint::Model>> {
    viewer.require_manage_webhooks()?;
    Ok(webhook_endpoint::Entity::find_by_id(id).one(db).await?)
}

/// An endpoint's deliveries, newest first, optionally of one status.
pub async fn deliveries(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    endpoint_id: i64,
    status: Option<&str>,
    page: PageRequest<'_>,
) -> AppResult<Page<webhook_delivery::Model>> {
    viewer.require_manage_webhooks()?;
    let key = SortKey::<webhook_delivery::Entity>::time(
        webhook_delivery::Column::CreatedAt,
        webhook_delivery::Column::Id,
        SortDirection::Desc,
    );
    let mut select = webhook_delivery::Entity::find().filter(webhook_delivery::Column::EndpointId.eq(endpoint_id));
    if let Some(status) = status {
        select = select.filter(webhook_delivery::Column::Status.eq(status));
    }
    pagination::paginate(db, select, &key, page).await
}

/// The newest `per_delivery` attempts of each of `delivery_ids`, newest first: one statement
/// for a whole page of deliveries.
pub async fn attempts_of(
    db: &impl ConnectionTrait,
    delivery_ids: &[i64],
    per_delivery: u64,
) -> AppResult<std::collections::HashMap<i64, Vec<webhook_attempt::Model>>> {
    let mut by_delivery: std::collections::HashMap<i64, Vec<webhook_attempt::Model>> = Default::default();
    if delivery_ids.is_empty() {
        return Ok(by_delivery);
    }
    let backend = db.get_database_backend();
    let list: Vec<String> = delivery_ids.iter().map(i64::to_string).collect();
    let sql = format!(
        "SELECT id, delivery_id, attempted_at, status_code, error, duration_ms, response_excerpt FROM \
         (SELECT *, ROW_NUMBER() OVER (PARTITION BY delivery_id ORDER BY id DESC) AS n FROM webhook_attempts \
         WHERE delivery_id IN ({})) ranked WHERE n <= {} ORDER BY delivery_id, id DESC",
        list.join(", "),
        per_delivery
    );
    let rows = webhook_attempt::Entity::find().from_raw_sql(Statement::from_string(backend, sql)).all(db).await?;
    for row in rows {
        by_delivery.entry(row.delivery_id).or_default().push(row);
    }
    Ok(by_delivery)
}

/// Marks an endpoint disabled by the server after failing for too long (the deliverer).
pub async fn disable_failing(
    db: &sea_orm::DatabaseConnection,
    endpoint_id: i64,
    failing_since: DateTime<Utc>,
) -> AppResult<bool> {
    let txn = db.begin().await?;
    let reason =
        format!("every delivery failed since {}", failing_since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    // Only while still failing and enabled: a success or an admin in between wins.
    let changed = webhook_endpoint::Entity::update_many()
        .col_expr(webhook_endpoint::Column::Enabled, Expr::value(false))
        .col_expr(webhook_endpoint::Column::DisabledReason, Expr::value(reason.clone()))
        .col_expr(webhook_endpoint::Column::UpdatedAt, Expr::value(super::now()))
        .filter(webhook_endpoint::Column::Id.eq(endpoint_id))
        .filter(webhook_endpoint::Column::Enabled.eq(true))
        .filter(webhook_endpoint::Column::FailingSince.eq(failing_since))
        .exec(&txn)
        .await?
        .rows_affected
        == 1;
    if changed {
        let event = NewEvent::new(EventKind::WebhookEndpointDisabled, endpoint_id).payload(json!({ "reason": reason }));
        crate::events::log::append(&txn, &Actor::system("webhooks"), vec![event]).await?;
    }
    txn.commit().await?;
    Ok(changed)
}
