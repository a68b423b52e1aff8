//! Trusted documents: operations that partners (or admins) register ahead, each named by the
//! SHA-256 of its text, so a request may send `documentId` (or the APQ hash) instead of the
//! text — and, with `INCUBASE_TRUSTED_DOCUMENTS=require`, must.
//!
//! A manifest is what GraphQL clients' persisted-document tooling emits: a JSON object of
//! `hash → document` (GraphQL Code Generator's `persisted-documents.json`), or Apollo's
//! `{"format": "apollo-persisted-query-manifest", "operations": [{"id", "body", …}]}`. Every id
//! must be the SHA-256 of its document, so the id, the APQ hash and the text always agree and a
//! registered document can never change.
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use entity::trusted_document;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set, TransactionTrait};

use serde_json::json;

use super::{Ctx, as_viewer};
use crate::auth::Viewer;
use crate::error::{AppError, AppResult};
use crate::events::{Actor, EventKind, NewEvent};

/// Documents per manifest registration.
pub const MAX_DOCUMENTS_PER_MANIFEST: usize = 500;

/// One document of a manifest.
#[derive(Clone, Debug)]
pub struct ManifestEntry {
    /// Lower-case hex SHA-256 of `body`.
    pub document_id: String,
    pub body: String,
    /// Filled in by whoever parsed the document.
    pub operation_name: Option<String>,
}

/// `sha256:<hex>` or `<hex>` (64 hex digits) → the lower-case hex, as stored.
pub fn parse_document_id(raw: &str) -> Option<String> {
    let hex = raw.trim();
    let hex = hex.strip_prefix("sha256:").unwrap_or(hex);
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| hex.to_ascii_lowercase())
}

/// The documents of a manifest, each id checked against its text.
pub fn parse_manifest(raw: &str) -> AppResult<Vec<ManifestEntry>> {
    let invalid = |message: String| AppError::rule("manifest", "INVALID_MANIFEST", message);
    let value: serde_json::Value =
        serde_json::from_str(raw).map_err(|e| invalid(format!("the manifest is not JSON: {e}")))?;
    let map = value.as_object().ok_or_else(|| invalid("the manifest is a JSON object".into()))?;
    let pairs: Vec<(String, String)> =
        if map.get("format").and_then(|f| f.as_str()) == Some("apollo-persisted-query-manifest") {
            let operations = map
                .get("operations")
                .and_then(|o| o.as_array())
                .ok_or_else(|| invalid("an Apollo manifest lists `operations`".into()))?;
            operations
                .iter()
                .map(|op| match (op.get("id").and_then(|v| v.as_str()), op.get("body").and_then(|v| v.as_str())) {
                    (Some(id), Some(body)) => Ok((id.to_owned(), body.to_owned())),
                    _ => Err(invalid("every operation of an Apollo manifest has an `id` and a `body`".into())),
                })
                .collect::<AppResult<_>>()?
        } else {
            map.iter()
                .map(|(id, body)| match body.as_str() {
                    Some(body) => Ok((id.clone(), body.to_owned())),
                    None => Err(invalid(format!("the document of {id} is not a string"))),
                })
                .collect::<AppResult<_>>()?
        };
    if pairs.is_empty() || pairs.len() > MAX_DOCUMENTS_PER_MANIFEST {
        return Err(invalid(format!("a manifest holds 1 to {MAX_DOCUMENTS_PER_MANIFEST} documents")));
    }
    let mut seen = HashSet::new();
    let mut entries = Vec::with_capacity(pairs.len());
    for (id, body) in pairs {
        let document_id = parse_document_id(&id)
            .ok_or_else(|| invalid(format!("{id:?} is not a SHA-256 document id (64 hex digits)")))?;
        let actual = super::identity::sha256_hex(&body);
        if actual != document_id {
            return Err(AppError::rule(
                "manifest",
                "DOCUMENT_ID_MISMATCH",
                format!("{id} is not the SHA-256 of its document ({actual} is): ids are sha256 of the exact text"),
            ));
        }
        if seen.insert(document_id.clone()) {
            entries.push(ManifestEntry { document_id, body, operation_name: None });
        }
    }
    Ok(entries)
}

/// Who registered documents.
#[derive(Clone, Copy, Debug, Default)]
pub struct RegisteredBy {
    pub account_id: Option<i64>,
    pub key_id: Option<i64>,
}

pub struct Registration {
    /// Newly stored.
    pub registered: usize,
    /// Already registered before (by anyone): registering is idempotent.
    pub already_registered: usize,
    pub documents: Vec<trusted_document::Model>,
}

/// Command: admins, or partners with a secret key, register a manifest's documents (checked
/// for parse errors and limits by the caller). Registering a known document again changes
/// nothing and records nothing.
pub async fn register_documents(
    ctx: Ctx<'_>,
    viewer: &Viewer,
    entries: &[ManifestEntry],
    client_name: Option<&str>,
) -> AppResult<Registration> {
    viewer.require_register_documents()?;
    let by = RegisteredBy {
        account_id: viewer.account.as_ref().map(|a| a.id),
        key_id: viewer.partner.as_ref().map(|p| p.key_id),
    };
    as_viewer!(viewer, |actor| register(ctx, actor, entries, client_name, by))
}

/// Stores a manifest's documents; those already known are left as they are.
pub async fn register(
    ctx: Ctx<'_>,
    actor: &Actor,
    entries: &[ManifestEntry],
    client_name: Option<&str>,
    by: RegisteredBy,
) -> AppResult<Registration> {
    let db = ctx.db;
    let client_name = client_name.map(str::trim).filter(|n| !n.is_empty());
    if client_name.is_some_and(|n| n.chars().count() > 100) {
        return Err(AppError::bad_input("clientName", "clientName is at most 100 characters"));
    }
    let ids: Vec<String> = entries.iter().map(|e| e.document_id.clone()).collect();
    let now = super::now();
    let txn = db.begin().await?;
    let models = entries.iter().map(|e| trusted_document::ActiveModel {
        document_id: Set(e.document_id.clone()),
        body: Set(e.body.clone()),
        operation_name: Set(e.operation_name.clone()),
        client_name: Set(client_name.map(str::to_owned)),
        registered_by_account_id: Set(by.account_id),
        registered_by_key_id: Set(by.key_id),
        created_at: Set(now),
        ..Default::default()
    });
    let inserted = trusted_document::Entity::insert_many(models)
        .on_conflict(OnConflict::column(trusted_document::Column::DocumentId).do_nothing().to_owned())
        .exec_without_returning(&txn)
        .await;
    let inserted = match inserted {
        Ok(rows) => rows,
        Err(DbErr::RecordNotInserted) => 0,
        Err(e) => return Err(e.into()),
    };
    let documents = by_ids(&txn, &ids).await?;
    // What this transaction stored carries its time; documents known before are older.
    let events = documents
        .iter()
        .filter(|d| d.created_at == now)
        .map(|d| {
            NewEvent::new(EventKind::TrustedDocumentRegistered, d.id).payload(json!({
                "documentId": d.document_id,
                "operationName": d.operation_name,
                "clientName": d.client_name,
            }))
        })
        .collect();
    ctx.commit(txn, actor, events).await?;
    let registered = usize::try_from(inserted).unwrap_or(usize::MAX).min(entries.len());
    Ok(Registration { registered, already_registered: entries.len() - registered, documents })
}

async fn by_ids(db: &impl ConnectionTrait, ids: &[String]) -> AppResult<Vec<trusted_document::Model>> {
    Ok(trusted_document::Entity::find()
        .filter(trusted_document::Column::DocumentId.is_in(ids.iter().cloned()))
        .all(db)
        .await?)
}

/// Registered documents as requests look them up: bodies kept in memory once read (a document
/// never changes), unknown ids remembered briefly so a flood of made-up ids costs one lookup
/// each per few seconds.
pub struct DocumentStore {
    known: moka::sync::Cache<String, Arc<str>>,
    missing: moka::sync::Cache<String, ()>,
}

impl Default for DocumentStore {
    fn default() -> Self {
        Self {
            known: moka::sync::Cache::builder().max_capacity(10_000).build(),
            missing: moka::sync::Cache::builder().max_capacity(10_000).time_to_live(Duration::from_secs(5)).build(),
        }
    }
}

impl DocumentStore {
    /// The text of a registered document.
    pub async fn body(&self, db: &impl ConnectionTrait, document_id: &str) -> AppResult<Option<Arc<str>>> {
        if let Some(body) = self.known.get(document_id) {
            return Ok(Some(body));
        }
        if self.missing.contains_key(document_id) {
            return Ok(None);
        }
        let found = trusted_document::Entity::find()
            .filter(trusted_document::Column::DocumentId.eq(document_id))
            .one(db)
            .await?;
        Ok(match found {
            Some(doc) => {
                let body: Arc<str> = Arc::from(doc.body);
                self.known.insert(doc.document_id, body.clone());
                Some(body)
            }
            None => {
                self.missing.insert(document_id.to_owned(), ());
                None
            }
        })
    }

    /// A document was registered (here or elsewhere): look it up again, even if it was
    /// missing a moment ago.
    pub fn forget_missing(&self, document_id: &str) {
        self.missing.invalidate(document_id);
    }
}
