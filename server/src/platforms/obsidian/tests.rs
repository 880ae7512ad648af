//! The Obsidian client against a recording mock of the plugin.
