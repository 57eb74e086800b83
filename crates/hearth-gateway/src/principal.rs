//! Who is calling: the role, the tenant, and the limits that apply to them.

use std::fmt;

/// What a key may do. Ordered: each role can do everything the ones below it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Read-only: list models, read usage and metrics.
    Reader,
    /// Use models and the tenant's resources.
    Member,
    /// Everything, including keys, tenants and model management.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "reader" => Some(Role::Reader),
            "member" => Some(Role::Member),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Limits of one kind of holder (a key, a tenant); `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    pub requests_per_minute: Option<u64>,
    pub tokens_per_minute: Option<u64>,
    pub max_concurrent: Option<u64>,
    pub tokens_per_day: Option<u64>,
    pub tokens_per_month: Option<u64>,
    /// Spending per month (UTC), in millionths of a US dollar, from the price table.
    pub budget_micro_usd_per_month: Option<u64>,
}

impl Limits {
    /// `self`, with each unset limit taken from `defaults`.
    pub fn or(self, defaults: Limits) -> Limits {
        Limits {
            requests_per_minute: self.requests_per_minute.or(defaults.requests_per_minute),
            tokens_per_minute: self.tokens_per_minute.or(defaults.tokens_per_minute),
            max_concurrent: self.max_concurrent.or(defaults.max_concurrent),
            tokens_per_day: self.tokens_per_day.or(defaults.tokens_per_day),
            tokens_per_month: self.tokens_per_month.or(defaults.tokens_per_month),
            budget_micro_usd_per_month: self
                .budget_micro_usd_per_month
                .or(defaults.budget_micro_usd_per_month),
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub key_id: String,
    /// The key's visible prefix, safe to log and to name in the audit trail.
    pub key_prefix: String,
    /// `None` for an instance key, which belongs to no tenant and administers all of them.
    pub tenant_id: Option<String>,
    pub tenant_name: Option<String>,
    /// The user of the tenant the key was issued to, if any; usage records name it.
    pub user_id: Option<String>,
    pub role: Role,
    /// Scopes the key is limited to; empty means all its role allows.
    pub scopes: Vec<String>,
    pub key_limits: Limits,
    pub tenant_limits: Limits,
}

impl Principal {
    pub fn has_role(&self, needed: Role) -> bool {
        self.role >= needed
    }

    /// Whether this caller may administer the tenant `tenant_id` (`None`: instance-wide
    /// things, such as tenants themselves).
    pub fn administers(&self, tenant_id: Option<&str>) -> bool {
        if self.role != Role::Admin {
            return false;
        }
        match (&self.tenant_id, tenant_id) {
            (None, _) => true,
            (Some(own), Some(other)) => own == other,
            (Some(_), None) => false,
        }
    }

    /// Whether the key's scopes allow `scope` (e.g. `models`, `admin`). A key without scopes
    /// has every scope.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.is_empty() || self.scopes.iter().any(|own| own == scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role, tenant: Option<&str>) -> Principal {
        Principal {
            key_id: "k".to_owned(),
            key_prefix: "hk_00000000".to_owned(),
            tenant_id: tenant.map(str::to_owned),
            tenant_name: None,
            user_id: None,
            role,
            scopes: Vec::new(),
            key_limits: Limits::default(),
            tenant_limits: Limits::default(),
        }
    }

    #[test]
    fn roles_include_the_ones_below() {
        let member = principal(Role::Member, Some("t1"));
        assert!(member.has_role(Role::Reader) && member.has_role(Role::Member));
        assert!(!member.has_role(Role::Admin));
        for role in [Role::Reader, Role::Member, Role::Admin] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
    }

    #[test]
    fn a_tenant_admin_administers_only_its_tenant_and_an_instance_admin_all() {
        let tenant_admin = principal(Role::Admin, Some("t1"));
        assert!(tenant_admin.administers(Some("t1")));
        assert!(!tenant_admin.administers(Some("t2")));
        assert!(!tenant_admin.administers(None));
        let instance_admin = principal(Role::Admin, None);
        assert!(instance_admin.administers(Some("t2")) && instance_admin.administers(None));
        assert!(!principal(Role::Member, None).administers(Some("t1")));
    }
}
