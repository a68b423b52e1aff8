//! The signed-in person's inbox in the schema (`viewer.notifications`) and its commands.
use crate::graphql::common::payload;
use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, Result, ResultExt, SimpleObject};
use chrono::{DateTime, Utc};
use entity::notification;

use super::connection::{self, PagedConnection};
use super::identity::viewer;
use super::ids;
use super::state;
use crate::service::notifications::{self as service, Locale};
use crate::service::pagination::PageArgs;

pub use super::ids::NOTIFICATION;

/// Something that happened which concerns the signed-in person, in their language.
pub struct Notification(pub notification::Model);

#[Object]
impl Notification {
    pub async fn id(&self) -> ID {
        ids::encode(NOTIFICATION, self.0.id)
    }

    /// The event's type (`registration.promoted`, `donation.confirmed`, …).
    async fn kind(&self) -> &str {
        &self.0.kind
    }

    async fn title(&self) -> &str {
        &self.0.title
    }

    async fn body(&self) -> &str {
        &self.0.body
    }

    /// The global ID of what it is about (a Registration, Event, Booking, Donation, …).
    async fn subject_id(&self) -> ID {
        ids::encode(&self.0.subject_type, self.0.subject_id)
    }

    async fn subject_type(&self) -> &str {
        &self.0.subject_type
    }

    async fn read(&self) -> bool {
        self.0.read_at.is_some()
    }

    async fn read_at(&self) -> Option<DateTime<Utc>> {
        self.0.read_at
    }

    /// Whether it also went by email: `NONE` (not asked for, or no SMTP), `PENDING`, `SENT`,
    /// `FAILED`.
    async fn email_status(&self) -> &str {
        &self.0.email_status
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum NotificationLocale {
    /// 简体中文
    ZhHans,
    /// 繁體中文
    ZhHant,
}

impl From<Locale> for NotificationLocale {
    fn from(l: Locale) -> Self {
        match l {
            Locale::Hans => Self::ZhHans,
            Locale::Hant => Self::ZhHant,
        }
    }
}

impl From<NotificationLocale> for Locale {
    fn from(l: NotificationLocale) -> Self {
        match l {
            NotificationLocale::ZhHans => Locale::Hans,
            NotificationLocale::ZhHant => Locale::Hant,
        }
    }
}

#[derive(SimpleObject)]
pub struct NotificationPreferences {
    /// The script of notifications and emails.
    pub locale: NotificationLocale,
    /// Kinds that also go by email (when the server sends email).
    pub email_kinds: Vec<String>,
    /// The phone SMS go to (relayed by the partner that sends them); `null`: no SMS.
    pub sms_phone: Option<String>,
    /// Kinds that also go by SMS once `smsPhone` is set (every kind by default).
    pub sms_kinds: Vec<String>,
    /// The WeChat openid template messages go to; `null`: none.
    pub wechat_open_id: Option<String>,
    /// Kinds that also go as WeChat template messages once `wechatOpenId` is set.
    pub wechat_kinds: Vec<String>,
    /// Every kind of notification there is.
    pub available_kinds: Vec<String>,
}

impl From<service::Preferences> for NotificationPreferences {
    fn from(p: service::Preferences) -> Self {
        NotificationPreferences {
            locale: p.locale.into(),
            email_kinds: p.email_kinds.iter().map(|k| k.name().to_owned()).collect(),
            sms_phone: p.sms_phone.clone(),
            sms_kinds: p.sms_kinds.iter().map(|k| k.name().to_owned()).collect(),
            wechat_open_id: p.wechat_openid.clone(),
            wechat_kinds: p.wechat_kinds.iter().map(|k| k.name().to_owned()).collect(),
            available_kinds: service::KINDS.iter().map(|k| k.name().to_owned()).collect(),
        }
    }
}

pub async fn inbox(ctx: &Context<'_>, unread_only: bool, args: PageArgs) -> Result<PagedConnection<Notification>> {
    connection::list(ctx, args, Notification, async |db, page| service::inbox(db, viewer(ctx), unread_only, page).await)
        .await
}

pub async fn unread(ctx: &Context<'_>) -> Result<u64> {
    service::unread_count(&state(ctx)?.db, viewer(ctx)).await.extend()
}

pub async fn preferences(ctx: &Context<'_>) -> Result<NotificationPreferences> {
    let account = viewer(ctx).require_account().extend()?.id;
    Ok(service::preferences(&state(ctx)?.db, account).await.extend()?.into())
}

#[derive(InputObject)]
pub struct MarkNotificationsReadInput {
    /// The notifications to mark (up to 100); omitted: all of them.
    pub ids: Option<Vec<ID>>,
}

#[derive(SimpleObject)]
pub struct MarkNotificationsReadPayload {
    /// How many were unread and are read now.
    pub marked: u64,
    pub unread_count: u64,
}

#[derive(InputObject)]
pub struct UpdateNotificationPreferencesInput {
    pub locale: Option<NotificationLocale>,
    /// Kinds that also go by email (an empty list: none).
    pub email_kinds: Option<Vec<String>>,
    /// The phone SMS go to; `null` removes it (no more SMS).
    pub sms_phone: MaybeUndefined<String>,
    /// Kinds that also go by SMS (an empty list: none).
    pub sms_kinds: Option<Vec<String>>,
    /// The WeChat openid template messages go to (the partner's mini-program or official
    /// account gives it); `null` removes it.
    pub wechat_open_id: MaybeUndefined<String>,
    /// Kinds that also go as WeChat template messages (an empty list: none).
    pub wechat_kinds: Option<Vec<String>>,
}

payload!(UpdateNotificationPreferencesPayload { preferences: NotificationPreferences });

#[derive(Default)]
pub struct NotificationMutation;

#[Object]
impl NotificationMutation {
    /// Marks the signed-in person's notifications read.
    async fn mark_notifications_read(
        &self,
        ctx: &Context<'_>,
        input: MarkNotificationsReadInput,
    ) -> Result<MarkNotificationsReadPayload> {
        let ids = input.ids.map(|list| ids::decode_all(&list, NOTIFICATION, "ids")).transpose()?;
        let state = state(ctx)?;
        let marked = service::mark_read(state.ctx(), viewer(ctx), ids).await.extend()?;
        let unread_count = service::unread_count(&state.db, viewer(ctx)).await.extend()?;
        Ok(MarkNotificationsReadPayload { marked, unread_count })
    }

    /// The signed-in person's language (zh-Hans or zh-Hant), which kinds also go by email, SMS
    /// and WeChat template message, and the phone and openid those go to.
    async fn update_notification_preferences(
        &self,
        ctx: &Context<'_>,
        input: UpdateNotificationPreferencesInput,
    ) -> Result<UpdateNotificationPreferencesPayload> {
        let state = state(ctx)?;
        let patch = service::PreferencesPatch {
            locale: input.locale.map(Into::into),
            email_kinds: input.email_kinds,
            sms_phone: input.sms_phone.into(),
            sms_kinds: input.sms_kinds,
            wechat_openid: input.wechat_open_id.into(),
            wechat_kinds: input.wechat_kinds,
        };
        let prefs = service::update_preferences(state.ctx(), viewer(ctx), patch).await.extend()?;
        Ok(UpdateNotificationPreferencesPayload { preferences: prefs.into() })
    }
}
