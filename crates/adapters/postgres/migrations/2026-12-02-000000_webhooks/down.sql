DROP TABLE sluice.webhook_deliveries;
DROP TABLE sluice.webhook_events;
DROP TABLE sluice.webhooks;
