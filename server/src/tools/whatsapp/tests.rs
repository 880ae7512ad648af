//! The WhatsApp tools through `invoke`, against a recording mock.
