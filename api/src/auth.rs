//! Who is asking, and every rule about what they may do: one place per rule.
//!
//! A request carries at most one account (a Bearer access token) and at most one partner
//! API key (`X-Api-Key`, or a Bearer token starting with `ib_`). Accounts have global roles
//! (`ADMIN` implies every other) and per-organization memberships (`OWNER`/`EDITOR`); keys
//! have scopes.
use std::sync::{Arc, Mutex};

use entity::membership::MemberRole;

use crate::error::{AppError, AppResult};
use crate::service::identity::{ApiScope, Role};

#[derive(Clone, Debug)]
pub struct AccountViewer {
    pub id: i64,
    /// The session the access token belongs to (what "this session" is when others end).
    pub session_id: Option<i64>,
    pub email: String,
    pub display_name: String,
    pub roles: Vec<Role>,
    pub memberships: Vec<(i64, MemberRole)>,
    /// Memberships this request itself created (e.g. applying for a new organization), so
    /// the payload of that mutation already shows the viewer's role.
    pub granted: Arc<Mutex<Vec<(i64, MemberRole)>>>,
}

#[derive(Clone, Debug)]
pub struct PartnerViewer {
    pub key_id: i64,
    pub name: String,
    pub scopes: Vec<ApiScope>,
    /// A browser-safe key: public by nature, so nothing it did is "its own" to undo.
    pub publishable: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Viewer {
    pub account: Option<AccountViewer>,
    pub partner: Option<PartnerViewer>,
    /// The client's address, as the audit trail records it.
    pub address: Option<String>,
}

impl Viewer {
    pub fn anonymous() -> Self {
        Self::default()
    }

    pub fn has_role(&self, role: Role) -> bool {
        self.account.as_ref().is_some_and(|a| a.roles.contains(&Role::Admin) || a.roles.contains(&role))
    }

    pub fn is_admin(&self) -> bool {
        self.has_role(Role::Admin)
    }

    /// Federation staff who run the base: managers and admins.
    pub fn is_staff(&self) -> bool {
        self.has_role(Role::Manager)
    }

    pub fn member_role(&self, org_id: i64) -> Option<MemberRole> {
        let account = self.account.as_ref()?;
        let found = account.memberships.iter().find(|(id, _)| *id == org_id).map(|(_, role)| *role);
        found.or_else(|| {
            let granted = account.granted.lock().unwrap_or_else(|p| p.into_inner());
            granted.iter().find(|(id, _)| *id == org_id).map(|(_, role)| *role)
        })
    }

    /// Records a membership created during this request.
    pub fn grant(&self, org_id: i64, role: MemberRole) {
        if let Some(account) = &self.account {
            account.granted.lock().unwrap_or_else(|p| p.into_inner()).push((org_id, role));
        }
    }

    pub fn has_scope(&self, scope: ApiScope) -> bool {
        self.partner.as_ref().is_some_and(|p| p.scopes.contains(&scope))
    }

    /// Whether the request came with a publishable (browser) key.
    pub fn is_publishable_key(&self) -> bool {
        self.partner.as_ref().is_some_and(|p| p.publishable)
    }

    /// Registering operations is for admins, and for partners from their servers (a secret
    /// key): a publishable key is anyone's, so it could otherwise open any document to all.
    pub fn require_register_documents(&self) -> AppResult<()> {
        match &self.partner {
            Some(partner) if !partner.publishable => Ok(()),
            _ if self.is_admin() && self.partner.is_none() => Ok(()),
            _ => Err(self.deny("register trusted documents")),
        }
    }

    /// Webhook endpoints (registering, rotating secrets, reading delivery logs, redelivering):
    /// admins signed in themselves, never through a partner key.
    pub fn require_manage_webhooks(&self) -> AppResult<()> {
        self.allow(self.is_admin() && self.partner.is_none(), "manage webhooks")
    }

    pub fn require_list_documents(&self) -> AppResult<()> {
        self.require_admin("list trusted documents")
    }

    /// Staff tools (accounts the federation appointed: admins, managers, reviewers, with no
    /// partner key) may send free-form documents when trusted documents are required;
    /// everyone else, self-registered donors included, runs registered documents only.
    pub fn may_send_free_form_documents(&self) -> bool {
        self.partner.is_none() && (self.is_staff() || self.has_role(Role::Reviewer))
    }

    /// Anonymous: sign in; signed in (or a partner key) but not allowed: forbidden.
    /// `Ok` when `allowed`, else what `deny` answers.
    fn allow(&self, allowed: bool, what: &str) -> AppResult<()> {
        if allowed { Ok(()) } else { Err(self.deny(what)) }
    }

    fn deny(&self, what: &str) -> AppError {
        if self.account.is_none() && self.partner.is_none() {
            AppError::Unauthenticated
        } else {
            AppError::Forbidden(format!("not allowed to {what}").into())
        }
    }

    pub fn require_account(&self) -> AppResult<&AccountViewer> {
        self.account.as_ref().ok_or_else(|| self.deny("do this without signing in"))
    }

    // ------------------------------------------------------------ one's own account

    /// Asking for a password reset, resetting with a mailed token and verifying an address
    /// with a mailed token: anyone, signed in or not, with or without a partner key. The
    /// mailbox (and the token it received) is the proof; nothing is said about whether an
    /// address has an account.
    pub fn may_recover_account(&self) -> AppResult<()> {
        Ok(())
    }

    /// Changing one's password or email, asking for a verification mail, downloading one's
    /// data and deleting one's account: the person, signed in (a partner frontend acting for
    /// them sends their token). These act on the caller's own account only, admins included;
    /// the commands also ask for the current password where it matters.
    pub fn require_own_account(&self, what: &str) -> AppResult<&AccountViewer> {
        self.account.as_ref().ok_or_else(|| self.deny(what))
    }

    pub fn require_staff(&self, what: &str) -> AppResult<()> {
        self.allow(self.is_staff(), what)
    }

    pub fn require_admin(&self, what: &str) -> AppResult<()> {
        self.allow(self.is_admin(), what)
    }

    /// The history of an object (who did what to it): staff. The whole audit log: admins
    /// (`require_admin`).
    pub fn can_see_history(&self) -> bool {
        self.is_staff()
    }

    // ------------------------------------------------------------ organizations

    /// Staff create organizations in any starting stage; any signed-in account may apply
    /// for incubation on behalf of a new organization (and becomes its owner).
    pub fn require_create_organization(&self) -> AppResult<()> {
        self.require_account().map(|_| ())
    }

    /// The stage a new organization starts in and who owns it: staff choose the stage (and
    /// own nothing); everyone else applies (`APPLIED`) and becomes the owner.
    pub fn organization_entry(
        &self,
        requested: Option<entity::organization::Stage>,
    ) -> AppResult<(Option<entity::organization::Stage>, Option<i64>)> {
        use entity::organization::Stage;
        let account = self.require_account()?;
        if self.is_staff() {
            return Ok((requested, None));
        }
        if requested.is_some_and(|s| s != Stage::Applied) {
            return Err(AppError::Forbidden(
                "only staff add organizations to the network directly; apply with stage APPLIED".into(),
            ));
        }
        Ok((Some(Stage::Applied), Some(account.id)))
    }

    pub fn can_edit_organization(&self, org_id: i64) -> bool {
        self.is_staff() || self.member_role(org_id).is_some()
    }

    pub fn require_edit_organization(&self, org_id: i64) -> AppResult<()> {
        self.allow(self.can_edit_organization(org_id), "edit this organization")
    }

    /// Stage changes are the base's decision.
    pub fn require_change_stage(&self) -> AppResult<()> {
        self.require_staff("change an organization's stage")
    }

    pub fn can_manage_members(&self, org_id: i64) -> bool {
        self.is_admin() || self.member_role(org_id) == Some(MemberRole::Owner)
    }

    pub fn require_manage_members(&self, org_id: i64) -> AppResult<()> {
        self.allow(self.can_manage_members(org_id), "manage this organization's members")
    }

    /// Phone numbers and emails of people: staff and the organization's own members.
    pub fn can_see_private_contact(&self, org_id: i64) -> bool {
        self.can_edit_organization(org_id)
    }

    // ------------------------------------------------------------ venture philanthropy

    /// Rounds, reviewer assignments and award decisions are the base's.
    pub fn require_manage_grants(&self) -> AppResult<()> {
        self.require_staff("manage grant rounds, reviewers and awards")
    }

    /// An organization's proposals are written by its members (and by staff on its behalf).
    pub fn require_write_proposal(&self, org_id: i64) -> AppResult<()> {
        if self.can_edit_organization(org_id) {
            Ok(())
        } else {
            Err(self.deny("write proposals for this organization"))
        }
    }

    /// Staff, the organization's members, and reviewers assigned to the proposal.
    pub fn can_read_proposal(&self, org_id: i64, assigned_reviewer: bool) -> bool {
        self.can_edit_organization(org_id) || assigned_reviewer
    }

    /// Scoring needs the REVIEWER role; the assignment itself is checked by the service.
    pub fn require_reviewer(&self) -> AppResult<&AccountViewer> {
        match &self.account {
            Some(account) if self.has_role(Role::Reviewer) => Ok(account),
            _ => Err(self.deny("review proposals")),
        }
    }

    /// Who scored what, the ranking and the spread: staff only. Organizations never see it.
    pub fn can_see_reviews(&self) -> bool {
        self.is_staff()
    }

    pub fn require_see_ranking(&self) -> AppResult<()> {
        self.require_staff("see the ranking of a round")
    }

    // ------------------------------------------------------------ funded projects and impact

    /// Creating projects and paying tranches: staff.
    pub fn require_manage_projects(&self) -> AppResult<()> {
        self.require_staff("manage funded projects and their disbursements")
    }

    /// Goals, progress and service records: the organization running the project, and staff.
    pub fn require_report_on_project(&self, org_id: i64) -> AppResult<()> {
        self.allow(self.can_edit_organization(org_id), "report on this project")
    }

    /// The disbursement ledger: staff and the organization's members.
    pub fn can_see_disbursements(&self, org_id: i64) -> bool {
        self.can_edit_organization(org_id)
    }

    /// The impact report download (the dashboard query itself is public).
    pub fn require_impact_report(&self) -> AppResult<()> {
        self.require_staff("download the impact report")
    }
}

impl Viewer {
    // ------------------------------------------------------------ crowdfunding

    /// Campaigns are run by their organization's members (owners and editors) and by staff.
    pub fn can_manage_campaigns_of(&self, org_id: i64) -> bool {
        self.can_edit_organization(org_id)
    }

    pub fn require_manage_campaigns_of(&self, org_id: i64) -> AppResult<()> {
        self.allow(self.can_manage_campaigns_of(org_id), "run this organization's campaigns")
    }

    /// Approving, rejecting and ending campaigns is the base's decision.
    pub fn require_review_campaign(&self) -> AppResult<()> {
        self.require_staff("review or end campaigns")
    }

    /// Any signed-in account gives as itself; a partner key with DONATE records guests'
    /// donations. Anonymous callers cannot: a pledge needs someone who owns its client key.
    pub fn require_donate(&self) -> AppResult<()> {
        self.allow(self.account.is_some() || self.has_scope(ApiScope::Donate), "donate")
    }

    /// Recording a guest's offline gift (bank transfer, cash) instead of one's own: staff.
    pub fn require_record_guest_donation(&self) -> AppResult<()> {
        self.require_staff("record donations on behalf of guests")
    }

    /// Confirming (after the money arrived), refunding and reading every donor's details:
    /// staff, or a partner key with RECONCILE (the finance system after reconciliation).
    pub fn can_reconcile_donations(&self) -> bool {
        self.is_staff() || self.has_scope(ApiScope::Reconcile)
    }

    pub fn require_reconcile_donations(&self) -> AppResult<()> {
        self.allow(self.can_reconcile_donations(), "confirm or refund donations")
    }

    /// A pledge may be cancelled by whoever reconciles, and by the donor who made it.
    pub fn require_cancel_donation(&self, donor_account_id: Option<i64>) -> AppResult<()> {
        let own = donor_account_id.is_some() && self.account.as_ref().map(|a| a.id) == donor_account_id;
        self.allow(own || self.can_reconcile_donations(), "cancel this donation")
    }
    // ------------------------------------------------------------ events

    /// Staff, and members of the organizer organization, run an event: create, edit,
    /// publish/cancel/complete, decide registrations, check in, see registrants and their
    /// identity documents.
    pub fn can_manage_event(&self, organizer_id: i64) -> bool {
        self.is_staff() || self.member_role(organizer_id).is_some()
    }

    pub fn require_manage_event(&self, organizer_id: i64) -> AppResult<()> {
        self.allow(self.can_manage_event(organizer_id), "run this organization's events")
    }

    /// Any signed-in account registers itself; a partner key with REGISTER registers named
    /// guests.
    pub fn require_register(&self) -> AppResult<()> {
        if self.account.is_some() || self.has_scope(ApiScope::Register) {
            Ok(())
        } else {
            Err(self.deny("register for events"))
        }
    }

    /// The registrant (the account, or the partner key that registered the guest) and the
    /// event's organizers may cancel a registration.
    pub fn can_cancel_registration(
        &self,
        organizer_id: i64,
        registrant_account: Option<i64>,
        registering_key: Option<i64>,
    ) -> bool {
        let own_account = registrant_account.is_some_and(|id| self.account.as_ref().is_some_and(|a| a.id == id));
        // A publishable key is in every visitor's hands: its guests' registrations are not
        // anyone's to cancel through it.
        let own_key = registering_key.is_some_and(|id| {
            self.has_scope(ApiScope::Register)
                && self.partner.as_ref().is_some_and(|p| p.key_id == id && !p.publishable)
        });
        own_account || own_key || self.can_manage_event(organizer_id)
    }

    pub fn require_cancel_registration(
        &self,
        organizer_id: i64,
        registrant_account: Option<i64>,
        registering_key: Option<i64>,
    ) -> AppResult<()> {
        if self.can_cancel_registration(organizer_id, registrant_account, registering_key) {
            Ok(())
        } else {
            Err(self.deny("cancel this registration"))
        }
    }
    // ------------------------------------------------------------ spaces and bookings

    /// Spaces are the base's: managers and admins describe them.
    pub fn require_manage_spaces(&self) -> AppResult<()> {
        self.require_staff("manage spaces")
    }

    /// Any signed-in account books for itself, or for an organization it is a member of;
    /// staff book for anyone. Partner keys alone cannot book.
    pub fn require_book(&self, for_organization: Option<i64>) -> AppResult<&AccountViewer> {
        let account = self.account.as_ref().ok_or_else(|| self.deny("book spaces"))?;
        match for_organization {
            Some(org) if !self.is_staff() && self.member_role(org).is_none() => {
                Err(self.deny("book for an organization you are not a member of"))
            }
            _ => Ok(account),
        }
    }

    /// Approving and rejecting requests, and the queue of requests, are the managers'.
    pub fn require_decide_bookings(&self) -> AppResult<&AccountViewer> {
        self.require_staff("decide booking requests")?;
        self.require_account()
    }

    /// A space that is lent with the base's approval is set as an event's venue (or its
    /// reservation moved) by those who approve bookings; an organizer asks them.
    pub fn may_reserve_without_approval(&self) -> bool {
        self.is_staff()
    }

    /// The requester or staff.
    pub fn can_cancel_booking(&self, booked_by: i64) -> bool {
        self.is_staff() || self.account.as_ref().is_some_and(|a| a.id == booked_by)
    }

    pub fn require_cancel_booking(&self, booked_by: i64) -> AppResult<&AccountViewer> {
        if self.can_cancel_booking(booked_by) { self.require_account() } else { Err(self.deny("cancel this booking")) }
    }

    /// Who booked, and a booking's status reason: the requester and staff.
    pub fn can_see_booking_details(&self, booked_by: i64) -> bool {
        self.can_cancel_booking(booked_by)
    }

    /// Internal manager notes: staff only.
    pub fn can_see_manager_notes(&self) -> bool {
        self.is_staff()
    }
}
