//! Microsoft Entra ID: tokens for a service connection's identity, and the helpers shared by
//! the identity, registry and deployment checks.

pub mod arm;
pub mod entra;
pub mod jwt;
