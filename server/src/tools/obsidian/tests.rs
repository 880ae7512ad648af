//! The Obsidian tools through `invoke`, against a recording mock of the plugin.
