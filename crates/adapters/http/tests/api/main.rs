//! The API in-process over the in-memory fakes: one test binary.

mod auth;
mod connectors;
mod files;
mod health;
mod openapi;
mod reference;
mod roles;
mod support;
mod validation;
mod webhooks;
