//! Who is asking, and every rule about what they may do: one place per rule.
//!
//! A request carries at most one account (a Bearer access token) and at most one partner
//! API key (`X-Api-Key`, or a Bearer token starting with `ib_`). Accounts have global roles
//! (`ADMIN` implies every other) and per-organization memberships (`OWNER`/`EDITOR`); keys
//! have scopes.
use entity::membership::MemberRole;

use crate::error::{AppError, AppResult};
use crate::service::identity::{ApiScope, Role};

#[derive(Clone, Debug)]
pub struct AccountViewer {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    pub roles: Vec<Role>,
    pub memberships: Vec<(i64, MemberRole)>,
}

#[derive(Clone, Debug)]
pub struct PartnerViewer {
    pub key_id: i64,
    pub name: String,
    pub scopes: Vec<ApiScope>,
}

#[derive(Clone, Debug, Default)]
pub struct Viewer {
    pub account: Option<AccountViewer>,
    pub partner: Option<PartnerViewer>,
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
        self.account.as_ref()?.memberships.iter().find(|(id, _)| *id == org_id).map(|(_, role)| *role)
    }

    pub fn has_scope(&self, scope: ApiScope) -> bool {
        self.partner.as_ref().is_some_and(|p| p.scopes.contains(&scope))
    }

    /// Anonymous: sign in; signed in (or a partner key) but not allowed: forbidden.
    fn deny(&self, what: &str) -> AppError {
        if self.account.is_none() && self.partner.is_none() {
            AppError::Unauthenticated
        } else {
            AppError::Forbidden(format!("not allowed to {what}"))
        }
    }

    pub fn require_account(&self) -> AppResult<&AccountViewer> {
        self.account.as_ref().ok_or_else(|| self.deny("do this without signing in"))
    }

    pub fn require_staff(&self, what: &str) -> AppResult<()> {
        if self.is_staff() { Ok(()) } else { Err(self.deny(what)) }
    }

    pub fn require_admin(&self, what: &str) -> AppResult<()> {
        if self.is_admin() { Ok(()) } else { Err(self.deny(what)) }
    }

    // ------------------------------------------------------------ organizations

    /// Staff create organizations in any starting stage; any signed-in account may apply
    /// for incubation on behalf of a new organization (and becomes its owner).
    pub fn require_create_organization(&self) -> AppResult<()> {
        self.require_account().map(|_| ())
    }

    pub fn can_edit_organization(&self, org_id: i64) -> bool {
        self.is_staff() || self.member_role(org_id).is_some()
    }

    pub fn require_edit_organization(&self, org_id: i64) -> AppResult<()> {
        if self.can_edit_organization(org_id) { Ok(()) } else { Err(self.deny("edit this organization")) }
    }

    /// Stage changes are the base's decision.
    pub fn require_change_stage(&self) -> AppResult<()> {
        self.require_staff("change an organization's stage")
    }

    pub fn can_manage_members(&self, org_id: i64) -> bool {
        self.is_admin() || self.member_role(org_id) == Some(MemberRole::Owner)
    }

    pub fn require_manage_members(&self, org_id: i64) -> AppResult<()> {
        if self.can_manage_members(org_id) { Ok(()) } else { Err(self.deny("manage this organization's members")) }
    }

    /// Phone numbers and emails of people: staff and the organization's own members.
    pub fn can_see_private_contact(&self, org_id: i64) -> bool {
        self.can_edit_organization(org_id)
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
