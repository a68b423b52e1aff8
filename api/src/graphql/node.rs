//! The Relay `Node` interface with `node(id:)` and `nodes(ids:)`.
use async_graphql::{Context, ID, Interface, Object, Result, ResultExt};

use std::collections::HashMap;

use super::crowdfunding::{Campaign, Donation};
use super::event::Registration;
use super::grants::{GrantProposal, GrantRound};
use super::identity::Account;
use super::ids;
use super::loaders::Loaders;
use super::notifications::Notification;
use super::organization::Organization;
use super::payments::PaymentNotification;
use super::projects::ServiceProject;
use super::space::{Booking, Space};
use super::statements::StatementImport;
use super::webhooks::WebhookEndpoint;
use crate::error::AppError;
use crate::service::common::by_id;
use async_graphql::ErrorExtensions;
use entity::notification::Column as NotificationColumn;
use entity::payment_notification::Column as PaymentColumn;
use entity::statement_import::Column as StatementImportColumn;
use entity::webhook_endpoint::Column as EndpointColumn;

pub const MAX_NODES: usize = 100;

#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "Opaque global identifier."))]
pub enum Node {
    Organization(Organization),
    Campaign(Campaign),
    GrantRound(GrantRound),
    ServiceProject(ServiceProject),
    Training(super::event::Training),
    Exhibition(super::event::Exhibition),
    Salon(super::event::Salon),
    PromotionEvent(super::event::PromotionEvent),
    ExchangeEvent(super::event::ExchangeEvent),
    TrainingProgramme(super::event::TrainingProgramme),
    Space(Space),
    Booking(Booking),
    Donation(Donation),
    Registration(Registration),
    GrantProposal(GrantProposal),
    Account(Account),
    StatementImport(StatementImport),
    PaymentNotification(PaymentNotification),
    WebhookEndpoint(WebhookEndpoint),
    Notification(Notification),
}

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// Any object by its global ID; `null` when it does not exist or the viewer may not see
    /// it — each type with the visibility of its own queries: a donation for its donor, staff
    /// and reconciling partners; a registration for its registrant and the event's organizers;
    /// a proposal for staff, its organization's members and its assigned reviewers; an account
    /// for itself and admins; a statement import or payment notification for staff and
    /// reconciling partners; a webhook endpoint for admins; a notification for its recipient.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Node>> {
        let found = load_nodes(ctx, std::slice::from_ref(&id)).await?;
        Ok(found.into_iter().next().flatten())
    }

    /// Many objects by global ID, in the order asked; `null` for those that do not exist or
    /// the viewer may not see (as `node`).
    async fn nodes(&self, ctx: &Context<'_>, ids: Vec<ID>) -> Result<Vec<Option<Node>>> {
        if ids.len() > MAX_NODES {
            return Err(AppError::bad_input("ids", format!("at most {MAX_NODES} ids")).extend());
        }
        load_nodes(ctx, &ids).await
    }
}

async fn load_nodes(ctx: &Context<'_>, global_ids: &[ID]) -> Result<Vec<Option<Node>>> {
    let loaders = Loaders::of(ctx)?;
    let mut parsed = Vec::with_capacity(global_ids.len());
    for id in global_ids {
        let (type_name, row) = ids::parse(id)
            .ok_or_else(|| AppError::bad_input("id", format!("`{}` is not a valid ID", id.as_str())).extend())?;
        parsed.push((type_name, row));
    }
    let row_ids = |name: &str| -> Vec<i64> { parsed.iter().filter(|(t, _)| t == name).map(|(_, r)| *r).collect() };
    let orgs = loaders.organization.get_many(row_ids(ids::ORGANIZATION)).await?;
    let campaigns = loaders.campaign.get_many(row_ids(ids::CAMPAIGN)).await?;
    let viewer = super::identity::viewer(ctx);
    let rounds = loaders.grant_round.get_many(row_ids(ids::ROUND)).await?;
    let projects = loaders.service_project.get_many(row_ids(ids::PROJECT)).await?;
    let events = loaders.event.get_many(row_ids(ids::EVENT)).await?;
    let programmes = loaders.programme.get_many(row_ids(ids::PROGRAMME)).await?;
    let found_spaces = loaders.space.get_many(row_ids(ids::SPACE)).await?;
    let found_bookings = loaders.booking.get_many(row_ids(ids::BOOKING)).await?;
    let state = super::state(ctx)?;
    // Donations: their donor, staff and reconciling partners (as `myDonations` and `Campaign.donations`).
    let donation_ids = row_ids(ids::DONATION);
    let donations: HashMap<i64, entity::donation::Model> = if donation_ids.is_empty() {
        HashMap::new()
    } else {
        crate::service::crowdfunding::donations_by_ids(&state.db, &donation_ids)
            .await
            .extend()?
            .into_iter()
            .filter(|d| viewer.can_reconcile_donations() || own(viewer, d.donor_account_id))
            .map(|d| (d.id, d))
            .collect()
    };
    // Registrations: their registrant and the event's organizers (as `myRegistrations` and
    // `Event.registrations`).
    let registration_ids = row_ids(ids::REGISTRATION);
    let mut registrations: HashMap<i64, entity::registration::Model> = HashMap::new();
    if !registration_ids.is_empty() {
        let rows = crate::service::event::registrations_by_ids(&state.db, &registration_ids).await.extend()?;
        let event_rows = loaders.event.get_many(rows.iter().map(|r| r.event_id).collect()).await?;
        for r in rows {
            let organizes = event_rows.get(&r.event_id).is_some_and(|e| viewer.can_manage_event(e.organizer_id));
            if organizes || own(viewer, r.account_id) {
                registrations.insert(r.id, r);
            }
        }
    }
    // Proposals: as `grantProposal(id:)`.
    let proposal_ids = row_ids(ids::PROPOSAL);
    let mut proposals: HashMap<i64, GrantProposal> = HashMap::new();
    if !proposal_ids.is_empty() {
        let records = loaders.grant_proposal.get_many(proposal_ids).await?;
        for (id, record) in records {
            if let Some(p) = super::grants::readable_proposal(ctx, record).await? {
                proposals.insert(id, p);
            }
        }
    }
    // Accounts: the account itself and admins (who see them whole).
    let account_ids: Vec<i64> =
        row_ids(ids::ACCOUNT).into_iter().filter(|id| viewer.is_admin() || own(viewer, Some(*id))).collect();
    let accounts = if account_ids.is_empty() { HashMap::new() } else { loaders.account.get_many(account_ids).await? };
    // Records of the base's tools, each as its own list shows them: statement imports and
    // payment notifications for staff and reconciling partners, webhook endpoints for admins
    // signed in themselves, a notification for the person it is for.
    // (`by_id` sends no statement for no ids; a viewer who may not see a kind asks for none.)
    let allowed = |kind: &str, may: bool| if may { row_ids(kind) } else { Vec::new() };
    let reconciles = viewer.can_reconcile_donations();
    let imports = allowed(ids::STATEMENT_IMPORT, reconciles);
    let imports = by_id(&state.db, StatementImportColumn::Id, imports, |i| i.id).await.extend()?;
    let payments = allowed(ids::PAYMENT_NOTIFICATION, reconciles);
    let payments = by_id(&state.db, PaymentColumn::Id, payments, |p| p.id).await.extend()?;
    let endpoints = allowed(ids::ENDPOINT, viewer.require_manage_webhooks().is_ok());
    let endpoints = by_id(&state.db, EndpointColumn::Id, endpoints, |e| e.id).await.extend()?;
    let inbox = allowed(ids::NOTIFICATION, viewer.account.is_some());
    let mut inbox = by_id(&state.db, NotificationColumn::Id, inbox, |n| n.id).await.extend()?;
    inbox.retain(|_, n| own(viewer, Some(n.account_id)));
    // Confirmed bookings are on the public calendar; the others only for the requester and staff.
    let visible = |b: &entity::booking::Model| {
        b.status == entity::booking::BookingStatus::Confirmed || viewer.can_see_booking_details(b.booked_by_account_id)
    };
    Ok(parsed
        .into_iter()
        .map(|(type_name, row)| match type_name.as_str() {
            ids::ORGANIZATION => orgs.get(&row).cloned().map(|r| Node::Organization(Organization(r))),
            ids::CAMPAIGN => campaigns
                .get(&row)
                .filter(|r| super::crowdfunding::visible(viewer, r))
                .cloned()
                .map(|r| Node::Campaign(Campaign(r))),
            ids::ROUND => rounds.get(&row).cloned().map(|r| Node::GrantRound(GrantRound(r))),
            ids::PROJECT => projects.get(&row).cloned().map(|r| Node::ServiceProject(ServiceProject(r))),
            ids::EVENT => events
                .get(&row)
                .filter(|e| e.status != entity::event::EventStatus::Draft || viewer.can_manage_event(e.organizer_id))
                .cloned()
                .map(|e| super::event::Event::from_model(e).into()),
            ids::PROGRAMME => {
                programmes.get(&row).cloned().map(|p| Node::TrainingProgramme(super::event::TrainingProgramme(p)))
            }
            ids::SPACE => found_spaces.get(&row).cloned().map(|r| Node::Space(Space(r))),
            ids::BOOKING => found_bookings.get(&row).filter(|b| visible(b)).cloned().map(|b| Node::Booking(Booking(b))),
            ids::DONATION => donations.get(&row).cloned().map(|d| Node::Donation(Donation(d))),
            ids::REGISTRATION => registrations.get(&row).cloned().map(|r| Node::Registration(Registration(r))),
            ids::PROPOSAL => proposals.remove(&row).map(Node::GrantProposal),
            ids::ACCOUNT => accounts.get(&row).cloned().map(|a| Node::Account(Account(a))),
            ids::STATEMENT_IMPORT => imports.get(&row).cloned().map(|i| Node::StatementImport(StatementImport(i))),
            ids::PAYMENT_NOTIFICATION => {
                payments.get(&row).cloned().map(|p| Node::PaymentNotification(PaymentNotification(p)))
            }
            ids::ENDPOINT => endpoints.get(&row).cloned().map(|e| Node::WebhookEndpoint(WebhookEndpoint(e))),
            ids::NOTIFICATION => inbox.get(&row).cloned().map(|n| Node::Notification(Notification(n))),
            _ => None,
        })
        .collect())
}

/// Whether `owner` is the signed-in viewer.
fn own(viewer: &crate::auth::Viewer, owner: Option<i64>) -> bool {
    matches!((&viewer.account, owner), (Some(a), Some(o)) if a.id == o)
}
