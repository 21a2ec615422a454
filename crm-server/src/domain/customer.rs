//! Customers (accounts) and contacts: the writable form the API accepts, and the rules that turn it
//! into a draft that can be stored.
//!
//! Create and update share one path: `POST` parses a [`CustomerInput`]; `PATCH` applies a JSON
//! merge patch to the current [`CustomerInput`] and parses the result the same way, so every rule
//! holds for both and every error names the offending member by JSON pointer.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::FieldError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Segment {
    Restaurant,
    Hotel,
    Caterer,
    Canteen,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContactabilityStatus {
    Contactable,
    SoftBounce,
    /// The seeds' bounce policy: a hard bounce always requires another channel.
    HardBounce,
    OptedOut,
}

/// Who may write the locations of a chain: each location's owner (`OWN`), or every sales rep who
/// owns one of them (`CHAIN_SHARED`, the seeds' account sharing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CoveragePolicy {
    #[default]
    Own,
    ChainShared,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContactRole {
    HeadChef,
    Buyer,
    ManagingDirector,
    Owner,
}

/// Enums stored as their API spelling.
macro_rules! text_enum {
    ($type:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        impl $type {
            pub const ALL: &'static [$type] = &[$($type::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $($type::$variant => $text),* }
            }

            pub fn parse(text: &str) -> Option<$type> {
                match text { $($text => Some($type::$variant),)* _ => None }
            }
        }
    };
}

text_enum!(Segment { Restaurant => "RESTAURANT", Hotel => "HOTEL", Caterer => "CATERER", Canteen => "CANTEEN", Other => "OTHER" });
text_enum!(ContactabilityStatus {
    Contactable => "CONTACTABLE",
    SoftBounce => "SOFT_BOUNCE",
    HardBounce => "HARD_BOUNCE",
    OptedOut => "OPTED_OUT",
});
text_enum!(CoveragePolicy { Own => "OWN", ChainShared => "CHAIN_SHARED" });
text_enum!(ContactRole { HeadChef => "HEAD_CHEF", Buyer => "BUYER", ManagingDirector => "MANAGING_DIRECTOR", Owner => "OWNER" });

/// The writable members of a customer, as `POST /customers` takes them and as `PATCH` patches them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerInput {
    /// Not blank, no control characters; stored trimmed.
    #[schema(
        example = "Gasthaus Zum Löwen",
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub name: String,
    pub segment: Segment,
    /// Sales territory code, two or three capital letters (BY, NRW, BER).
    #[schema(example = "BY", pattern = "^[A-Z]{2,3}$")]
    pub territory: String,
    #[serde(default)]
    pub is_chain: bool,
    /// The chain this customer is a location of: an existing customer with `isChain` (a 422
    /// otherwise); a chain itself has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_account_id: Option<Uuid>,
    #[serde(default)]
    pub address: AddressInput,
    #[serde(default)]
    pub contactability: ContactabilityInput,
    /// The sales rep (token subject) the customer is assigned to. A sales rep creating a customer
    /// becomes its owner; only team leads, chain managers and admins assign or reassign. Blank
    /// means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 255, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub owner_subject: Option<String>,
    /// For chains: whether the reps of its locations share them (`CHAIN_SHARED`).
    #[serde(default)]
    pub coverage_policy: CoveragePolicy,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddressInput {
    /// Blank means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub street: Option<String>,
    /// For `DE` five digits; elsewhere letters, digits, spaces and hyphens. Blank means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        max_length = 16,
        pattern = r"^[\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[0-9A-Za-z -]*[\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub postal_code: Option<String>,
    /// Blank means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub city: Option<String>,
    /// ISO 3166-1 alpha-2; `DE` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Z]{2}$")]
    pub country: Option<String>,
    /// ISO 3166-2 subdivision of the country (`DE-BY`): whose public holidays count for
    /// business-day deadlines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Z]{2}-[A-Z0-9]{1,3}$")]
    pub region: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContactabilityInput {
    /// `CONTACTABLE` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ContactabilityStatus>,
    /// Forced to true for `HARD_BOUNCE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alternate_channel_required: Option<bool>,
}

/// A customer as the API shows it: its writable members (normalised), plus identity, version and
/// timestamps.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    pub id: Uuid,
    #[serde(flatten)]
    pub attributes: CustomerMembers,
    /// Increases with every change; the ETag is `"c<version>"`.
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: time::OffsetDateTime,
}

/// A customer's writable members as stored: trimmed, with the defaults filled in.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerMembers {
    pub name: String,
    pub segment: Segment,
    pub territory: String,
    pub is_chain: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_account_id: Option<Uuid>,
    pub address: Address,
    pub contactability: Contactability,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_subject: Option<String>,
    pub coverage_policy: CoveragePolicy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Contactability {
    pub status: ContactabilityStatus,
    pub alternate_channel_required: bool,
}

impl From<&CustomerDraft> for CustomerMembers {
    fn from(draft: &CustomerDraft) -> Self {
        CustomerMembers {
            name: draft.name.clone(),
            segment: draft.segment,
            territory: draft.territory.clone(),
            is_chain: draft.is_chain,
            parent_account_id: draft.parent_account_id,
            address: draft.address.clone(),
            contactability: Contactability {
                status: draft.contactability,
                alternate_channel_required: draft.alternate_channel_required,
            },
            owner_subject: draft.owner_subject.clone(),
            coverage_policy: draft.coverage_policy,
        }
    }
}

/// A contact as the API shows it, with its roles at one account or at all of them.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub id: Uuid,
    #[serde(flatten)]
    pub attributes: ContactDraft,
    pub accounts: Vec<AccountRoles>,
    /// The ETag is `"p<version>"`.
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: time::OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountRoles {
    pub account_id: Uuid,
    pub roles: Vec<ContactRole>,
}

/// A customer that satisfies every rule that needs no database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerDraft {
    pub name: String,
    pub segment: Segment,
    pub territory: String,
    pub is_chain: bool,
    pub parent_account_id: Option<Uuid>,
    pub address: Address,
    pub contactability: ContactabilityStatus,
    pub alternate_channel_required: bool,
    pub owner_subject: Option<String>,
    pub coverage_policy: CoveragePolicy,
}

/// An address as stored, and as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    pub country: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

impl CustomerInput {
    pub fn validate(self) -> Result<CustomerDraft, Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = required_text(&mut errors, "/name", &self.name, 200);
        if !is_territory(&self.territory) {
            errors.push(FieldError::new(
                "/territory",
                "a territory is two or three capital letters, e.g. BY or NRW",
            ));
        }
        if self.is_chain && self.parent_account_id.is_some() {
            errors.push(FieldError::new("/parentAccountId", "a chain cannot be a location of another chain"));
        }
        let address = self.address.validate(&mut errors);
        let owner_subject = optional_text(&mut errors, "/ownerSubject", self.owner_subject, 255);
        let contactability = self.contactability.status.unwrap_or(ContactabilityStatus::Contactable);
        let alternate_channel_required = contactability == ContactabilityStatus::HardBounce
            || self.contactability.alternate_channel_required.unwrap_or(false);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(CustomerDraft {
            name,
            segment: self.segment,
            territory: self.territory,
            is_chain: self.is_chain,
            parent_account_id: self.parent_account_id,
            address,
            contactability,
            alternate_channel_required,
            owner_subject,
            coverage_policy: self.coverage_policy,
        })
    }
}

impl AddressInput {
    fn validate(self, errors: &mut Vec<FieldError>) -> Address {
        let country = self.country.unwrap_or_else(|| "DE".into());
        if !(country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase())) {
            errors.push(FieldError::new("/address/country", "an ISO 3166-1 alpha-2 code such as DE"));
        }
        let postal_code = optional_text(errors, "/address/postalCode", self.postal_code, 16);
        if let Some(code) = &postal_code {
            let valid = if country == "DE" {
                code.len() == 5 && code.bytes().all(|b| b.is_ascii_digit())
            } else {
                code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ' || b == b'-')
            };
            if !valid {
                errors.push(FieldError::new(
                    "/address/postalCode",
                    "not a postal code of the country (DE: five digits)",
                ));
            }
        }
        if let Some(region) = &self.region {
            let valid = region.strip_prefix(&format!("{country}-")).is_some_and(|code| {
                (1..=3).contains(&code.len())
                    && code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            });
            if !valid {
                errors.push(FieldError::new(
                    "/address/region",
                    format!("an ISO 3166-2 subdivision of {country}, e.g. {country}-BY"),
                ));
            }
        }
        Address {
            street: optional_text(errors, "/address/street", self.street, 200),
            postal_code,
            city: optional_text(errors, "/address/city", self.city, 200),
            country,
            region: self.region,
        }
    }
}

impl CustomerDraft {
    /// The input that produces this draft: the target a merge patch applies to.
    pub fn to_input(&self) -> CustomerInput {
        CustomerInput {
            name: self.name.clone(),
            segment: self.segment,
            territory: self.territory.clone(),
            is_chain: self.is_chain,
            parent_account_id: self.parent_account_id,
            address: AddressInput {
                street: self.address.street.clone(),
                postal_code: self.address.postal_code.clone(),
                city: self.address.city.clone(),
                country: Some(self.address.country.clone()),
                region: self.address.region.clone(),
            },
            contactability: ContactabilityInput {
                status: Some(self.contactability),
                alternate_channel_required: Some(self.alternate_channel_required),
            },
            owner_subject: self.owner_subject.clone(),
            coverage_policy: self.coverage_policy,
        }
    }

    /// The API names of the members that differ, for `customer.updated` events.
    pub fn changed_members(&self, new: &CustomerDraft) -> Vec<&'static str> {
        let mut changed = Vec::new();
        let mut check = |differs: bool, name: &'static str| {
            if differs {
                changed.push(name);
            }
        };
        check(self.name != new.name, "name");
        check(self.segment != new.segment, "segment");
        check(self.territory != new.territory, "territory");
        check(self.is_chain != new.is_chain, "isChain");
        check(self.parent_account_id != new.parent_account_id, "parentAccountId");
        check(self.address != new.address, "address");
        check(
            self.contactability != new.contactability
                || self.alternate_channel_required != new.alternate_channel_required,
            "contactability",
        );
        check(self.owner_subject != new.owner_subject, "ownerSubject");
        check(self.coverage_policy != new.coverage_policy, "coveragePolicy");
        changed
    }
}

/// A contact's writable members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContactInput {
    /// Not blank, no control characters; stored trimmed.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub first_name: String,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub last_name: String,
    /// One `@`, a dot inside the domain, no spaces. Blank means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        max_length = 254,
        pattern = r"^[\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*([^@\u0000-\u001f\u007f-\u009f\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+@[^@.\u0000-\u001f\u007f-\u009f\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]([^@\u0000-\u001f\u007f-\u009f\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*\.[^@\u0000-\u001f\u007f-\u009f\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)[^@.\u0000-\u001f\u007f-\u009f\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)?$"
    )]
    pub email: Option<String>,
    /// Digits, spaces and `+ - / ( )`. Blank means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        max_length = 40,
        pattern = r"^[\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[0-9 +/()-]*[\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub phone: Option<String>,
}

/// A contact's members as stored (trimmed), and as the API shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContactDraft {
    pub first_name: String,
    pub last_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

impl ContactInput {
    pub fn validate(self) -> Result<ContactDraft, Vec<FieldError>> {
        self.validate_at("")
    }

    /// Validates with pointers below `prefix` (for a contact nested in a larger body).
    pub fn validate_at(self, prefix: &str) -> Result<ContactDraft, Vec<FieldError>> {
        let mut errors = Vec::new();
        let first_name = required_text(&mut errors, &format!("{prefix}/firstName"), &self.first_name, 100);
        let last_name = required_text(&mut errors, &format!("{prefix}/lastName"), &self.last_name, 100);
        let email = optional_text(&mut errors, &format!("{prefix}/email"), self.email, 254);
        if let Some(email) = &email
            && !is_plausible_email(email)
        {
            errors.push(FieldError::new(format!("{prefix}/email"), "not an e-mail address"));
        }
        let phone = optional_text(&mut errors, &format!("{prefix}/phone"), self.phone, 40);
        if let Some(phone) = &phone
            && !phone.bytes().all(|b| b.is_ascii_digit() || b" +-/()".contains(&b))
        {
            errors.push(FieldError::new(format!("{prefix}/phone"), "digits, spaces and + - / ( ) only"));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ContactDraft { first_name, last_name, email, phone })
    }
}

impl ContactDraft {
    pub fn to_input(&self) -> ContactInput {
        ContactInput {
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            email: self.email.clone(),
            phone: self.phone.clone(),
        }
    }
}

/// Roles of a contact at one account: at least one, no duplicates (kept sorted).
pub fn validate_roles(pointer: &str, roles: &[ContactRole]) -> Result<Vec<ContactRole>, FieldError> {
    let mut sorted = roles.to_vec();
    sorted.sort();
    sorted.dedup();
    if sorted.is_empty() {
        return Err(FieldError::new(
            pointer,
            "at least one role: HEAD_CHEF, BUYER, MANAGING_DIRECTOR or OWNER",
        ));
    }
    if sorted.len() != roles.len() {
        return Err(FieldError::new(pointer, "a role is listed twice"));
    }
    Ok(sorted)
}

pub fn is_territory(code: &str) -> bool {
    (2..=3).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_uppercase())
}

/// Not blank, at most `max` characters, no control characters; returned trimmed. The length and
/// the characters are those of the text as sent, as the OpenAPI document states them.
fn required_text(errors: &mut Vec<FieldError>, pointer: &str, text: &str, max: usize) -> String {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        errors.push(FieldError::new(pointer, "must not be empty"));
    } else if text.chars().count() > max {
        errors.push(FieldError::new(pointer, format!("at most {max} characters")));
    } else if text.chars().any(char::is_control) {
        errors.push(FieldError::new(pointer, "must not contain control characters"));
    }
    trimmed.to_owned()
}

/// Like [`required_text`], but absent or blank means `None`.
fn optional_text(
    errors: &mut Vec<FieldError>,
    pointer: &str,
    text: Option<String>,
    max: usize,
) -> Option<String> {
    let text = text.filter(|t| !t.trim().is_empty())?;
    Some(required_text(errors, pointer, &text, max))
}

/// Deliberately loose: one `@` with something on both sides and a dot in the domain. Real
/// validation is a confirmation mail, not a regular expression.
fn is_plausible_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !email.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn input(value: serde_json::Value) -> CustomerInput {
        serde_json::from_value(value).unwrap()
    }

    fn pointers(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().filter_map(|e| e.pointer.as_deref()).collect()
    }

    #[test]
    fn a_minimal_customer_gets_the_defaults() {
        let draft = input(json!({"name": " Zum Löwen ", "segment": "RESTAURANT", "territory": "BY"}))
            .validate()
            .unwrap();
        assert_eq!(draft.name, "Zum Löwen");
        assert_eq!(draft.address.country, "DE");
        assert_eq!(draft.contactability, ContactabilityStatus::Contactable);
        assert!(!draft.alternate_channel_required && !draft.is_chain);
    }

    #[test]
    fn every_broken_rule_is_reported_at_once() {
        let errors = input(json!({
            "name": "", "segment": "HOTEL", "territory": "bavaria", "isChain": true,
            "parentAccountId": "6f1c7a8e-2b1d-4c3e-9f0a-1b2c3d4e5f60",
            "address": {"postalCode": "8033", "country": "DE", "region": "AT-9"}
        }))
        .validate()
        .unwrap_err();
        assert_eq!(
            pointers(&errors),
            ["/name", "/territory", "/parentAccountId", "/address/postalCode", "/address/region"]
        );
    }

    #[test]
    fn a_hard_bounce_always_requires_another_channel() {
        let draft = input(json!({"name": "A", "segment": "CATERER", "territory": "NRW",
            "contactability": {"status": "HARD_BOUNCE", "alternateChannelRequired": false}}))
        .validate()
        .unwrap();
        assert!(draft.alternate_channel_required);
    }

    #[test]
    fn foreign_postal_codes_follow_looser_rules() {
        let ok = input(json!({"name": "A", "segment": "HOTEL", "territory": "BY",
            "address": {"postalCode": "SW1A 1AA", "country": "GB", "region": "GB-ENG"}}));
        assert!(ok.validate().is_ok());
    }

    #[test]
    fn unknown_members_are_refused() {
        let err = serde_json::from_value::<CustomerInput>(
            json!({"name": "A", "segment": "HOTEL", "territory": "BY", "vip": true}),
        );
        assert!(err.unwrap_err().to_string().contains("vip"));
    }

    #[test]
    fn changed_members_name_what_differs() {
        let a = input(json!({"name": "A", "segment": "HOTEL", "territory": "BY"})).validate().unwrap();
        let mut b = a.clone();
        b.name = "B".into();
        b.address.city = Some("München".into());
        assert_eq!(a.changed_members(&b), ["name", "address"]);
        assert!(a.changed_members(&a).is_empty());
    }

    #[test]
    fn contacts_need_names_and_plausible_channels() {
        let errors = ContactInput {
            first_name: " ".into(),
            last_name: "Huber".into(),
            email: Some("nope".into()),
            phone: Some("089 12#3".into()),
        }
        .validate()
        .unwrap_err();
        assert_eq!(pointers(&errors), ["/firstName", "/email", "/phone"]);
        let ok = ContactInput {
            first_name: "Anna".into(),
            last_name: "Huber".into(),
            email: Some("anna@loewen.de".into()),
            phone: Some("+49 (89) 123-45".into()),
        };
        assert!(ok.validate().is_ok());
    }

    #[test]
    fn roles_must_be_given_once_each() {
        assert!(validate_roles("/roles", &[]).is_err());
        assert!(validate_roles("/roles", &[ContactRole::Buyer, ContactRole::Buyer]).is_err());
        assert_eq!(
            validate_roles("/roles", &[ContactRole::Owner, ContactRole::HeadChef]).unwrap(),
            [ContactRole::HeadChef, ContactRole::Owner]
        );
    }

    #[test]
    fn stored_spellings_round_trip() {
        for s in Segment::ALL {
            assert_eq!(Segment::parse(s.as_str()), Some(*s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for s in ContactabilityStatus::ALL {
            assert_eq!(ContactabilityStatus::parse(s.as_str()), Some(*s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for r in ContactRole::ALL {
            assert_eq!(ContactRole::parse(r.as_str()), Some(*r));
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
    }

    fn any_input() -> impl Strategy<Value = CustomerInput> {
        (
            "[A-Za-zÄÖÜäöüß .'&-]{1,40}",
            prop::sample::select(Segment::ALL),
            "[A-Z]{2,3}",
            any::<bool>(),
            proptest::option::of("[0-9]{5}"),
            proptest::option::of(prop::sample::select(ContactabilityStatus::ALL)),
        )
            .prop_map(|(name, segment, territory, is_chain, postal_code, status)| CustomerInput {
                name,
                segment,
                territory,
                is_chain,
                parent_account_id: None,
                address: AddressInput { postal_code, ..AddressInput::default() },
                contactability: ContactabilityInput { status, alternate_channel_required: None },
                owner_subject: None,
                coverage_policy: CoveragePolicy::Own,
            })
    }

    proptest! {
        /// A stored customer turned back into input and validated again is the same customer:
        /// a PATCH that changes nothing changes nothing.
        #[test]
        fn a_draft_survives_the_round_trip_through_its_input(input in any_input()) {
            if let Ok(draft) = input.validate() {
                let again = draft.to_input().validate().unwrap();
                prop_assert_eq!(&again, &draft);
                prop_assert!(draft.changed_members(&again).is_empty());
            }
        }
    }
}
