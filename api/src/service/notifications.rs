//! Notifications for people: which events tell whom, what they say (in the person's
//! language), and the commands on a person's inbox. The `notifications` consumer of the log
//! (`crate::notifications`) writes the inbox and sends the emails.
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::registration::RegistrationStatus;
use entity::{
    account, campaign, channel_message, domain_event, donation, event, grant_proposal, membership, notification,
    notification_setting, organization, registration, space,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, PrimaryKeyTrait, QueryFilter, Set, TransactionTrait,
};
use serde_json::json;

use super::channels::{Channel, Outgoing};
use super::pagination::{self, Page, PageRequest, SortDirection, SortKey};
use super::{Ctx, as_viewer};
use crate::auth::Viewer;
use crate::error::{AppError, AppResult};
use crate::events::{EventKind, NewEvent};

/// The languages texts are written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Locale {
    /// Simplified Chinese (the default).
    Hans,
    /// Traditional Chinese (Taiwan, Hong Kong and Macao guests of cross-strait exchanges).
    Hant,
}

impl Locale {
    pub fn as_str(self) -> &'static str {
        match self {
            Locale::Hans => "zh-Hans",
            Locale::Hant => "zh-Hant",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim() {
            "zh-Hans" | "zh-CN" | "zh-SG" => Some(Locale::Hans),
            "zh-Hant" | "zh-TW" | "zh-HK" | "zh-MO" => Some(Locale::Hant),
            _ => None,
        }
    }
}

/// The kinds of events that notify someone.
pub const KINDS: &[EventKind] = &[
    EventKind::RegistrationConfirmed,
    EventKind::RegistrationWaitlisted,
    EventKind::RegistrationPromoted,
    EventKind::RegistrationApproved,
    EventKind::RegistrationRejected,
    EventKind::EventCancelled,
    EventKind::EventUpdated,
    EventKind::BookingConfirmed,
    EventKind::BookingRejected,
    EventKind::BookingCancelled,
    EventKind::CampaignApproved,
    EventKind::CampaignReturned,
    EventKind::DonationConfirmed,
    EventKind::GrantReviewerAssigned,
    EventKind::GrantProposalAwarded,
    EventKind::GrantProposalDeclined,
    EventKind::MemberAdded,
];

/// One notification to write: who, and what it says.
#[derive(Clone, Debug)]
pub struct Draft {
    pub account_id: i64,
    pub title: String,
    pub body: String,
    pub subject_type: String,
    pub subject_id: i64,
}

/// A text in both scripts.
struct Text {
    hans: String,
    hant: String,
}

impl Text {
    fn new(hans: impl Into<String>, hant: impl Into<String>) -> Self {
        Text { hans: hans.into(), hant: hant.into() }
    }

    fn get(&self, locale: Locale) -> &str {
        match locale {
            Locale::Hans => &self.hans,
            Locale::Hant => &self.hant,
        }
    }
}

/// Who an event notifies (before their language is known), and the (title, body) texts.
struct Plan {
    recipients: Vec<i64>,
    title: Text,
    body: Text,
    subject: (String, i64),
    /// The template's variables for relayed channels (names in camelCase).
    vars: serde_json::Value,
}

fn payload_id(e: &domain_event::Model, key: &str) -> Option<i64> {
    e.payload.get(key).and_then(serde_json::Value::as_i64)
}

/// Rows a batch of events names, each read once per batch however many events name it (the
/// confirmations of a busy campaign all name that campaign): titles and names by table and id,
/// and the confirmed donations, read for the whole batch at once.
#[derive(Default)]
struct Lookups {
    names: HashMap<(&'static str, i64), String>,
    donations: HashMap<i64, donation::Model>,
}

impl Lookups {
    /// Reads the donations that `events` confirm, in one statement.
    async fn for_batch(db: &impl ConnectionTrait, events: &[&domain_event::Model]) -> AppResult<Self> {
        let confirmed: Vec<i64> = events
            .iter()
            .filter(|e| e.account_id.is_some() && EventKind::parse(&e.event_type) == Some(EventKind::DonationConfirmed))
            .map(|e| e.aggregate_id)
            .collect();
        let donations = if confirmed.is_empty() {
            HashMap::new()
        } else {
            super::common::by_id(db, donation::Column::Id, confirmed, |d| d.id).await?
        };
        Ok(Self { names: HashMap::new(), donations })
    }

    async fn event_title(&mut self, db: &impl ConnectionTrait, id: Option<i64>) -> AppResult<String> {
        self.name_of::<event::Entity>(db, id, |e| e.title).await
    }

    /// What the row `id` of `E` is called (`name` reads it); empty without an id or a row.
    async fn name_of<E>(
        &mut self,
        db: &impl ConnectionTrait,
        id: Option<i64>,
        name: fn(E::Model) -> String,
    ) -> AppResult<String>
    where
        E: EntityTrait,
        i64: Into<<E::PrimaryKey as PrimaryKeyTrait>::ValueType>,
    {
        let Some(id) = id else { return Ok(String::new()) };
        let key = (E::default().table_name(), id);
        if let Some(known) = self.names.get(&key) {
            return Ok(known.clone());
        }
        let found = E::find_by_id(id).one(db).await?.map(name).unwrap_or_default();
        self.names.insert(key, found.clone());
        Ok(found)
    }

    /// The donation an event confirms: read with the batch (each is confirmed once), or else now.
    async fn donation(&mut self, db: &impl ConnectionTrait, id: i64) -> AppResult<Option<donation::Model>> {
        match self.donations.remove(&id) {
            Some(known) => Ok(Some(known)),
            None => Ok(donation::Entity::find_by_id(id).one(db).await?),
        }
    }
}

/// Owners and editors of an organization.
async fn members(db: &impl ConnectionTrait, organization_id: Option<i64>) -> AppResult<Vec<i64>> {
    let Some(org) = organization_id else { return Ok(Vec::new()) };
    Ok(membership::Entity::find()
        .filter(membership::Column::OrganizationId.eq(org))
        .all(db)
        .await?
        .into_iter()
        .map(|m| m.account_id)
        .collect())
}

fn local_time(t: &serde_json::Value) -> String {
    t.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| crate::time::format_at_base(t.to_utc(), "%Y-%m-%d %H:%M"))
        .unwrap_or_default()
}

/// What `e` tells whom; `None` when it tells no one.
async fn plan(db: &impl ConnectionTrait, e: &domain_event::Model, lookups: &mut Lookups) -> AppResult<Option<Plan>> {
    use EventKind::*;
    let Some(kind) = EventKind::parse(&e.event_type) else { return Ok(None) };
    let personal = e.account_id.into_iter().collect::<Vec<_>>();
    // Kinds that tell only the account they concern tell nobody about a guest's, and cost no
    // lookups (a statement of 10,000 guest donations is 10,000 such events).
    let personal_only = matches!(
        kind,
        RegistrationConfirmed
            | RegistrationWaitlisted
            | RegistrationPromoted
            | RegistrationApproved
            | RegistrationRejected
            | BookingConfirmed
            | BookingRejected
            | BookingCancelled
            | DonationConfirmed
            | GrantReviewerAssigned
            | MemberAdded
    );
    if personal_only && personal.is_empty() {
        return Ok(None);
    }
    let subject = (e.aggregate_type.clone(), e.aggregate_id);
    let plan = |recipients: Vec<i64>, title: Text, body: Text, vars: serde_json::Value| {
        Some(Plan { recipients, title, body, subject: subject.clone(), vars })
    };
    Ok(match kind {
        RegistrationConfirmed
        | RegistrationWaitlisted
        | RegistrationPromoted
        | RegistrationApproved
        | RegistrationRejected => {
            let name = lookups.event_title(db, payload_id(e, "eventId")).await?;
            let (hans, hant) = match kind {
                RegistrationConfirmed => ("报名成功", "報名成功"),
                RegistrationWaitlisted => ("已进入候补名单", "已進入候補名單"),
                RegistrationPromoted => ("候补转正：您已获得名额", "候補轉正：您已獲得名額"),
                RegistrationApproved => ("报名已通过审核", "報名已通過審核"),
                _ => ("报名未通过审核", "報名未通過審核"),
            };
            let (body_hans, body_hant) = match kind {
                RegistrationConfirmed => (format!("您已报名“{name}”。"), format!("您已報名「{name}」。")),
                RegistrationWaitlisted => (
                    format!("“{name}”名额已满，您在候补名单中，有空位时会按顺序通知您。"),
                    format!("「{name}」名額已滿，您在候補名單中，有空位時會按順序通知您。"),
                ),
                RegistrationPromoted => (
                    format!("有名额空出，您已从候补名单转为“{name}”的正式报名。"),
                    format!("有名額空出，您已從候補名單轉為「{name}」的正式報名。"),
                ),
                RegistrationApproved => {
                    (format!("您报名的“{name}”已通过审核。"), format!("您報名的「{name}」已通過審核。"))
                }
                _ => {
                    (format!("很抱歉，您报名的“{name}”未通过审核。"), format!("很抱歉，您報名的「{name}」未通過審核。"))
                }
            };
            plan(personal, Text::new(hans, hant), Text::new(body_hans, body_hant), json!({ "eventTitle": name }))
        }
        EventCancelled | EventUpdated => {
            let moved = e.payload.get("moved").and_then(serde_json::Value::as_bool).unwrap_or(false);
            if kind == EventUpdated && !moved {
                return Ok(None);
            }
            let live = [RegistrationStatus::Confirmed, RegistrationStatus::Waitlisted, RegistrationStatus::Pending];
            // Cancelling the event cancels its registrations in the same transaction: those
            // cancelled at that instant are its registrants (events cancelled before that
            // rule only ever had live ones).
            let mut whose = sea_orm::Condition::any().add(registration::Column::Status.is_in(live));
            if let Some(at) = e
                .payload
                .get("registrationsCancelledAt")
                .and_then(serde_json::Value::as_str)
                .and_then(|t| t.parse::<DateTime<Utc>>().ok())
            {
                whose = whose.add(
                    sea_orm::Condition::all()
                        .add(registration::Column::Status.eq(RegistrationStatus::Cancelled))
                        .add(registration::Column::CancelledAt.eq(at)),
                );
            }
            let registrants: Vec<i64> = registration::Entity::find()
                .filter(registration::Column::EventId.eq(e.aggregate_id))
                .filter(whose)
                .all(db)
                .await?
                .into_iter()
                .filter_map(|r| r.account_id)
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            let name = lookups.event_title(db, Some(e.aggregate_id)).await?;
            let (title, body, vars) = if kind == EventCancelled {
                (
                    Text::new("活动已取消", "活動已取消"),
                    Text::new(format!("您报名的“{name}”已取消。"), format!("您報名的「{name}」已取消。")),
                    json!({ "eventTitle": name }),
                )
            } else {
                let when = local_time(&e.payload["startsAt"]);
                (
                    Text::new("活动时间已更改", "活動時間已更改"),
                    Text::new(
                        format!("您报名的“{name}”改为 {when}（北京时间）开始。"),
                        format!("您報名的「{name}」改為 {when}（北京時間）開始。"),
                    ),
                    json!({ "eventTitle": name, "startsAt": when }),
                )
            };
            plan(registrants, title, body, vars)
        }
        // An event's reservation follows the event, whose registrants are told about it.
        BookingConfirmed | BookingCancelled if e.payload.get("eventId").is_some_and(|v| !v.is_null()) => None,
        BookingConfirmed | BookingRejected | BookingCancelled => {
            let room = lookups.name_of::<space::Entity>(db, payload_id(e, "spaceId"), |s| s.name).await?;
            let when = local_time(&e.payload["startsAt"]);
            let (hans, hant, verb_hans, verb_hant) = match kind {
                BookingConfirmed => ("场地预约已确认", "場地預約已確認", "已确认", "已確認"),
                BookingRejected => ("场地预约未获批准", "場地預約未獲批准", "未获批准", "未獲批准"),
                _ => ("场地预约已取消", "場地預約已取消", "已取消", "已取消"),
            };
            plan(
                personal,
                Text::new(hans, hant),
                Text::new(
                    format!("您预约的{room}（{when} 起）{verb_hans}。"),
                    format!("您預約的{room}（{when} 起）{verb_hant}。"),
                ),
                json!({ "space": room, "startsAt": when }),
            )
        }
        CampaignApproved | CampaignReturned => {
            let name = lookups.name_of::<campaign::Entity>(db, Some(e.aggregate_id), |c| c.title).await?;
            let (title, body) = if kind == CampaignApproved {
                (
                    Text::new("众筹项目已通过审核", "眾籌項目已通過審核"),
                    Text::new(format!("“{name}”已通过审核，现已上线。"), format!("「{name}」已通過審核，現已上線。")),
                )
            } else {
                (
                    Text::new("众筹项目需要修改", "眾籌項目需要修改"),
                    Text::new(
                        format!("“{name}”已退回修改，请查看审核意见后重新提交。"),
                        format!("「{name}」已退回修改，請查看審核意見後重新提交。"),
                    ),
                )
            };
            plan(members(db, e.organization_id).await?, title, body, json!({ "campaignTitle": name }))
        }
        DonationConfirmed => {
            let found = lookups.donation(db, e.aggregate_id).await?;
            let receipt = found.as_ref().and_then(|d| d.receipt_number.clone()).unwrap_or_default();
            let name =
                lookups.name_of::<campaign::Entity>(db, found.as_ref().map(|d| d.campaign_id), |c| c.title).await?;
            let yuan = payload_id(e, "amountFen").map(|f| format!("{}.{:02}", f / 100, f % 100)).unwrap_or_default();
            plan(
                personal,
                Text::new("捐赠已确认", "捐贈已確認"),
                Text::new(
                    format!("感谢您为“{name}”捐赠 {yuan} 元。收据编号：{receipt}。"),
                    format!("感謝您為「{name}」捐贈 {yuan} 元。收據編號：{receipt}。"),
                ),
                json!({ "campaignTitle": name, "amountYuan": yuan, "receiptNumber": receipt }),
            )
        }
        GrantReviewerAssigned => {
            let name = lookups.name_of::<grant_proposal::Entity>(db, Some(e.aggregate_id), |p| p.title).await?;
            plan(
                personal,
                Text::new("新的评审任务", "新的評審任務"),
                Text::new(format!("请评审申报项目“{name}”。"), format!("請評審申報項目「{name}」。")),
                json!({ "proposalTitle": name }),
            )
        }
        GrantProposalAwarded | GrantProposalDeclined => {
            let name = e.payload.get("title").and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
            let (title, body) = if kind == GrantProposalAwarded {
                (
                    Text::new("创投项目获得资助", "創投項目獲得資助"),
                    Text::new(format!("恭喜！“{name}”获得资助。"), format!("恭喜！「{name}」獲得資助。")),
                )
            } else {
                (
                    Text::new("创投项目未获资助", "創投項目未獲資助"),
                    Text::new(format!("很抱歉，“{name}”本轮未获资助。"), format!("很抱歉，「{name}」本輪未獲資助。")),
                )
            };
            plan(members(db, e.organization_id).await?, title, body, json!({ "proposalTitle": name }))
        }
        MemberAdded => {
            let name = lookups.name_of::<organization::Entity>(db, Some(e.aggregate_id), |o| o.name).await?;
            plan(
                personal,
                Text::new("您已加入组织", "您已加入組織"),
                Text::new(format!("您已成为“{name}”的成员。"), format!("您已成為「{name}」的成員。")),
                json!({ "organizationName": name }),
            )
        }
        _ => None,
    })
}

/// A person's choices: their language, and per channel which kinds also go there (email to
/// the account's address; SMS and WeChat template messages to the number and openid the
/// person registered here, every kind by default once registered).
#[derive(Clone, Debug)]
pub struct Preferences {
    pub locale: Locale,
    /// Kinds also sent by email.
    pub email_kinds: Vec<EventKind>,
    /// Where SMS go; `None`: no SMS.
    pub sms_phone: Option<String>,
    pub sms_kinds: Vec<EventKind>,
    /// Where WeChat template messages go; `None`: none.
    pub wechat_openid: Option<String>,
    pub wechat_kinds: Vec<EventKind>,
}

impl Default for Preferences {
    fn default() -> Self {
        Preferences {
            locale: Locale::Hans,
            email_kinds: KINDS.to_vec(),
            sms_phone: None,
            sms_kinds: KINDS.to_vec(),
            wechat_openid: None,
            wechat_kinds: KINDS.to_vec(),
        }
    }
}

impl Preferences {
    /// The kinds `channel` carries for this person.
    pub fn kinds(&self, channel: Channel) -> &[EventKind] {
        match channel {
            Channel::Email => &self.email_kinds,
            Channel::Sms => &self.sms_kinds,
            Channel::WechatTemplate => &self.wechat_kinds,
        }
    }

    /// Where `channel` reaches this person (email: the account's address, not kept here).
    pub fn recipient(&self, channel: Channel) -> Option<&str> {
        match channel {
            Channel::Email => None,
            Channel::Sms => self.sms_phone.as_deref(),
            Channel::WechatTemplate => self.wechat_openid.as_deref(),
        }
    }
}

fn kinds_of(raw: &Option<String>) -> Vec<EventKind> {
    match raw {
        Some(raw) => serde_json::from_str::<Vec<String>>(raw)
            .unwrap_or_default()
            .iter()
            .filter_map(|k| EventKind::parse(k))
            .collect(),
        None => KINDS.to_vec(),
    }
}

fn preferences_of(row: Option<&notification_setting::Model>) -> Preferences {
    let Some(row) = row else { return Preferences::default() };
    Preferences {
        locale: Locale::parse(&row.locale).unwrap_or(Locale::Hans),
        email_kinds: kinds_of(&row.email_kinds),
        sms_phone: row.sms_phone.clone(),
        sms_kinds: kinds_of(&row.sms_kinds),
        wechat_openid: row.wechat_openid.clone(),
        wechat_kinds: kinds_of(&row.wechat_kinds),
    }
}

pub async fn preferences(db: &impl ConnectionTrait, account_id: i64) -> AppResult<Preferences> {
    let row = notification_setting::Entity::find_by_id(account_id).one(db).await?;
    Ok(preferences_of(row.as_ref()))
}

/// What a batch of events writes: inbox rows, and the messages relayed to SMS and WeChat.
#[derive(Default)]
pub struct Outbox {
    pub inbox: Vec<notification::ActiveModel>,
    pub messages: Vec<channel_message::ActiveModel>,
}

impl Outbox {
    pub fn is_empty(&self) -> bool {
        self.inbox.is_empty() && self.messages.is_empty()
    }
}

/// The rows to write for a batch of events: each recipient's text in their language, whether
/// it also goes by email (`email`: SMTP is configured), and a message per relayed channel the
/// person registered a number or openid for and chose the kind on, for each endpoint relaying
/// that channel.
pub async fn rows_for(
    db: &impl ConnectionTrait,
    events: &[domain_event::Model],
    email: bool,
    now: DateTime<Utc>,
) -> AppResult<Outbox> {
    let mut plans = Vec::new();
    // Command-line writes (the demo seed's year of history, create-admin) tell no one.
    let told: Vec<&domain_event::Model> =
        events.iter().filter(|e| e.actor_kind != crate::events::ActorKind::Cli.as_str()).collect();
    let mut lookups = Lookups::for_batch(db, &told).await?;
    for e in told {
        if let Some(plan) = plan(db, e, &mut lookups).await?
            && !plan.recipients.is_empty()
        {
            plans.push((e, plan));
        }
    }
    let people: Vec<i64> =
        plans.iter().flat_map(|(_, p)| p.recipients.iter().copied()).collect::<HashSet<_>>().into_iter().collect();
    if people.is_empty() {
        return Ok(Outbox::default());
    }
    let settings: HashMap<i64, notification_setting::Model> = notification_setting::Entity::find()
        .filter(notification_setting::Column::AccountId.is_in(people.clone()))
        .all(db)
        .await?
        .into_iter()
        .map(|s| (s.account_id, s))
        .collect();
    // Disabled accounts are told nothing.
    let active: HashSet<i64> = account::Entity::find()
        .filter(account::Column::Id.is_in(people))
        .filter(account::Column::DisabledAt.is_null())
        .all(db)
        .await?
        .into_iter()
        .map(|a| a.id)
        .collect();
    let mut rows = Vec::new();
    let mut outgoing = Vec::new();
    for (e, plan) in plans {
        let kind = EventKind::parse(&e.event_type);
        for account_id in plan.recipients.iter().copied().filter(|a| active.contains(a)) {
            let prefs = preferences_of(settings.get(&account_id));
            let mailed = email && kind.is_some_and(|k| prefs.email_kinds.contains(&k));
            for channel in Channel::RELAYED {
                if let (Some(to), Some(k)) = (prefs.recipient(channel), kind)
                    && prefs.kinds(channel).contains(&k)
                {
                    outgoing.push(Outgoing {
                        channel,
                        account_id,
                        event_id: e.id,
                        recipient: to.to_owned(),
                        template: e.event_type.clone(),
                        locale: prefs.locale.as_str().to_owned(),
                        title: plan.title.get(prefs.locale).to_owned(),
                        body: plan.body.get(prefs.locale).to_owned(),
                        variables: plan.vars.clone(),
                        subject: plan.subject.clone(),
                    });
                }
            }
            rows.push(notification::ActiveModel {
                account_id: Set(account_id),
                event_id: Set(e.id),
                kind: Set(e.event_type.clone()),
                title: Set(plan.title.get(prefs.locale).chars().take(300).collect()),
                body: Set(plan.body.get(prefs.locale).chars().take(2000).collect()),
                subject_type: Set(plan.subject.0.clone()),
                subject_id: Set(plan.subject.1),
                read_at: Set(None),
                email_status: Set(if mailed { "PENDING" } else { "NONE" }.to_owned()),
                email_attempts: Set(0),
                email_next_at: Set(mailed.then_some(now)),
                email_claimed_until: Set(None),
                email_error: Set(None),
                created_at: Set(now),
                ..Default::default()
            });
        }
    }
    let messages = if outgoing.is_empty() {
        Vec::new()
    } else {
        super::channels::rows(outgoing, &super::channels::relays(db).await?, now)
    };
    Ok(Outbox { inbox: rows, messages })
}

/// Writes `rows`; a row for a (person, event) already written is left alone.
pub async fn insert(db: &impl ConnectionTrait, rows: Vec<notification::ActiveModel>) -> AppResult<u64> {
    let unique = [notification::Column::AccountId, notification::Column::EventId];
    super::common::insert_new(db, rows, 200, &unique).await
}

// ------------------------------------------------------------------ the inbox

/// The signed-in person's notifications, newest first.
pub async fn inbox(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    unread_only: bool,
    page: PageRequest<'_>,
) -> AppResult<Page<notification::Model>> {
    let account = viewer.require_account()?;
    let key = SortKey::<notification::Entity>::time(
        notification::Column::CreatedAt,
        notification::Column::Id,
        SortDirection::Desc,
    );
    let mut select = notification::Entity::find().filter(notification::Column::AccountId.eq(account.id));
    if unread_only {
        select = select.filter(notification::Column::ReadAt.is_null());
    }
    pagination::paginate(db, select, &key, page).await
}

pub async fn unread_count(db: &impl ConnectionTrait, viewer: &Viewer) -> AppResult<u64> {
    let account = viewer.require_account()?;
    Ok(notification::Entity::find()
        .filter(notification::Column::AccountId.eq(account.id))
        .filter(notification::Column::ReadAt.is_null())
        .count(db)
        .await?)
}

/// Command: marks the viewer's notifications read — those named, or all of them. Returns
/// how many changed (marking read ones again changes and records nothing).
pub async fn mark_read(ctx: Ctx<'_>, viewer: &Viewer, ids: Option<Vec<i64>>) -> AppResult<u64> {
    let account = viewer.require_account()?.id;
    if ids.as_ref().is_some_and(|ids| ids.is_empty() || ids.len() > 100) {
        return Err(AppError::bad_input("ids", "name 1 to 100 notifications, or none for all"));
    }
    as_viewer!(viewer, |actor| async {
        let txn = ctx.db.begin().await?;
        let mut update = notification::Entity::update_many()
            .col_expr(notification::Column::ReadAt, Expr::value(super::now()))
            .filter(notification::Column::AccountId.eq(account))
            .filter(notification::Column::ReadAt.is_null());
        if let Some(ids) = &ids {
            update = update.filter(notification::Column::Id.is_in(ids.clone()));
        }
        let changed = update.exec(&txn).await?.rows_affected;
        if changed == 0 {
            txn.rollback().await?;
            return Ok(0);
        }
        let event = NewEvent::new(EventKind::NotificationsRead, account)
            .account(Some(account))
            .payload(json!({ "count": changed }));
        ctx.commit(txn, actor, vec![event]).await?;
        Ok(changed)
    })
}

/// What a person changes in their preferences; `None` leaves a choice as it is. The phone
/// and openid take `Some(None)` to remove them (no more SMS or WeChat messages).
#[derive(Clone, Debug, Default)]
pub struct PreferencesPatch {
    pub locale: Option<Locale>,
    pub email_kinds: Option<Vec<String>>,
    pub sms_phone: Option<Option<String>>,
    pub sms_kinds: Option<Vec<String>>,
    pub wechat_openid: Option<Option<String>>,
    pub wechat_kinds: Option<Vec<String>>,
}

fn check_kinds(field: &str, list: Option<Vec<String>>) -> AppResult<Option<Vec<EventKind>>> {
    let Some(list) = list else { return Ok(None) };
    let mut kinds = Vec::new();
    for raw in &list {
        let kind = EventKind::parse(raw.trim()).filter(|k| KINDS.contains(k)).ok_or_else(|| {
            AppError::rule(field, "UNKNOWN_NOTIFICATION_KIND", format!("{raw:?} is not a kind of notification"))
        })?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    Ok(Some(kinds))
}

/// A patch's phone or openid: `Some(Some(_))` to set (what `check` accepts), `Some(None)` (or a
/// blank one) to remove, `None` to leave as it is.
fn check_address(
    field: &str,
    given: Option<Option<String>>,
    check: fn(&str) -> Option<String>,
    what: &str,
) -> AppResult<Option<Option<String>>> {
    match given {
        Some(Some(raw)) if !raw.trim().is_empty() => match check(&raw) {
            Some(address) => Ok(Some(Some(address))),
            None => Err(AppError::bad_input(field, format!("{field} is not {what}"))),
        },
        Some(_) => Ok(Some(None)),
        None => Ok(None),
    }
}

fn names(kinds: &[EventKind]) -> Vec<&'static str> {
    kinds.iter().map(|k| k.name()).collect()
}

fn json_names(kinds: &[EventKind]) -> Option<String> {
    Some(serde_json::to_string(&names(kinds)).unwrap_or_else(|_| "[]".into()))
}

/// Command: the viewer's language, the kinds also sent by email, SMS and WeChat template
/// message, and the phone and openid those go to. The event records the choices, never the
/// phone or openid.
pub async fn update_preferences(ctx: Ctx<'_>, viewer: &Viewer, patch: PreferencesPatch) -> AppResult<Preferences> {
    let account = viewer.require_account()?.id;
    let email_kinds = check_kinds("emailKinds", patch.email_kinds)?;
    let sms_kinds = check_kinds("smsKinds", patch.sms_kinds)?;
    let wechat_kinds = check_kinds("wechatKinds", patch.wechat_kinds)?;
    let sms_phone = check_address("smsPhone", patch.sms_phone, super::channels::check_phone, "a phone number")?;
    let wechat_openid =
        check_address("wechatOpenId", patch.wechat_openid, super::channels::check_openid, "a WeChat openid")?;
    as_viewer!(viewer, |actor| async {
        let txn = ctx.db.begin().await?;
        let mut prefs = preferences(&txn, account).await?;
        if let Some(locale) = patch.locale {
            prefs.locale = locale;
        }
        for (target, given) in [
            (&mut prefs.email_kinds, &email_kinds),
            (&mut prefs.sms_kinds, &sms_kinds),
            (&mut prefs.wechat_kinds, &wechat_kinds),
        ] {
            if let Some(kinds) = given {
                *target = kinds.clone();
            }
        }
        if let Some(phone) = &sms_phone {
            prefs.sms_phone = phone.clone();
        }
        if let Some(openid) = &wechat_openid {
            prefs.wechat_openid = openid.clone();
        }
        let row = notification_setting::ActiveModel {
            account_id: Set(account),
            locale: Set(prefs.locale.as_str().to_owned()),
            email_kinds: Set(json_names(&prefs.email_kinds)),
            sms_phone: Set(prefs.sms_phone.clone()),
            sms_kinds: Set(json_names(&prefs.sms_kinds)),
            wechat_openid: Set(prefs.wechat_openid.clone()),
            wechat_kinds: Set(json_names(&prefs.wechat_kinds)),
            updated_at: Set(super::now()),
        };
        use notification_setting::Column as S;
        let chosen =
            [S::Locale, S::EmailKinds, S::SmsPhone, S::SmsKinds, S::WechatOpenid, S::WechatKinds, S::UpdatedAt];
        super::common::upsert(&txn, row, &[S::AccountId], &chosen).await?;
        let event = NewEvent::new(EventKind::NotificationPreferencesChanged, account).account(Some(account)).payload(
            json!({ "locale": prefs.locale.as_str(), "emailKinds": names(&prefs.email_kinds),
                "smsKinds": names(&prefs.sms_kinds), "wechatKinds": names(&prefs.wechat_kinds),
                "sms": prefs.sms_phone.is_some(), "wechat": prefs.wechat_openid.is_some() }),
        );
        ctx.commit(txn, actor, vec![event]).await?;
        Ok(prefs)
    })
}
