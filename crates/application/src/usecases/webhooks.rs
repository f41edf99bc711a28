//! Webhooks (admin only): subscriptions, their delivery log, redelivery.
//! The secret is write-only: answers carry [`Webhook`]s, which the HTTP
//! layer turns into a shape without it.

use sluice_domain::ids::{DeliveryId, EventId, WebhookId};
use sluice_domain::role::Action;
use sluice_domain::webhook::{Webhook, WebhookRequest};

use super::{Principal, UseCases, check_patch_members, from_json, merge_patch};
use crate::AppError;
use crate::ports::{Delivery, Page, PageRequest, StoreError};

/// Members a `PATCH /webhooks/{id}` may carry.
const PATCH_MEMBERS: &[&str] = &[
    "url",
    "events",
    "pipelineIds",
    "format",
    "enabled",
    "errorsThreshold",
    "secret",
];

/// A 400 on `secret` never quotes what was sent.
fn hide_secret(e: AppError) -> AppError {
    match e {
        AppError::Invalid { field, .. } if field == "secret" => AppError::invalid(
            "secret",
            "must be a string of 16 to 256 characters without control characters",
        ),
        other => other,
    }
}

impl UseCases {
    /// Creates a subscription (admin only). A loopback, link-local or
    /// private URL is a 400 on `url` unless the server allows them.
    pub async fn create_webhook(
        &self,
        who: &Principal,
        request: WebhookRequest,
    ) -> Result<Webhook, AppError> {
        who.require(Action::ManageWebhooks)?;
        let (spec, secret) = request
            .into_parts(self.tunables().allow_private_webhooks)
            .map_err(|e| hide_secret(e.into()))?;
        let now = self.ports().clock.now();
        let webhook = Webhook {
            id: WebhookId::from_ulid(self.ports().ids.ulid()),
            url: spec.url,
            events: spec.events,
            pipeline_ids: spec.pipeline_ids,
            format: spec.format,
            enabled: spec.enabled,
            errors_threshold: spec.errors_threshold,
            secret,
            created_at: now,
            updated_at: now,
        };
        self.ports().webhooks.insert_webhook(&webhook).await?;
        Ok(webhook)
    }

    /// One subscription (admin only).
    pub async fn get_webhook(&self, who: &Principal, id: WebhookId) -> Result<Webhook, AppError> {
        who.require(Action::ManageWebhooks)?;
        Ok(self.ports().webhooks.get_webhook(id).await?)
    }

    /// Subscriptions, newest first (admin only).
    pub async fn list_webhooks(
        &self,
        who: &Principal,
        page: &PageRequest,
    ) -> Result<Page<Webhook>, AppError> {
        who.require(Action::ManageWebhooks)?;
        Ok(self.ports().webhooks.list_webhooks(page).await?)
    }

    /// Applies a JSON merge patch (admin only); without `secret` the stored
    /// secret is kept. The result is checked as a whole.
    pub async fn update_webhook(
        &self,
        who: &Principal,
        id: WebhookId,
        patch: serde_json::Value,
    ) -> Result<Webhook, AppError> {
        who.require(Action::ManageWebhooks)?;
        check_patch_members(&patch, PATCH_MEMBERS)?;
        let current = self.ports().webhooks.get_webhook(id).await?;
        let mut doc = serde_json::json!({
            "url": current.url,
            "events": current.events,
            "pipelineIds": current.pipeline_ids,
            "format": current.format,
            "enabled": current.enabled,
            "errorsThreshold": current.errors_threshold,
            "secret": current.secret.expose(),
        });
        merge_patch(&mut doc, &patch);
        let request: WebhookRequest = from_json(doc).map_err(hide_secret)?;
        let (spec, secret) = request
            .into_parts(self.tunables().allow_private_webhooks)
            .map_err(|e| hide_secret(e.into()))?;
        let updated = Webhook {
            id,
            url: spec.url,
            events: spec.events,
            pipeline_ids: spec.pipeline_ids,
            format: spec.format,
            enabled: spec.enabled,
            errors_threshold: spec.errors_threshold,
            secret,
            created_at: current.created_at,
            updated_at: self.ports().clock.now(),
        };
        self.ports().webhooks.update_webhook(&updated).await?;
        Ok(updated)
    }

    /// Deletes a subscription, its pending events and its delivery log
    /// (admin only).
    pub async fn delete_webhook(&self, who: &Principal, id: WebhookId) -> Result<(), AppError> {
        who.require(Action::ManageWebhooks)?;
        Ok(self.ports().webhooks.delete_webhook(id).await?)
    }

    /// The delivery log of a subscription, newest first (admin only).
    pub async fn list_deliveries(
        &self,
        who: &Principal,
        id: WebhookId,
        page: &PageRequest,
    ) -> Result<Page<Delivery>, AppError> {
        who.require(Action::ManageWebhooks)?;
        Ok(self.ports().webhooks.list_deliveries(id, page).await?)
    }

    /// Sends the event of one delivery again, with a new retry window
    /// (admin only). Answers the event id.
    pub async fn redeliver(
        &self,
        who: &Principal,
        id: WebhookId,
        delivery: DeliveryId,
    ) -> Result<EventId, AppError> {
        who.require(Action::ManageWebhooks)?;
        let now = self.ports().clock.now();
        let event = self
            .ports()
            .webhooks
            .redeliver(id, delivery, now)
            .await
            .map_err(|e| match e {
                StoreError::NotFound { .. } => AppError::NotFound {
                    entity: "delivery",
                    id: delivery.to_string(),
                },
                other => other.into(),
            })?;
        self.wake.work_created();
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;
    use sluice_domain::ids::ApiKeyId;
    use sluice_domain::role::Role;

    use super::*;
    use crate::Tunables;
    use crate::ports::Ports;
    use crate::testing::{
        InMemorySource, InMemorySourceFactory, InMemoryStore, ManualClock, SequentialIds,
    };

    fn use_cases(allow_private: bool) -> UseCases {
        let ports = Ports::from_store(
            Arc::new(InMemoryStore::new()),
            Arc::new(InMemorySourceFactory(InMemorySource::default())),
            Arc::new(ManualClock::new(sluice_domain::time::Timestamp(
                1_750_000_000_000,
            ))),
            Arc::new(SequentialIds::default()),
        );
        UseCases::new(
            ports,
            Tunables {
                allow_private_webhooks: allow_private,
                ..Tunables::default()
            },
        )
    }

    fn who(role: Role) -> Principal {
        Principal {
            key_id: ApiKeyId::from_ulid(sluice_domain::ids::Ulid(1)),
            role,
        }
    }

    fn request(url: &str) -> WebhookRequest {
        from_json(json!({
            "url": url, "events": ["run.completed"], "secret": "use-case-secret-0123456789"
        }))
        .expect("request")
    }

    #[tokio::test]
    async fn only_admins_manage_webhooks() {
        let uc = use_cases(false);
        for role in [Role::Editor, Role::Viewer] {
            let e = uc
                .create_webhook(&who(role), request("https://e.com/"))
                .await
                .expect_err("refused");
            assert!(matches!(e, AppError::Forbidden { .. }), "{e:?}");
            let e = uc
                .list_webhooks(&who(role), &PageRequest::default())
                .await
                .expect_err("refused");
            assert!(matches!(e, AppError::Forbidden { .. }), "{e:?}");
        }
    }

    #[tokio::test]
    async fn private_urls_need_the_setting_and_name_url() {
        let e = use_cases(false)
            .create_webhook(&who(Role::Admin), request("http://127.0.0.1:8080/"))
            .await
            .expect_err("refused");
        assert!(
            matches!(e, AppError::Invalid { ref field, .. } if field == "url"),
            "{e:?}"
        );
        let ok = use_cases(true)
            .create_webhook(&who(Role::Admin), request("http://127.0.0.1:8080/"))
            .await
            .expect("allowed");
        assert_eq!(ok.url, "http://127.0.0.1:8080/");
    }

    #[tokio::test]
    async fn a_patch_keeps_the_secret_unless_given_and_never_echoes_it() {
        let uc = use_cases(false);
        let admin = who(Role::Admin);
        let h = uc
            .create_webhook(&admin, request("https://e.com/"))
            .await
            .expect("create");
        let changed = uc
            .update_webhook(&admin, h.id, json!({"enabled": false, "format": "slack"}))
            .await
            .expect("patch");
        assert!(!changed.enabled);
        assert_eq!(changed.secret.expose(), "use-case-secret-0123456789");
        let e = uc
            .update_webhook(&admin, h.id, json!({"secret": "short-secret"}))
            .await
            .expect_err("too short");
        let text = format!("{e} {e:?}");
        assert!(!text.contains("short-secret"), "{text}");
        assert!(matches!(e, AppError::Invalid { ref field, .. } if field == "secret"));
        let e = uc
            .update_webhook(&admin, h.id, json!({"bogus": 1}))
            .await
            .expect_err("unknown member");
        assert!(matches!(e, AppError::Invalid { .. }));
        let rotated = uc
            .update_webhook(&admin, h.id, json!({"secret": "rotated-secret-0123456789"}))
            .await
            .expect("rotate");
        assert_eq!(rotated.secret.expose(), "rotated-secret-0123456789");
        assert_eq!(uc.get_webhook(&admin, h.id).await.expect("get"), rotated);
    }
}
