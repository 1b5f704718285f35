//! taskhooks' domain logic, shared by every component and testable natively: the hook
//! model, identifiers, JSON-e rendering, scope algebra, schedules, trigger schemas, the
//! API over a key-value store, and the platform traits (key-value store, clock) that
//! components implement over Spin.
//!
//! # Decisions on upstream quirks (SPEC §15)
//!
//! | quirk | decision | where |
//! | --- | --- | --- |
//! | 3: re-creating a hook without `bindings` is a 409 | fixed: omitted and `[]` are the same | [`api`] |
//! | 7: `triggerSchema` defaults are not applied to payloads | kept (what upstream does) | [`trigger_schema`] |
//! | 8: `now` is a JS Date, so `${now}` fails | fixed: `now` is an ISO-8601 string | [`render`] |
//! | 9: cron in the server's zone; `""` = every minute; 5 fields accepted | UTC always; `""` refused; 5 fields kept | [`schedule`] |
//! | 16: meta-validation errors say `Property undefined` | fixed: each error names its path | [`trigger_schema`] |
//! | 17: `H` re-randomised at every evaluation | refused (with `L`, `W`, `#`) | [`schedule`] |
//! | render errors (json-e crate gives no location) | the failing template path is found and named, upstream's form | [`render`] |

pub mod api;
pub mod audit;
pub mod auth;
pub mod cas;
pub mod cron_decision;
pub mod cron_hooks;
pub mod cron_project;
pub mod cron_source;
pub mod cron_tick;
pub mod cron_yml;
pub mod daily;
pub mod error;
pub mod expiry;
pub mod fire;
pub mod fire_stats;
pub mod github;
pub mod health;
pub mod log;
pub mod metrics;
pub mod hook_files;
pub mod hook_writes;
pub mod hawk;
pub mod embedded_queue;
pub mod ids;
pub mod layout;
pub mod migrate;
pub mod model;
pub mod notify;
pub mod pulse;
pub mod platform;
pub mod queue;
pub mod relay;
pub mod remote_auth;
pub mod remote_queue;
pub mod render;
pub mod repository;
pub mod schedule;
pub mod scheduler;
pub mod sealed;
pub mod store;
pub mod topic;
pub mod scopes;
pub mod trigger_schema;
pub mod verify;
