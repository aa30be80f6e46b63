//! The `tasks` check: finds the pipeline files, every task reference in them and in the local
//! templates they include, and matches each against the advisory database and the built-in
//! task index (and, online, the organization's installed task versions).

pub mod advisories;
pub mod index;
pub mod reference;
pub mod scan;
