//! The channels a notification travels besides the inbox: email (SMTP, `crate::mail`), SMS
//! and WeChat template messages. SMS and WeChat go out through a [`Transport`]; the first one
//! is the partner webhook (`crate::channels::PartnerRelay`): each per-person message is a
//! signed Standard Webhooks delivery of type `message.sms` or `message.wechat_template` to the
//! endpoints registered for that type, and the partner relays it through its own provider
//! account (no provider SDK here).
//!
//! Personal data: these deliveries carry the person's phone number or openid and the text
//! meant for them. Only endpoints an admin explicitly subscribed to a `message.*` type
//! receive them; no other event type ever carries personal data, and the message rows are
//! erased with the account.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{channel_message, webhook_endpoint};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};

use crate::error::AppResult;

/// Where a notification may also go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    Email,
    Sms,
    WechatTemplate,
}

impl Channel {
    /// The relayed channels (email has its own SMTP transport).
    pub const RELAYED: [Channel; 2] = [Channel::Sms, Channel::WechatTemplate];

    pub fn name(self) -> &'static str {
        match self {
            Channel::Email => "EMAIL",
            Channel::Sms => "SMS",
            Channel::WechatTemplate => "WECHAT_TEMPLATE",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "EMAIL" => Some(Channel::Email),
            "SMS" => Some(Channel::Sms),
            "WECHAT_TEMPLATE" => Some(Channel::WechatTemplate),
            _ => None,
        }
    }

    /// The webhook event type its messages are delivered as (`None` for email).
    pub fn event_type(self) -> Option<&'static str> {
        match self {
            Channel::Email => None,
            Channel::Sms => Some(MESSAGE_SMS),
            Channel::WechatTemplate => Some(MESSAGE_WECHAT_TEMPLATE),
        }
    }

    /// The prefix of its messages' `webhook-id`.
    fn id_prefix(self) -> &'static str {
        match self {
            Channel::Email => "mail",
            Channel::Sms => "sms",
            Channel::WechatTemplate => "wx",
        }
    }
}

pub const MESSAGE_SMS: &str = "message.sms";
pub const MESSAGE_WECHAT_TEMPLATE: &str = "message.wechat_template";
/// The webhook event types that carry a person's contact and text.
pub const MESSAGE_TYPES: [&str; 2] = [MESSAGE_SMS, MESSAGE_WECHAT_TEMPLATE];

pub fn is_message_type(name: &str) -> bool {
    MESSAGE_TYPES.contains(&name)
}

/// What a transport did with one message: `Ok` once the other side took it, `Err` with why
/// not (and the HTTP status, if any) to retry later.
pub type Delivered = Result<Option<u16>, (Option<u16>, String)>;

/// Delivers a per-person message on its channel. The partner webhook is the first transport;
/// a provider's SDK would be another implementation of this trait.
pub trait Transport: Send + Sync {
    fn deliver(&self, message: &channel_message::Model) -> impl std::future::Future<Output = Delivered> + Send;
}

/// The `webhook-id` of a message: the same on every attempt, so relays deduplicate by it.
pub fn message_id(message: &channel_message::Model) -> String {
    let prefix = Channel::parse(&message.channel).map(Channel::id_prefix).unwrap_or("msg");
    format!("msg_{prefix}_{}", message.id)
}

/// The JSON body the relay receives.
pub fn body(message: &channel_message::Model) -> Value {
    let event_type = Channel::parse(&message.channel).and_then(Channel::event_type).unwrap_or(MESSAGE_SMS);
    let variables: Value = serde_json::from_str(&message.variables).unwrap_or_else(|_| json!({}));
    let subject = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        format!("{}:{}", message.subject_type, message.subject_id),
    );
    json!({
        "type": event_type,
        "timestamp": message.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "data": {
            "messageId": message_id(message),
            "channel": message.channel,
            "to": message.recipient,
            "template": message.template,
            "locale": message.locale,
            "title": message.title,
            "body": message.body,
            "text": text_of(&message.title, &message.body),
            "variables": variables,
            "subject": { "object": message.subject_type, "id": subject },
        },
    })
}

/// The one text of a short message: the title, then the body.
pub fn text_of(title: &str, body: &str) -> String {
    format!("{title}。{body}")
}

/// One message to queue, before the relay endpoints are known.
pub struct Outgoing {
    pub channel: Channel,
    pub account_id: i64,
    pub event_id: i64,
    pub recipient: String,
    pub template: String,
    pub locale: String,
    pub title: String,
    pub body: String,
    pub variables: Value,
    pub subject: (String, i64),
}

/// Enabled endpoints subscribed to each relayed channel (endpoints of revoked keys excluded).
pub async fn relays(db: &impl ConnectionTrait) -> AppResult<HashMap<Channel, Vec<i64>>> {
    let endpoints = webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::Enabled.eq(true))
        .filter(sea_orm::Condition::any().add(webhook_endpoint::Column::ApiKeyId.is_null()).add(
            sea_orm::sea_query::Expr::cust("api_key_id NOT IN (SELECT id FROM api_keys WHERE revoked_at IS NOT NULL)"),
        ))
        .all(db)
        .await?;
    let mut by_channel: HashMap<Channel, Vec<i64>> = HashMap::new();
    for endpoint in endpoints {
        let types = super::endpoints::event_types_of(&endpoint);
        for channel in Channel::RELAYED {
            if channel.event_type().is_some_and(|t| types.iter().any(|x| x == t)) {
                by_channel.entry(channel).or_default().push(endpoint.id);
            }
        }
    }
    Ok(by_channel)
}

/// The rows for `outgoing`: one per message and relay endpoint of its channel. A message for
/// a channel no endpoint relays is not kept at all.
pub fn rows(
    outgoing: Vec<Outgoing>,
    relays: &HashMap<Channel, Vec<i64>>,
    now: DateTime<Utc>,
) -> Vec<channel_message::ActiveModel> {
    let mut rows = Vec::new();
    for m in outgoing {
        for endpoint_id in relays.get(&m.channel).into_iter().flatten() {
            rows.push(channel_message::ActiveModel {
                endpoint_id: Set(*endpoint_id),
                account_id: Set(m.account_id),
                event_id: Set(m.event_id),
                channel: Set(m.channel.name().to_owned()),
                recipient: Set(m.recipient.clone()),
                template: Set(m.template.clone()),
                locale: Set(m.locale.clone()),
                title: Set(m.title.chars().take(300).collect()),
                body: Set(m.body.chars().take(2000).collect()),
                variables: Set(m.variables.to_string()),
                subject_type: Set(m.subject.0.clone()),
                subject_id: Set(m.subject.1),
                status: Set("PENDING".to_owned()),
                attempts: Set(0),
                next_attempt_at: Set(now),
                claimed_until: Set(None),
                last_status_code: Set(None),
                last_error: Set(None),
                created_at: Set(now),
                delivered_at: Set(None),
                ..Default::default()
            });
        }
    }
    rows
}

/// Writes `rows`; a message already queued for an (endpoint, person, event, channel) is left
/// alone, so reading an event twice sends it once.
pub async fn insert(db: &impl ConnectionTrait, rows: Vec<channel_message::ActiveModel>) -> AppResult<u64> {
    use channel_message::Column as C;
    super::common::insert_new(db, rows, 100, &[C::EndpointId, C::AccountId, C::EventId, C::Channel]).await
}

/// A phone number as a person registers it for SMS: digits, optionally a leading `+`
/// (spaces, dashes and brackets dropped), 5 to 20 digits.
pub fn check_phone(raw: &str) -> Option<String> {
    let p = raw.trim();
    let digits = p.chars().filter(char::is_ascii_digit).count();
    let shaped = p.chars().all(|c| c.is_ascii_digit() || "+-() ".contains(c))
        && (5..=20).contains(&digits)
        && p.chars().filter(|c| *c == '+').count() <= usize::from(p.starts_with('+'));
    shaped.then(|| p.chars().filter(|c| c.is_ascii_digit() || *c == '+').collect())
}

/// A WeChat openid: 1 to 64 of letters, digits, `-` and `_`.
pub fn check_openid(raw: &str) -> Option<String> {
    let o = raw.trim();
    (!o.is_empty() && o.len() <= 64 && o.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .then(|| o.to_owned())
}
