//! The fleet as the server holds it in memory: the [`index::FleetIndex`] that answers every
//! check-in without touching the database, and the dirty set it flushes from.

pub mod index;
