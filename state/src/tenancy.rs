//! How Customer and PlatformConnection resources become runtime state.
