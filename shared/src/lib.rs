//! taskhooks' domain logic, shared by every component and testable natively: the hook
//! model, identifiers, JSON-e rendering, the API over a key-value store, and the platform
//! traits (key-value store, clock) that components implement over Spin.

pub mod api;
pub mod error;
pub mod ids;
pub mod model;
pub mod platform;
pub mod render;
pub mod schedule;
pub mod scopes;
pub mod trigger_schema;
