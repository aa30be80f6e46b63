//! Microsoft Entra ID: tokens for a service connection's identity, and the helpers shared by
//! the identity, registry and deployment checks.

pub mod arm;
pub mod certificate;
pub mod entra;
pub mod graph;
pub mod jwt;
pub mod resource_id;
pub mod services;

pub use services::Services;
