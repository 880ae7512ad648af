//! The customers table and the usage ledger.
