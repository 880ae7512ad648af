//! The Instagram tools through `invoke`, against a recording mock of the Graph API.
