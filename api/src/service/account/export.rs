//! Downloading one's data.
#[allow(unused_imports)]
use super::*;
use crate::service::common::by_id;
use sea_orm::Order;

/// The person's rows of `owner`'s table (`owner` is the account) in `order`, at most one more
/// than exported.
async fn own_rows<C>(
    db: &impl ConnectionTrait,
    owner: C,
    account_id: i64,
    (column, order): (C, sea_orm::Order),
) -> AppResult<Vec<<C::EntityName as EntityTrait>::Model>>
where
    C: ColumnTrait,
    C::EntityName: EntityTrait<Column = C>,
{
    let query = <C::EntityName as EntityTrait>::find().filter(owner.eq(account_id)).order_by(column, order);
    Ok(query.limit(EXPORT_LIMIT + 1).all(db).await?)
}

/// The name (`name_of`) of each row by its id.
fn names<M>(rows: HashMap<i64, M>, name_of: impl Fn(M) -> String) -> HashMap<i64, String> {
    rows.into_iter().map(|(id, row)| (id, name_of(row))).collect()
}

/// The signed-in person's data as JSON: profile, notification choices, memberships,
/// registrations, bookings and donations (at most `EXPORT_LIMIT` of each, newest first, with
/// `truncated` saying so). Nothing of anyone else: only rows that are the person's own.
pub async fn export(db: &impl ConnectionTrait, viewer: &Viewer) -> AppResult<Value> {
    let me = viewer.require_own_account("download your data")?;
    let account = live_account(db, me.id).await?;
    let prefs = crate::service::notifications::preferences(db, account.id).await?;

    let order = (membership::Column::OrganizationId, Order::Asc);
    let memberships = own_rows(db, membership::Column::AccountId, account.id, order).await?;
    let org_ids = memberships.iter().map(|m| m.organization_id);
    let orgs = names(by_id(db, organization::Column::Id, org_ids, |o| o.id).await?, |o| o.name);

    let order = (registration::Column::Id, Order::Desc);
    let registrations = own_rows(db, registration::Column::AccountId, account.id, order).await?;
    let event_ids: HashSet<i64> = registrations.iter().map(|r| r.event_id).collect();
    let events = by_id(db, event::Column::Id, event_ids, |e| e.id).await?;

    let order = (booking::Column::Id, Order::Desc);
    let bookings = own_rows(db, booking::Column::BookedByAccountId, account.id, order).await?;
    let space_ids: HashSet<i64> = bookings.iter().map(|b| b.space_id).collect();
    let spaces = names(by_id(db, space::Column::Id, space_ids, |s| s.id).await?, |s| s.name);

    let order = (donation::Column::Id, Order::Desc);
    let donations = own_rows(db, donation::Column::DonorAccountId, account.id, order).await?;
    let campaign_ids: HashSet<i64> = donations.iter().map(|d| d.campaign_id).collect();
    let campaigns = names(by_id(db, campaign::Column::Id, campaign_ids, |c| c.id).await?, |c| c.title);

    let limit = EXPORT_LIMIT as usize;
    let truncated =
        [memberships.len(), registrations.len(), bookings.len(), donations.len()].iter().any(|n| *n > limit);
    let kinds: Vec<&str> = prefs.email_kinds.iter().map(|k| k.name()).collect();
    Ok(json!({
        "exportedAt": super::now(),
        "truncated": truncated,
        "profile": {
            "id": account.id,
            "email": account.email,
            "emailVerifiedAt": account.email_verified_at,
            "displayName": account.display_name,
            "roles": identity::Role::parse_list(&account.roles).iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            "createdAt": account.created_at,
            "locale": prefs.locale.as_str(),
            "emailKinds": kinds,
            "smsPhone": prefs.sms_phone,
            "smsKinds": prefs.sms_kinds.iter().map(|k| k.name()).collect::<Vec<_>>(),
            "wechatOpenId": prefs.wechat_openid,
            "wechatKinds": prefs.wechat_kinds.iter().map(|k| k.name()).collect::<Vec<_>>(),
        },
        "memberships": memberships.iter().take(limit).map(|m| json!({
            "organizationId": m.organization_id,
            "organization": orgs.get(&m.organization_id),
            "role": m.role.to_value(),
            "since": m.created_at,
        })).collect::<Vec<_>>(),
        "registrations": registrations.iter().take(limit).map(|r| {
            let e = events.get(&r.event_id);
            json!({
                "id": r.id,
                "eventId": r.event_id,
                "event": e.map(|e| e.title.clone()),
                "eventStartsAt": e.map(|e| e.starts_at),
                "status": r.status.to_value(),
                "name": r.name,
                "phone": r.phone,
                "partySize": r.party_size,
                "women": r.women,
                "children": r.children,
                "familyMembers": r.family_members,
                "professionals": r.professionals,
                "answers": serde_json::from_str::<Value>(&r.answers).unwrap_or(Value::Null),
                "consentAt": r.consent_at,
                "registeredAt": r.queued_at,
                "ticketCode": r.ticket_code,
                "checkedInAt": r.checked_in_at,
                "identityDocumentType": r.id_doc_type.map(|t| t.to_value()),
                // Masked as everywhere else: the number itself is not handed out again.
                "identityDocumentNumber": r.id_doc_number.as_deref().map(crate::service::event::mask),
                "cancelledAt": r.cancelled_at,
            })
        }).collect::<Vec<_>>(),
        "bookings": bookings.iter().take(limit).map(|b| json!({
            "id": b.id,
            "spaceId": b.space_id,
            "space": spaces.get(&b.space_id),
            "organizationId": b.organization_id,
            "purpose": b.purpose,
            "attendees": b.attendees,
            "startsAt": b.starts_at,
            "endsAt": b.ends_at,
            "status": b.status.to_value(),
            "statusReason": b.status_reason,
            "createdAt": b.created_at,
        })).collect::<Vec<_>>(),
        "donations": donations.iter().take(limit).map(|d| json!({
            "id": d.id,
            "campaignId": d.campaign_id,
            "campaign": campaigns.get(&d.campaign_id),
            "amountFen": d.amount_fen,
            "channel": d.channel.to_value(),
            "status": d.status.to_value(),
            "donorName": d.donor_name,
            "displayMode": d.display_mode.to_value(),
            "message": d.message,
            "receiptNumber": d.receipt_number,
            "refundOfId": d.refund_of_id,
            "confirmedAt": d.confirmed_at,
            "createdAt": d.created_at,
        })).collect::<Vec<_>>(),
    }))
}
